"""The train stage's bookkeeping around φ and G: what it trains on and where, and G's registration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import task

from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import load_json, save_json
from im2flow_storage.flow_store import config_fingerprint
from im2flow_storage.paths import join, train_url
from im2flow_tasks.config import TrainConfig
from im2flow_tasks.model_registry import register_generator
from im2flow_tasks.tracking import log_artifact_url, tracked_run
from im2flow_tasks.train_data import TrainingData, estimate_magnitude_scale, make_datasets, select_training_data


@dataclass
class TrainingPlan:
    """One training run: its data, its folder `run_dir` (keyed by `fingerprint`: the store and the settings that
    shape the models), the magnitude scale G's output is normalised by (px), and `record`, the run's
    `run.json` (scale, MLflow parent run, registered version), which `save` writes back."""

    store_url: str
    store_fingerprint: str
    data: TrainingData = field(repr=False)
    fingerprint: str
    run_dir: str
    record: dict[str, Any]

    @property
    def scale(self) -> float:
        """The magnitude scale, px."""
        return float(self.record["magnitude_scale_px"])

    def save(self) -> None:
        """Write `record` to `run_dir`/run.json."""
        save_json(join(self.run_dir, "run.json"), self.record)


@task(name="plan-training", task_run_name="plan-training", persist_result=False)
def plan_training(work_dir: str, config: TrainConfig) -> TrainingPlan:
    """The train/validation videos of `work_dir`'s flow store, the run's folder and its record; on a first run the
    magnitude scale (`config.magnitude_scale_px`, else estimated from the training crops)."""
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    data = select_training_data(store, config.val_fraction, config.seed)
    fingerprint = config_fingerprint({"store": store.fingerprint, **config.content_dict()})
    run_dir = train_url(work_dir, fingerprint)
    record = load_json(join(run_dir, "run.json")) or {}
    if "magnitude_scale_px" not in record:
        probe, _ = make_datasets(store, data, config.crop_size, config.resolved_load_size, 1.0, config.seed,
                                 config.frames_per_video)
        record["magnitude_scale_px"] = config.magnitude_scale_px or round(estimate_magnitude_scale(probe), 3)
    return TrainingPlan(store.url, store.fingerprint, data, fingerprint, run_dir, record)


@task(name="register-generator", task_run_name="register-generator", persist_result=False)
def register_trained_generator(config: TrainConfig, tracking_uri: str, export_url: str,
                               generator_run_id: str) -> dict[str, str]:
    """Log G's export (`export_url`) on its MLflow run and register it as a new version of
    `config.registered_model` with alias `config.model_alias` (weights and plain config only: loading it never
    unpickles code). Returns the record's new entries: `model_version` and `model_uri`."""
    with tracked_run(tracking_uri, config.experiment, "generator", run_id=generator_run_id):
        log_artifact_url(export_url, "export")
    version = register_generator(export_url, tracking_uri, generator_run_id, config.registered_model,
                                 config.model_alias)
    return {"model_version": version, "model_uri": f"models:/{config.registered_model}@{config.model_alias}"}
