"""The whole pipeline as one real Prefect flow (temporary API) on a real Dask LocalCluster, twice and more."""

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import im2flow_tasks.ingest as ingest_tasks
from im2flow_cli.app import app
from im2flow_flows.pipeline import pipeline_flow
from im2flow_storage import open_flow_store
from im2flow_storage.demo_dataset import write_demo_dataset
from im2flow_tasks.pipeline_config import set_field
from tests.conftest import panning_frames, write_video

pytestmark = pytest.mark.services

TINY = {"extract": {"short_side": 32},
        "train": {"epochs": 1, "generator": {"depth": 5, "ngf": 8, "input_size": 32}, "load_size": 36,
                  "phi": {"epochs": 1, "base_width": 8}, "batch_size": 8},
        "evaluate": {"frames_per_video": 2, "baseline_frames_per_video": 2},
        "recognize": {"seeds": [0], "appearance": {"epochs": 1, "base_width": 8},
                      "motion": {"epochs": 1, "base_width": 8}},
        "pipeline": {"workers": 2}}
"""The demo preset made tiny: one epoch of everything at 32 px."""


def tiny(**changes):
    """TINY with `changes` ("section.field" → value) applied."""
    out = {section: dict(fields) for section, fields in TINY.items()}
    for dotted, value in changes.items():
        set_field(out, dotted, value)
    return out


