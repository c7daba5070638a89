"""The train flow: φ on true flow, then G, logged to MLflow and registered with an alias."""

from __future__ import annotations

import mlflow
from prefect import flow, get_run_logger

from im2flow_tasks.config import TrainConfig
from im2flow_tasks.run_labels import publish_table
from im2flow_tasks.summaries import TrainSummary
from im2flow_tasks.tracking import flatten, git_commit, ready_tracking_uri, tracked_run
from im2flow_tasks.train import train_generator, train_phi
from im2flow_tasks.training_run import plan_training, register_trained_generator


@flow(name="train", flow_run_name="train-{config.generator.input_size}px", log_prints=True, persist_result=False)
def train_flow(work_dir: str, config: TrainConfig = TrainConfig(), show_progress: bool = False) -> TrainSummary:
    """Train φ (unless given) and G on the flow store of `work_dir`; resumable; returns a summary.

    `show_progress`: a terminal bar per network (the Prefect UI always gets progress artifacts).

    Re-running with the same configuration continues from the last checkpoints; a finished run is
    not trained or registered again.
    """
    logger = get_run_logger()
    tracking_uri = ready_tracking_uri(work_dir, config.mlflow_tracking_uri)  # before any long work
    plan = plan_training(work_dir, config)
    data, record, scale = plan.data, plan.record, plan.scale
    logger.info("training on %d train / %d validation videos, %d labels; magnitude scale %.3f px; run dir %s",
                len(data.train_videos), len(data.val_videos), len(data.labels), scale, plan.run_dir)
    tags = {"dataset": plan.store_url.rsplit("/flows/", 1)[0], "store_fingerprint": plan.store_fingerprint,
            "train_fingerprint": plan.fingerprint, "git_commit": git_commit(),
            "split_index": str(config.split_index or "")}
    run_name = "train" if config.split_index is None else f"train-split{config.split_index}"
    with tracked_run(tracking_uri, config.experiment, run_name, run_id=record.get("parent_run_id"),
                     tags=tags) as parent:
        if record.get("parent_run_id") != parent.info.run_id:  # a first run, or the tracking store changed
            mlflow.log_params(flatten({**config.content_dict(), "device": config.device,
                                       "magnitude_scale_px_resolved": scale}))
            if "parent_run_id" in record:  # a new store holds no registered version of this run yet
                record.pop("model_version", None)
            record["parent_run_id"] = parent.info.run_id
            plan.save()
        phi = train_phi(config, data, plan.run_dir, tracking_uri, parent.info.run_id, scale, show_progress)
        gen = train_generator(config, data, plan.run_dir, tracking_uri, parent.info.run_id, scale,
                              phi["path"] if config.loss.content_weight > 0 else None, show_progress)
        if "model_version" not in record:
            record.update(register_trained_generator(config, tracking_uri, gen["path"], gen["run_id"]))
            plan.save()
    # run_id: this stage's MLflow run (φ's and G's runs are nested under it)
    summary = TrainSummary(run_dir=plan.run_dir, tracking_uri=tracking_uri, run_id=record["parent_run_id"],
                           phi_val_acc=phi.get("val_acc"), generator_epochs=gen["epochs"],
                           generator_best_val_loss=round(gen["best_val_loss"], 5), stopped_early=gen["stopped_early"],
                           model_uri=record["model_uri"], model_version=str(record["model_version"]),
                           export=gen["path"], magnitude_scale_px=scale)
    publish_table("train-summary", summary.rows(), work_dir, "Training summary")
    return summary
