"""Training on a tiny store: a real Prefect run, a real MLflow SQLite store, the model registry."""

import json

import cv2
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from im2flow_cli.app import app
from im2flow_core.inference import predict_flow_images
from im2flow_flows.train import train_flow
from im2flow_storage.checkpoints import load_checkpoint, save_checkpoint
from im2flow_tasks.config import TrainConfig
from im2flow_tasks.models import load_generator, load_generator_export
from tests.conftest import make_tiny_store

pytestmark = pytest.mark.services


def _config(mlflow_uri, **overrides):
    base = dict(generator={"depth": 3, "ngf": 8, "input_size": 32}, load_size=32, epochs=2, batch_size=8,
                phi={"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 2, "batch_size": 8},
                num_workers=0, val_fraction=0.34, mlflow_tracking_uri=mlflow_uri, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


def test_train_logs_registers_resumes_and_predicts(tmp_path, prefect_harness, mlflow_uri):
    work = str(tmp_path / "w")
    make_tiny_store(tmp_path / "w")
    config = _config(mlflow_uri)
    summary = train_flow(work, config)
    client = MlflowClient(mlflow_uri)
    parent = client.get_run(summary.run_id)
    assert parent.data.params["generator.depth"] == "3" and parent.data.params["loss.content_weight"] == "1.0"
    assert parent.data.tags["store_fingerprint"] and parent.data.tags["git_commit"]
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    runs = {r.data.tags["stage"]: r for r in children}
    assert set(runs) == {"phi", "generator"}
    gen_run = runs["generator"]
    assert {"train_loss_pixel", "train_loss_content", "val_loss", "lr_factor"} <= set(gen_run.data.metrics)
    # The potential term is off (weight 0): no all-zero curve; the lr is a param, its factor a readable curve
    assert not any("potential" in m for m in gen_run.data.metrics if m.startswith(("train_", "val_", "best_val")))
    assert "lr" not in gen_run.data.metrics and gen_run.data.metrics["lr_factor"] == 1.0
    assert [m.step for m in client.get_metric_history(gen_run.info.run_id, "val_loss")] == [1, 2]
    artifacts = [a.path for a in client.list_artifacts(gen_run.info.run_id, "samples")]
    assert {"samples/epoch_001.png", "samples/epoch_002.png"} <= set(artifacts)  # every epoch
    grid = cv2.imread(client.download_artifacts(gen_run.info.run_id, "samples/epoch_002.png", str(tmp_path)))
    assert grid.shape[1] >= 3 * 128 and grid.shape[0] > 4 * 128  # 128-px tiles under a header and a title
    location = client.get_experiment_by_name("im2flow-train").artifact_location
    assert location.startswith(tmp_path.as_uri())  # beside the SQLite store, not in the cwd
    version = client.get_model_version_by_alias("im2flow-generator", "champion")
    assert str(version.version) == summary.model_version == "1"

    # The registered model (weights only) loads back and predicts exactly as the exported weights.
    logged = load_generator(None, work, mlflow_uri)
    exported = load_generator_export(summary.export)
    rgb = np.random.default_rng(0).integers(0, 255, (37, 45, 3), dtype=np.uint8)
    np.testing.assert_array_equal(predict_flow_images(logged, [rgb], 32)[0], predict_flow_images(exported, [rgb],
                                                                                                 32)[0])
    # Both carry the motion-potential head fitted after G (plain tensors), and its fit is logged.
    assert logged.potential_head is not None and exported.potential_head.ridge == logged.potential_head.ridge
    assert "potential_head_cv_spearman" in gen_run.data.metrics

    # A finished run is not trained or registered again.
    again = train_flow(work, config)
    assert again.model_version == "1" and again.run_id == summary.run_id

    # Interrupted after G's first epoch: the re-run trains one more epoch, continuing steps and the run.
    ckpt_path = f"{summary.run_dir}/generator.pt"
    ckpt = load_checkpoint(ckpt_path)
    steps_per_epoch = ckpt["state"]["step"] // 2
    ckpt["state"].update(epoch=1, step=steps_per_epoch, history=ckpt["state"]["history"][:1])
    save_checkpoint(ckpt_path, ckpt)
    record_path = tmp_path / "w" / "train" / summary.run_dir.rsplit("/", 1)[1] / "run.json"
    record = json.loads(record_path.read_text())
    del record["model_version"]
    record_path.write_text(json.dumps(record))
    resumed = train_flow(work, config)
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["state"]["epoch"] == 2 and ckpt["state"]["step"] == 2 * steps_per_epoch
    assert ckpt["run_id"] == gen_run.info.run_id and resumed.model_version == "2"
    assert len(client.get_metric_history(gen_run.info.run_id, "val_loss")) == 3  # epoch 2 logged again

    # The CLI predicts from the work dir's registry on a PNG and a JPEG of odd sizes.

    cv2.imwrite(str(tmp_path / "a.png"), rgb)
    cv2.imwrite(str(tmp_path / "b.jpg"), cv2.resize(rgb, (61, 29)))
    result = CliRunner(env={"MLFLOW_TRACKING_URI": mlflow_uri}).invoke(
        app, ["predict", str(tmp_path / "a.png"), str(tmp_path / "b.jpg"), "--work-dir", work,
              "--out", str(tmp_path / "out"), "--format", "flo"])
    assert result.exit_code == 0, result.output
    from im2flow_storage.flow_io import read_flo

    assert read_flo(tmp_path / "out" / "b_flow.flo").shape == (29, 61, 2)
    assert np.load(tmp_path / "out" / "a_flowimage.npy").shape == (37, 45, 3)
    assert (tmp_path / "out" / "a_flow.png").exists()
    assert isinstance(load_generator(summary.export, None), torch.nn.Module)


def test_pixel_only_ablation_skips_phi_and_given_phi_is_used(tmp_path, prefect_harness, mlflow_uri):
    work = str(tmp_path / "w")
    make_tiny_store(tmp_path / "w")
    summary = train_flow(work, _config(mlflow_uri, loss={"content_weight": 0.0}, epochs=1))
    gen = MlflowClient(mlflow_uri).search_runs(
        [MlflowClient(mlflow_uri).get_experiment_by_name("im2flow-train").experiment_id],
        "tags.stage = 'generator'")[0]
    assert "train_loss_content" not in gen.data.metrics  # the term is off: no all-zero curve
    phi_file = f"{summary.run_dir}/phi_final.pt"
    given = _config(mlflow_uri, epochs=1, phi={"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small",
                                               "weights": phi_file})
    second = train_flow(work, given)
    assert second.phi_val_acc is None  # φ was loaded, not trained
    with pytest.raises(ValueError, match="do not fit"):
        train_flow(work, _config(mlflow_uri, epochs=1, phi={"base_width": 8, "blocks": (1, 1, 1, 1), "stem": "small",
                                                            "weights": phi_file}))