def test_pipeline_runs_reuses_and_processes_only_what_changed(tmp_path, prefect_harness, monkeypatch):
    root, work = tmp_path / "data", str(tmp_path / "work")
    write_demo_dataset(root, groups_per_class=3, test_groups=1, size=48, n_frames=5)
    n_videos = sum(1 for p in root.rglob("*") if p.suffix in (".mp4", ".avi"))

    scans = []
    scan = ingest_tasks.scan_dataset_with_evidence
    monkeypatch.setattr(ingest_tasks, "scan_dataset_with_evidence", lambda *a: scans.append(a) or scan(*a))
    first = pipeline_flow(str(root), work, None, tiny(), "demo")
    assert len(scans) == 1  # the pipeline's scan keys the ingest stage, and ingest reuses it
    assert [r.stage for r in first.stages] == ["ingest", "extract", "train", "evaluate", "recognize", "potential"]
    assert all(r.status == "ran" for r in first.stages)
    results = first.results
    assert results["ingest"].videos == n_videos and results["extract"].extracted == n_videos
    assert {r["method"] for r in results["evaluate"].table} >= {"Im2Flow", "Zero flow", "Nearest neighbour"}
    assert {r["method"] for r in results["recognize"].table} >= {"appearance", "motion", "fused"}

    # MLflow: one parent run, every stage's run nested under it, every config field a param, DESIGN's metric names
    client = MlflowClient(first.tracking_uri)
    parent = client.get_run(first.run_id)
    assert first.experiment_id == parent.info.experiment_id  # for the UI link the console prints
    assert parent.data.params["train.epochs"] == "1" and parent.data.params["extract.short_side"] == "32"
    assert parent.data.tags["store_fingerprint"] == results["extract"].fingerprint
    assert parent.data.tags["dataset"] == str(root) and parent.data.tags["git_commit"]
    assert {"epe", "epe_canny", "epe_fg", "ds", "os", "acc_appearance", "acc_motion",
            "acc_fused"} <= set(parent.data.metrics)
    experiment = parent.info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{first.run_id}'")
    assert {c.info.run_name for c in children} == {"ingest", "extract", "train", "evaluate-test", "recognize-test",
                                                   "potential"}

    # Nothing changed: every stage is a Prefect cache hit and returns the same results
    second = pipeline_flow(str(root), work, None, tiny(), "demo")
    assert all(r.status.startswith("cached") for r in second.stages)
    assert second.results["evaluate"].markdown == results["evaluate"].markdown
    assert client.get_run(second.run_id).data.metrics["epe"] == parent.data.metrics["epe"]

    # A new video and λ = 0: ingest probes one file, extraction adds one video, the later stages rerun
    write_video(root / "Walk" / "v_Walk_g09_c01.avi", panning_frames(5, 48, 48), "MJPG")
    with open(root / "ucfTrainTestlist" / "trainlist01.txt", "a") as lists:
        lists.write("Walk/v_Walk_g09_c01.avi\n")
    third = pipeline_flow(str(root), work, None, tiny(**{"train.loss": {"content_weight": 0.0}}), "demo")
    assert all(r.status == "ran" for r in third.stages)
    assert third.results["ingest"].probed == 1
    assert (third.results["extract"].extracted, third.results["extract"].skipped_complete) == (1, n_videos)
    assert len(open_flow_store(work).video_ids) == n_videos + 1

    # Only evaluation settings changed: ingest, extract and training are reused
    fourth = pipeline_flow(str(root), work, None, tiny(**{"train.loss": {"content_weight": 0.0},
                                                          "evaluate.frames_per_video": 1}), "demo")
    status = {r.stage: r.status for r in fourth.stages}
    assert [s for s, v in status.items() if v == "ran"] == ["evaluate", "potential"]

    result = CliRunner().invoke(app, ["compare", first.run_id, third.run_id, "--work-dir", work],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(li for li in result.output.splitlines() if "train.loss.content_weight" in li)
    assert "1.0" in line and "0.0" in line
    assert "acc_fused" in result.output and "epe_fg" in result.output
    result = CliRunner().invoke(app, ["compare", first.run_id, "no-such-run", "--work-dir", work])
    assert result.exit_code == 2 and "no-such-run" in result.output


def test_official_splits_run_from_one_store_and_report_each_split_and_their_mean(tmp_path, prefect_harness):
    import csv
    import math

    from im2flow_storage.flow_store import list_flow_stores
    from im2flow_tasks.train_data import select_training_data

    root, work = tmp_path / "data", str(tmp_path / "work")
    write_demo_dataset(root, groups_per_class=3, test_groups=1, size=48, n_frames=5)
    lists = root / "ucfTrainTestlist"
    train1 = lists.joinpath("trainlist01.txt").read_text().splitlines()
    test1 = lists.joinpath("testlist01.txt").read_text().splitlines()
    everything = [line.split()[0] for line in train1] + test1
    # Split 2 holds out group 1 instead of group 3.
    lists.joinpath("testlist02.txt").write_text("".join(f"{v}\n" for v in everything if "_g01_" in v))
    lists.joinpath("trainlist02.txt").write_text("".join(f"{v} 1\n" for v in everything if "_g01_" not in v))

    stages = "ingest,extract,train,evaluate,recognize"
    result = pipeline_flow(str(root), work, None, tiny(**{"pipeline.splits": "1,2", "pipeline.stages": stages}), "demo")
    assert [r.stage for r in result.stages] == [
        "ingest", "extract", "train-split1", "evaluate-split1", "recognize-split1",
        "train-split2", "evaluate-split2", "recognize-split2"]
    assert len(list_flow_stores(work)) == 1 and result.results["extract"].extracted == len(everything)
    for k, group in ((1, "_g03_"), (2, "_g01_")):  # each split is evaluated on its own test videos
        with open(tmp_path / "work" / "eval" / f"split{k}-test" / "per_image.csv") as rows:
            assert {group in row["video_id"] for row in csv.DictReader(rows)} == {True}
    splits = result.splits
    assert splits.splits == [1, 2] and "| mean ± std |" in splits.markdown
    assert {"epe", "os_fg", "acc_fused"} <= set(splits.metrics)
    metrics = MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    assert math.isclose(metrics["epe"], (metrics["epe_split1"] + metrics["epe_split2"]) / 2, rel_tol=1e-6)
    assert math.isclose(metrics["acc_fused_split_std"],
                        abs(metrics["acc_fused_split1"] - metrics["acc_fused_split2"]) / 2,
                        rel_tol=1e-6, abs_tol=1e-9)

    # Re-ingesting with split 2: the store (not re-extracted) now trains on split 2's partition.
    again = pipeline_flow(str(root), work, None, tiny(**{"pipeline.stages": "ingest,extract",
                                                         "ingest.split_index": 2}), "demo")
    assert again.results["extract"].extracted == 0
    data = select_training_data(open_flow_store(work), 0.3, 0)
    assert data.train_videos and not any("_g01_" in v for v in data.train_videos + data.val_videos)
