"""Evaluation and motion potential on a tiny store with a briefly trained G: real Prefect, real MLflow."""

import csv

import cv2
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from im2flow_cli.app import app
from im2flow_core.flow_metrics import COLUMNS
from im2flow_flows.evaluate import evaluate_flow
from im2flow_flows.potential import potential_flow
from im2flow_flows.train import train_flow
from im2flow_tasks.config import EvalConfig, TrainConfig
from tests.conftest import make_tiny_store

pytestmark = pytest.mark.services


@pytest.fixture
def trained(tmp_path, prefect_harness, mlflow_uri):
    work = str(tmp_path / "w")
    make_tiny_store(tmp_path / "w")
    config = TrainConfig(generator={"depth": 3, "ngf": 8, "input_size": 32}, load_size=32, epochs=1, batch_size=8,
                         loss={"content_weight": 0.0}, num_workers=0, val_fraction=0.34, mlflow_tracking_uri=mlflow_uri,
                         device="cpu", phi={"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 1})
    return work, train_flow(work, config).export, mlflow_uri


def test_evaluate_writes_the_papers_table_everywhere(trained, tmp_path):
    work, model, uri = trained
    result = evaluate_flow(work, EvalConfig(model=model, mlflow_tracking_uri=uri, frames_per_video=2))
    assert [row["method"] for row in result.table] == ["Im2Flow", "Nearest neighbour", "Zero flow", "Mean flow"]
    zero = result.table[2]
    assert zero["ds"] == 0.0 and zero["os"] == 0.0 and zero["epe"] > 0
    header = result.markdown.splitlines()[0]
    assert header.startswith("| method | EPE | EPE-Canny | EPE-FG | DS | DS-Canny | DS-FG | OS | OS-Canny | OS-FG |")
    with open(f"{result.out_dir}/table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and set(COLUMNS) <= set(rows[0])
    assert not any(c.startswith("potential") for c in rows[0])  # motion potential has its own table
    with open(f"{result.out_dir}/potential.csv") as handle:
        assert [r["method"] for r in csv.DictReader(handle)] == ["Im2Flow", "Nearest neighbour", "Zero flow",
                                                                 "Mean flow"]
    assert "Kendall τ" in result.markdown
    with open(f"{result.out_dir}/per_class.csv") as handle:
        per_class = list(csv.DictReader(handle))
    assert {r["label"] for r in per_class} == {"swim_left", "spin_cw"} and len(per_class) == 8
    client = MlflowClient(uri)
    parent = client.get_run(result.run_id)
    assert set(COLUMNS) <= set(parent.data.metrics)  # Im2Flow's row, named as in DESIGN.md
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert {c.data.tags["method"] for c in children} == {"Im2Flow", "Nearest neighbour", "Zero flow", "Mean flow"}
    assert {a.path for a in client.list_artifacts(result.run_id)} >= {"table.csv", "table.md", "examples.png"}


def test_potential_ranks_images_and_a_split(trained, tmp_path):
    work, model, uri = trained
    split = potential_flow(work, None, EvalConfig(model=model, mlflow_tracking_uri=uri))
    ranking = split.ranking
    assert [r["rank"] for r in ranking] == list(range(1, len(ranking) + 1))
    assert len(ranking) == 10 and all("@" in r["image"] for r in ranking)  # 2 test videos × 5 frames
    assert ranking[0]["potential_px"] >= ranking[-1]["potential_px"]
    assert set(split.spearman) == {"Im2Flow", "Nearest neighbour", "Mean flow", "Zero flow"}
    im2flow = next(r for r in split.agreement if r["method"] == "Im2Flow")
    assert set(im2flow) >= {"spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high"}
    assert all("true_mean_magnitude_px" in r for r in ranking)
    gallery = cv2.imread(f"{split.out_dir}/gallery.png")
    assert gallery is not None and gallery.shape[0] > 100
    still = np.full((40, 50, 3), 120, np.uint8)
    busy = np.random.default_rng(0).integers(0, 255, (45, 33, 3), dtype=np.uint8)
    stills = tmp_path / "stills"
    stills.mkdir()
    cv2.imwrite(str(stills / "still.png"), still)
    cv2.imwrite(str(stills / "busy.jpg"), busy)
    (stills / "broken.png").write_bytes(b"not an image")
    result = CliRunner(env={"MLFLOW_TRACKING_URI": uri}).invoke(
        app, ["potential", str(stills), "--work-dir", work, "--model", model])  # a folder of stills
    assert result.exit_code == 1, result.output  # one image was unreadable: named, the rest ranked
    assert "broken.png" in result.output and "pixels per frame" in result.output
    assert "broken.png" in open(f"{work}/potential/skipped.csv").read()
    with open(f"{work}/potential/ranking.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["image"] for r in rows} == {str(stills / "still.png"), str(stills / "busy.jpg")}
