"""Export → import through the flows on a real Prefect API and Dask cluster; resume after a kill; train on it."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from im2flow_cli.app import app
from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_flows.export import export_flow
from im2flow_flows.import_rawframes import import_flow
from im2flow_flows.pipeline import pipeline_flow
from im2flow_services.dask_cluster import task_runner
from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import save_checkpoint
from im2flow_storage.manifest import read_manifest
from im2flow_storage.rawframes import STATE_DIR, finished_videos
from im2flow_tasks.interop_config import ExportConfig, ImportConfig
from tests.conftest import make_tiny_store, real_texture

pytestmark = pytest.mark.services


def _lists(root, name="im2flow", k=1):
    classes = [line.split(maxsplit=1)[1] for line in (root / "classInd.txt").read_text().splitlines()]
    out = {}
    for subset, split in (("train", "train"), ("val", "test")):
        for suffix in ("", "_flow"):
            for line in (root / f"{name}_{subset}_split_{k}_rawframes{suffix}.txt").read_text().splitlines():
                frame_dir, count, label = line.split()
                out.setdefault(frame_dir, {"split": split, "label": classes[int(label)]})[suffix or "rgb"] = int(count)
    return out


def test_export_resumes_after_a_kill_and_imports_back_into_a_trainable_store(tmp_path, prefect_harness,
                                                                             dask_address, mlflow_uri):
    source = tmp_path / "source"
    make_tiny_store(source)
    records = {r.video_id: r for r in open_flow_store(str(source)).records(complete_only=True)}
    out = tmp_path / "raw"
    runner = task_runner(dask_address)
    config = ExportConfig(frames_per_task=20)
    first = export_flow.with_options(task_runner=runner)(str(source), str(out), config)
    assert first.videos == first.exported_now == len(records) == 8 and first.failed == 0

    # The annotation lists match the store: paths, RGB and flow counts, labels, splits.
    listed = _lists(out)
    assert set(listed) == set(records)
    for video_id, entry in listed.items():
        rec = records[video_id]
        assert entry == {"split": rec.split, "label": rec.label, "rgb": rec.n_frames, "_flow": rec.n_flows}

    # What a kill leaves: one video mid-write (a .partial folder, no record), one renamed but unrecorded.
    ids = sorted(records)
    (out / ids[0]).rename(out / (ids[0] + ".partial"))
    next((out / (ids[0] + ".partial")).glob("img_*")).unlink()
    # The writer records a folder as its own ("writing/") before it creates it, so both are redone, not refused.
    (out / STATE_DIR / "writing").mkdir(exist_ok=True)
    for vid in ids[:2]:
        key = vid.replace("/", "%2F") + ".json"
        (out / STATE_DIR / "done" / key).rename(out / STATE_DIR / "writing" / key)
    assert set(finished_videos(out)) == set(ids[2:])
    second = export_flow.with_options(task_runner=runner)(str(source), str(out), config)
    assert second.exported_now == 2 and second.videos == 8
    assert not list(out.rglob("*.partial")) and _lists(out) == listed
    assert export_flow.with_options(task_runner=runner)(str(source), str(out), config).exported_now == 0

    # Import back: a flow store with the same videos, labels and splits, taken from the lists.
    work = tmp_path / "work"
    imported = import_flow.with_options(task_runner=runner)(str(out), str(work), ImportConfig(frames_per_task=20))
    assert imported.imported == 8 and imported.failed == 0 and imported.labels == "mmaction2 annotation lists"
    assert imported.numbering == "img from 1, flow from 1"
    store = open_flow_store(str(work))
    assert {r.video_id: (r.label, r.split, r.n_frames, r.n_flows) for r in store.records(complete_only=True)} == {
        v: (r.label, r.split, r.n_frames, r.n_flows) for v, r in records.items()}
    manifest = {r["video_id"]: r for r in read_manifest(str(work))}
    assert {r["status"] for r in manifest.values()} == {"imported"} and manifest[ids[0]]["codec"] == "rawframes"
    again = import_flow.with_options(task_runner=runner)(str(out), str(work), ImportConfig())
    assert again.skipped_complete == 8 and again.imported == 0

    # The pipeline's model stages run on the imported store unchanged.
    tiny = {"pipeline": {"stages": ["train", "evaluate", "recognize", "potential"], "workers": 2,
                         "mlflow_tracking_uri": mlflow_uri},
            "train": {"epochs": 1, "generator": {"depth": 3, "ngf": 8, "input_size": 32}, "load_size": 32,
                      "phi": {"epochs": 1, "base_width": 4}, "batch_size": 8, "val_fraction": 0.34},
            "evaluate": {"frames_per_video": 2, "baseline_frames_per_video": 2},
            "recognize": {"seeds": [0], "appearance": {"epochs": 1, "base_width": 8},
                          "motion": {"epochs": 1, "base_width": 8}}}
    result = pipeline_flow(str(out), str(work), None, tiny, "demo")
    assert [r.status for r in result.stages] == ["ran"] * 4
    assert {r["method"] for r in result.results["evaluate"].table} >= {"Im2Flow", "Nearest neighbour"}
    assert result.results["train"].model_version == "1"


def test_cli_exports_hallucinated_flow_of_stills_and_names_unreadable_ones(tmp_path, prefect_harness):
    import cv2

    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32))
    model = tmp_path / "g.pt"
    save_checkpoint(str(model), {"kind": "im2flow-generator",
                                 "generator_config": generator.config.model_dump(mode="json"),
                                 "state_dict": generator.state_dict()})
    stills = tmp_path / "stills"
    (stills / "Run").mkdir(parents=True)
    cv2.imwrite(str(stills / "Run" / "a.jpg"), real_texture(45, 61))
    cv2.imwrite(str(stills / "b.png"), real_texture(30, 40, which=1))
    (stills / "Run" / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "raw"
    result = CliRunner().invoke(app, ["export", "--out", str(out), "--hallucinated", "--model", str(model),
                                      "--images", str(stills), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    assert "broken" in result.output and "cannot read as an image" in (out / "im2flow_export_report.csv").read_text()
    assert sorted(finished_videos(out)) == ["Run/a", "stills/b"]
    assert sorted(p.name for p in (out / "Run" / "a").iterdir()) == ["flow_x_00001.jpg", "flow_y_00001.jpg",
                                                                     "img_00001.jpg"]
    assert (out / "im2flow_val_split_1_rawframes_flow.txt").read_text() == "Run/a 1 0\nstills/b 1 1\n"

    # A second export of another class into the same folder: the lists cover both runs' classes.
    (tmp_path / "more" / "Jump").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "more" / "Jump" / "c.jpg"), real_texture(30, 40, which=0)[::-1].copy())
    again = ["export", "--out", str(out), "--hallucinated", "--model", str(model), "--images", str(tmp_path / "more"),
             "--device", "cpu"]
    result = CliRunner().invoke(app, again)
    assert result.exit_code == 0, result.output
    assert (out / "classInd.txt").read_text() == "1 Jump\n2 Run\n3 stills\n"
    assert (out / "im2flow_val_split_1_rawframes.txt").read_text() == "Jump/c 1 0\nRun/a 1 1\nstills/b 1 2\n"

    # Without its export state the folder is someone else's: refused, nothing touched; --overwrite is consent.
    shutil.rmtree(out / STATE_DIR)
    before = sorted(str(p) for p in out.rglob("*"))
    result = CliRunner().invoke(app, again)
    assert result.exit_code == 2 and "not empty and holds no im2flow export" in result.output
    assert "Traceback" not in result.output and sorted(str(p) for p in out.rglob("*")) == before
    result = CliRunner().invoke(app, again + ["--overwrite"])
    assert result.exit_code == 0, result.output

