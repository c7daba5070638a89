"""The train flow: φ on true flow, then G, logged to MLflow and registered with an alias."""

from __future__ import annotations

import mlflow
from prefect import flow, get_run_logger

from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import load_json, save_json
from im2flow_storage.flow_store import config_fingerprint
from im2flow_storage.paths import join, train_url
from im2flow_tasks.config import TrainConfig
from im2flow_tasks.model_registry import register_generator
from im2flow_tasks.run_labels import publish_table
from im2flow_tasks.summaries import TrainSummary
from im2flow_tasks.tracking import flatten, git_commit, log_artifact_url, ready_tracking_uri, tracked_run
from im2flow_tasks.train import train_generator, train_phi
from im2flow_tasks.train_data import estimate_magnitude_scale, make_datasets, select_training_data


@flow(name="train", flow_run_name="train-{config.generator.input_size}px", log_prints=True, persist_result=False)
def train_flow(work_dir: str, config: TrainConfig = TrainConfig(), show_progress: bool = False) -> TrainSummary:
    """Train φ (unless given) and G on the flow store of `work_dir`; resumable; returns a summary.

    `show_progress`: a terminal bar per network (the Prefect UI always gets progress artifacts).

    Re-running with the same configuration continues from the last checkpoints; a finished run is
    not trained or registered again.
    """
    logger = get_run_logger()
    tracking_uri = ready_tracking_uri(work_dir, config.mlflow_tracking_uri)  # before any long work
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    data = select_training_data(store, config.val_fraction, config.seed)
    fingerprint = config_fingerprint({"store": store.fingerprint, **config.content_dict()})
    run_dir = train_url(work_dir, fingerprint)
    record = load_json(join(run_dir, "run.json")) or {}
    if "magnitude_scale_px" not in record:
        probe, _ = make_datasets(store, data, config.crop_size, config.resolved_load_size, 1.0, config.seed,
                                 config.frames_per_video)
        record["magnitude_scale_px"] = config.magnitude_scale_px or round(estimate_magnitude_scale(probe), 3)
    scale = float(record["magnitude_scale_px"])
    logger.info("training on %d train / %d validation videos, %d labels; magnitude scale %.3f px; run dir %s",
                len(data.train_videos), len(data.val_videos), len(data.labels), scale, run_dir)
    tags = {"dataset": store.url.rsplit("/flows/", 1)[0], "store_fingerprint": store.fingerprint,
            "train_fingerprint": fingerprint, "git_commit": git_commit(), "split_index": str(config.split_index or "")}
    run_name = "train" if config.split_index is None else f"train-split{config.split_index}"
    with tracked_run(tracking_uri, config.experiment, run_name, run_id=record.get("parent_run_id"),
                     tags=tags) as parent:
        if record.get("parent_run_id") != parent.info.run_id:  # a first run, or the tracking store changed
            mlflow.log_params(flatten({**config.content_dict(), "device": config.device,
                                       "magnitude_scale_px_resolved": scale}))
            if "parent_run_id" in record:  # a new store holds no registered version of this run yet
                record.pop("model_version", None)
            record["parent_run_id"] = parent.info.run_id
            save_json(join(run_dir, "run.json"), record)
        phi = train_phi(config, data, run_dir, tracking_uri, parent.info.run_id, scale, show_progress)
        gen = train_generator(config, data, run_dir, tracking_uri, parent.info.run_id, scale,
                              phi["path"] if config.loss.content_weight > 0 else None, show_progress)
        if "model_version" not in record:
            with tracked_run(tracking_uri, config.experiment, "generator", run_id=gen["run_id"]):
                log_artifact_url(gen["path"], "export")
            # Weights and plain config only: loading the registered model never unpickles code.
            version = register_generator(gen["path"], tracking_uri, gen["run_id"], config.registered_model,
                                         config.model_alias)
            record.update(model_version=version, model_uri=f"models:/{config.registered_model}@{config.model_alias}")
            save_json(join(run_dir, "run.json"), record)
    # run_id: this stage's MLflow run (φ's and G's runs are nested under it)
    summary = TrainSummary(run_dir=run_dir, tracking_uri=tracking_uri, run_id=record["parent_run_id"],
                           phi_val_acc=phi.get("val_acc"), generator_epochs=gen["epochs"],
                           generator_best_val_loss=round(gen["best_val_loss"], 5), stopped_early=gen["stopped_early"],
                           model_uri=record["model_uri"], model_version=str(record["model_version"]),
                           export=gen["path"], magnitude_scale_px=scale)
    publish_table("train-summary", summary.rows(), work_dir, "Training summary")
    return summary
