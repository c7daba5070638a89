"""Two-stream recognition end to end on a tiny store and on labelled still images: real Prefect, real MLflow."""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from im2flow_cli.app import app
from im2flow_core.synthetic_actions import make_scene_style, render_clip
from im2flow_flows.recognize import recognize_flow
from im2flow_flows.train import train_flow
from im2flow_storage import open_flow_store
from im2flow_tasks.config import RecognizeConfig, TrainConfig
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.recognize import load_stream, predict_scores
from im2flow_tasks.recognize_data import frames_data, stream_dataset
from tests.conftest import make_tiny_store

pytestmark = pytest.mark.services

TINY_STREAM = {"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 1, "batch_size": 8}


@pytest.fixture
def trained(tmp_path, prefect_harness, mlflow_uri):
    work = str(tmp_path / "w")
    make_tiny_store(tmp_path / "w", groups=4)
    config = TrainConfig(generator={"depth": 3, "ngf": 8, "input_size": 32}, load_size=32, epochs=1, batch_size=8,
                         loss={"content_weight": 0.0}, num_workers=0, val_fraction=0.34, mlflow_tracking_uri=mlflow_uri,
                         device="cpu", phi={"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 1})
    return work, train_flow(work, config).export, mlflow_uri


def test_recognize_logs_streams_fusion_and_oracle_and_streams_load_back(trained):
    work, model, uri = trained
    config = RecognizeConfig(model=model, seeds=(0, 1), appearance=TINY_STREAM, motion=TINY_STREAM, device="cpu",
                             mlflow_tracking_uri=uri, val_fraction=0.34)
    result = recognize_flow(work, config)
    table = {row["method"]: row for row in result.table}
    assert set(table) == {"appearance", "motion", "fused", "oracle", "fused_oracle"}
    assert all(row["seeds"] == 2 and 0 <= row["acc"] <= 1 and row["acc_std"] >= 0 for row in table.values())
    assert 0 <= table["fused"]["motion_weight"] <= 1
    out = Path(result.out_dir)
    assert {p.name for p in out.iterdir()} >= {"table.csv", "table.md", "per_seed.csv", "confusion_fused.png",
                                               "appearance_seed0.pt", "motion_seed1.pt", "oracle_seed0.pt"}
    assert cv2.imread(str(out / "confusion_appearance.png")) is not None
    client = MlflowClient(uri)
    parent = client.get_run(result.run_id)
    assert {"acc_appearance", "acc_motion", "acc_fused", "acc_oracle", "acc_fused_std"} <= set(parent.data.metrics)
    assert parent.data.metrics["acc_fused"] == pytest.approx(table["fused"]["acc"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(c.data.tags["mlflow.runName"] for c in children) == sorted(
        f"{s}-seed{k}" for s in ("appearance", "motion", "oracle") for k in (0, 1))
    assert {a.path for a in client.list_artifacts(result.run_id, "report")} >= {
        "report/table.csv", "report/confusion_motion.png"}
    # The logged motion stream, downloaded from MLflow, predicts exactly what the run measured.
    motion_run = next(c for c in children if c.data.tags["mlflow.runName"] == "motion-seed0")
    local = client.download_artifacts(motion_run.info.run_id, "model/motion_seed0.pt")
    stream, record = load_stream(local, load_generator_export(model))
    data = frames_data(open_flow_store(work), "test", 0.34, 0, None, 5)
    test_set = stream_dataset(data, "test", 32, float(stream.generator.config.magnitude_scale_px), 0)
    scores = predict_scores(stream, test_set, "rgb", torch.device("cpu"))
    np.testing.assert_allclose(scores, record["test_scores"].numpy(), atol=1e-6)
    # A re-run finds every stream trained and recomputes nothing.
    again = recognize_flow(work, config)
    assert again.out_dir == result.out_dir and again.per_seed == result.per_seed


def test_recognize_on_labelled_still_images_via_the_cli(trained, tmp_path):
    work, model, uri = trained
    folder = tmp_path / "stills"
    folder.mkdir()
    rows = []
    for a, action in enumerate(("swim_left", "spin_cw")):
        for k in range(6):
            frame = render_clip(action, 50 + k, make_scene_style(500 + 10 * a + k, 40), 2)[0]
            name = f"{action}_{k}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            rows.append({"path": name, "label": action, "split": "test" if k >= 4 else "train"})
    (folder / "broken.png").write_bytes(b"not an image")
    rows.append({"path": "broken.png", "label": "spin_cw", "split": "train"})
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    config = tmp_path / "recognize.yaml"
    config.write_text("recognize:\n  appearance: {base_width: 4, blocks: [1, 1, 1, 1], stem: small, epochs: 1}\n"
                      "  motion: {base_width: 4, blocks: [1, 1, 1, 1], stem: small, epochs: 1}\n  device: cpu\n")
    result = CliRunner(env={"MLFLOW_TRACKING_URI": uri}).invoke(
        app, ["recognize", "--work-dir", work, "--model", model, "--images-csv", str(folder / "labels.csv"),
              "--seeds", "3", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "| appearance |" in result.output and "| fused |" in result.output
    assert "| oracle |" not in result.output  # still images have no true flow
    out = next(Path(work, "recognize").iterdir(), None)
    reports = [p for p in Path(work, "recognize").iterdir() if (p / "skipped.csv").exists()]
    assert out is not None and len(reports) == 1
    skipped = (reports[0] / "skipped.csv").read_text()
    assert "broken.png" in skipped and "not a readable image" in skipped
    with open(reports[0] / "per_seed.csv") as handle:
        per_seed = list(csv.DictReader(handle))
    assert {r["method"] for r in per_seed} == {"appearance", "motion",
                                               "fused"} and {r["seed"] for r in per_seed} == {"3"}


def test_motion_stream_can_start_from_phi_and_a_mismatched_phi_is_named(trained):
    work, model, uri = trained
    phi_path = next(Path(work, "train").glob("*/phi_final.pt"))
    config = RecognizeConfig(model=model, seeds=(0,), appearance=TINY_STREAM, motion=TINY_STREAM, oracle=False,
                             motion_init="phi", phi_weights=phi_path, device="cpu", mlflow_tracking_uri=uri,
                             val_fraction=0.34)
    result = recognize_flow(work, config)
    assert {row["method"] for row in result.table} == {"appearance", "motion", "fused"}
    client = MlflowClient(uri)
    motion = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                "tags.stream = 'motion'")[0]
    assert motion.data.params["init"] == "phi"
    wider = config.model_copy(update={"motion": config.motion.model_copy(update={"base_width": 8})})
    with pytest.raises(ValueError, match="phi_final.pt: weights do not fit"):
        recognize_flow(work, wider)
