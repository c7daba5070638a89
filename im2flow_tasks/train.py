"""Training tasks: φ (the flow-stream classifier), then G with the Im2Flow loss.

Each task resumes from its checkpoint (`<run_dir>/phi.pt`, `<run_dir>/generator.pt`, saved after
every epoch), reopens its MLflow run, and returns where the final weights are. Run in the driver
process: MLflow logging stays in one process.
"""

from __future__ import annotations

import copy
from typing import Any

import mlflow
import numpy as np
import torch
from prefect import get_run_logger, task

from im2flow_core.figures import stack_rows, tile
from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier, load_state_dict_file
from im2flow_core.flow_viz import flow_image_to_color
from im2flow_core.losses import Im2FlowLoss
from im2flow_core.model_configs import LossConfig
from im2flow_core.training import ClassifierTrainable, FitState, GeneratorTrainable, fit
from im2flow_core.unet import UNetGenerator
from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import load_checkpoint, save_checkpoint
from im2flow_storage.paths import join, local_copy
from im2flow_storage.torch_datasets import FlowPairDataset
from im2flow_tasks.config import TrainConfig
from im2flow_tasks.potential import fit_head_on_store
from im2flow_tasks.progress import training_progress
from im2flow_tasks.tracking import flatten, tracked_run
from im2flow_tasks.train_data import TrainingData, epoch_loader, make_datasets, resolve_device


def phi_config(config: TrainConfig, num_classes: int) -> ClassifierConfig:
    """φ's architecture from the training configuration."""
    p = config.phi
    return ClassifierConfig(num_classes=num_classes, base_width=p.base_width, blocks=p.blocks, stem=p.stem)


def _resume(ckpt_path: str, modules: dict[str, Any], what: str) -> tuple[dict[str, Any] | None, FitState, str | None,
                                                                         Any]:
    """Load the checkpoint at `ckpt_path` into `modules` (name → object with load_state_dict).

    Returns (checkpoint or None, fit state, MLflow run id, best weights so far).
    """
    ckpt = load_checkpoint(ckpt_path)
    if ckpt is None:
        return None, FitState(), None, None
    for name, module in modules.items():
        module.load_state_dict(ckpt[name])
    state = FitState(**ckpt["state"])
    get_run_logger().info("%s resumes after epoch %d (step %d)", what, state.epoch, state.step)
    return ckpt, state, ckpt["run_id"], ckpt["best_model"]


def _log_epoch(metrics: dict[str, float], epoch: int) -> None:
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)}, step=epoch)


def unused_loss_terms(loss: LossConfig) -> set[str]:
    """The loss terms that are off (weight 0): their all-zero curves are not logged."""
    weights = {"pixel": loss.pixel_weight, "content": loss.content_weight, "potential": loss.potential_weight}
    return {term for term, weight in weights.items() if weight == 0}


def generator_epoch_metrics(metrics: dict[str, float], loss: LossConfig, lr: float, base_lr: float) -> dict[str, float]:
    """G's per-epoch metrics for MLflow: the terms that are on, and `lr_factor` = lr / the configured lr (1 → 0
    under the linear decay; the lr itself is a param: a 2e-4 curve charts as a flat 0)."""
    off = unused_loss_terms(loss)
    kept = {k: v for k, v in metrics.items() if not any(k.endswith(f"loss_{term}") for term in off)}
    return {**kept, "lr_factor": lr / base_lr if base_lr else 0.0}


@task(name="train-phi", task_run_name="train-phi", persist_result=False)
def train_phi(config: TrainConfig, data: TrainingData, run_dir: str, tracking_uri: str, parent_run_id: str,
              magnitude_scale_px: float, show_progress: bool = False) -> dict[str, Any]:
    """Train φ on true flow images of the training videos (or load `config.phi.weights`); a terminal
    progress bar over its batches if `show_progress` (always a Prefect progress artifact)."""
    logger = get_run_logger()
    store = open_flow_store(data.store_url)
    model = FlowClassifier(phi_config(config, len(data.labels)))
    out_path = join(run_dir, "phi_final.pt")
    if config.phi.weights is not None:
        load_state_dict_file(model, config.phi.weights)
        save_checkpoint(out_path, {"state_dict": model.state_dict(), "labels": data.labels})
        logger.info("φ loaded from %s (not trained)", config.phi.weights)
        return {"path": out_path, "run_id": None, "trained": False}
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    train_set, val_set = make_datasets(store, data, config.crop_size, config.resolved_load_size, magnitude_scale_px,
                                       config.seed, config.frames_per_video, config.phi.hflip)
    model.to(device, memory_format=torch.channels_last)  # see train_generator
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.phi.lr, weight_decay=config.phi.weight_decay)
    ckpt_path = join(run_dir, "phi.pt")
    ckpt, state, run_id, best_state = _resume(ckpt_path, {"model": model, "optimizer": optimizer}, "φ")
    with tracked_run(tracking_uri, config.experiment, "phi", run_id=run_id, parent_run_id=parent_run_id,
                     tags={"stage": "phi"}) as run:
        if ckpt is None:
            mlflow.log_params(flatten({"phi": config.phi.model_dump(mode="json"), "labels": ",".join(data.labels),
                                       "train_samples": len(train_set), "val_samples": len(val_set),
                                       "magnitude_scale_px": magnitude_scale_px}))

        def on_epoch_end(fit_state: FitState, metrics: dict[str, float], improved: bool) -> None:
            nonlocal best_state
            if improved:
                best_state = copy.deepcopy(model.state_dict())
            _log_epoch(metrics, fit_state.epoch)
            save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                        "state": fit_state.as_dict(), "run_id": run.info.run_id,
                                        "best_model": best_state})
            logger.info("φ epoch %d: %s", fit_state.epoch, {k: round(v, 4) for k, v in metrics.items()})

        trainable = ClassifierTrainable(model, optimizer, "flow", device)
        train_batches = epoch_loader(train_set, config.phi.batch_size, config.seed, config.num_workers)
        with training_progress("training φ", show_progress,
                               len(train_batches(state.epoch)), config.phi.epochs, state.epoch) as progress:
            state = fit(trainable, train_batches,
                        lambda: epoch_loader(val_set, config.phi.batch_size, config.seed, config.num_workers, False)(0),
                        max_epochs=config.phi.epochs, patience=config.phi.patience, state=state,
                        on_epoch_end=on_epoch_end, on_step=lambda _: progress.advance())
        model.load_state_dict(best_state if best_state is not None else model.state_dict())
        save_checkpoint(out_path, {"state_dict": model.cpu().state_dict(), "labels": data.labels})
        best = next((h for h in state.history if h["epoch"] == state.best_epoch), {})
        mlflow.log_metrics({"best_val_loss": state.best, "best_val_acc": best.get("val_acc", float("nan"))})
        return {"path": out_path, "run_id": run.info.run_id, "trained": True, "val_acc": best.get("val_acc"),
                "epochs": state.epoch}


def sample_grid(generator: UNetGenerator, dataset: FlowPairDataset, n: int, device: torch.device,
                epoch: int) -> np.ndarray:
    """`n` validation samples after `epoch`: rows of input | true flow | predicted flow (colour wheel, one scale
    a row) under column names, each tile at least MIN_TILE_PX high: `(H, W, 3) uint8`."""
    generator.eval()
    rows = []
    picks = np.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().astype(int)
    with torch.no_grad():
        for i in picks:
            item = dataset[int(i)]
            pred = generator.to_flow_image(generator(item["rgb"][None].to(device)))[0].cpu()
            truth = generator.to_flow_image(item["flow"][None].to(device))[0].cpu()
            truth_img, pred_img = truth.permute(1, 2, 0).numpy(), pred.permute(1, 2, 0).numpy()
            scale = max(float(truth_img[..., 2].max()), float(pred_img[..., 2].max()), 1e-3)
            rgb = ((item["rgb"].permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
            cells = [tile(rgb), tile(flow_image_to_color(truth_img, scale)),
                     tile(flow_image_to_color(pred_img, scale))]
            gap = np.full((cells[0].shape[0], 4, 3), 255, np.uint8)
            rows.append(np.concatenate([cells[0], gap, cells[1], gap, cells[2]], axis=1))
    return stack_rows(rows, f"G after epoch {epoch}: validation samples", ["input frame", "true flow",
                                                                           "predicted flow"],
                      tile(rgb).shape[1])


def _frozen_phi(config: TrainConfig, num_classes: int, phi_path: str | None,
                device: torch.device) -> FlowClassifier | None:
    """φ for the content loss (weights from `phi_path`, on `device`), or None when λ is 0."""
    if config.loss.content_weight <= 0:
        return None
    if phi_path is None:
        raise ValueError("λ > 0 needs φ")
    phi = FlowClassifier(phi_config(config, num_classes))
    with local_copy(phi_path) as local:
        load_state_dict_file(phi, local)
    return phi.to(device, memory_format=torch.channels_last)


def _export_generator(generator: UNetGenerator, gen_config: Any, data: TrainingData, store: Any,
                      device: torch.device, config: TrainConfig, run_dir: str) -> str:
    """Save the trained G (weights and plain config) as `generator_final.pt` in `run_dir`, with its motion-potential
    head when one can be fitted; the head's fit goes to the active MLflow run. Returns the file's URL."""
    logger = get_run_logger()
    # The motion-potential head reads G's activations (im2flow_core.potential_head): fitted now, on
    # the whole train split's frames and their true mean motion, cross-validated by video group.
    export = {"kind": "im2flow-generator", "generator_config": gen_config.model_dump(mode="json"),
              "labels": data.labels}
    try:
        head = fit_head_on_store(generator, store, data.train_videos + data.val_videos, device,
                                 config.potential_head_frames)
        export["potential_head"] = head.to_state()
        mlflow.log_metrics({"potential_head_cv_spearman": head.cv_spearman, "potential_head_ridge": head.ridge})
        logger.info("potential head: ridge %g, cross-validated Spearman %.3f", head.ridge, head.cv_spearman)
    except ValueError as exc:  # too few frames or groups: the potential falls back to the mean magnitude
        logger.warning("no motion-potential head: %s", exc)
    export["state_dict"] = generator.cpu().state_dict()
    export_path = join(run_dir, "generator_final.pt")
    save_checkpoint(export_path, export)
    return export_path


def _log_best_losses(state: FitState, config: TrainConfig) -> None:
    """G's best validation loss and its pixel and content terms, as the generator run's final metrics."""
    best = next((h for h in state.history if h["epoch"] == state.best_epoch), {})
    final = {"best_val_loss": state.best, "best_val_loss_pixel": best.get("val_loss_pixel", float("nan")),
             "best_val_loss_content": best.get("val_loss_content", float("nan"))}
    mlflow.log_metrics({k: v for k, v in generator_epoch_metrics(final, config.loss, 1.0, 1.0).items()
                        if k != "lr_factor" and np.isfinite(v)})


@task(name="train-generator", task_run_name="train-generator", persist_result=False)
def train_generator(config: TrainConfig, data: TrainingData, run_dir: str, tracking_uri: str, parent_run_id: str,
                    magnitude_scale_px: float, phi_path: str | None, show_progress: bool = False) -> dict[str, Any]:
    """Train G with L = w_pixel · L_pixel + λ · L_content, φ frozen; returns the final weights' path.
    A terminal progress bar over its batches if `show_progress` (always a Prefect progress artifact)."""
    logger = get_run_logger()
    device = resolve_device(config.device)
    store = open_flow_store(data.store_url)
    torch.manual_seed(config.seed)
    train_set, val_set = make_datasets(store, data, config.crop_size, config.resolved_load_size, magnitude_scale_px,
                                       config.seed, config.frames_per_video)
    gen_config = config.generator.model_copy(update={"magnitude_scale_px": magnitude_scale_px})
    # Channels-last weights: convolutions run 1.19× faster on CPU (G + φ step at 64 px, side by side);
    # inputs stay NCHW (the first convolution converts), checkpoints load into either layout.
    generator = UNetGenerator(gen_config).to(device, memory_format=torch.channels_last)
    loss = Im2FlowLoss(config.loss, _frozen_phi(config, len(data.labels), phi_path, device))
    optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=(config.beta1, 0.999))
    decay_start = config.lr_decay_start if config.lr_decay_start is not None else config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # linear decay to 0 from `decay_start`, actually applied
        optimizer, lambda e: 1.0 - max(0, e - decay_start) / max(1, config.epochs - decay_start + 1))
    ckpt_path = join(run_dir, "generator.pt")
    ckpt, state, run_id, best_state = _resume(
        ckpt_path, {"model": generator, "optimizer": optimizer, "scheduler": scheduler}, "G")
    with tracked_run(tracking_uri, config.experiment, "generator", run_id=run_id, parent_run_id=parent_run_id,
                     tags={"stage": "generator"}) as run:
        if ckpt is None:
            mlflow.log_params(flatten({"generator": gen_config.model_dump(mode="json"),
                                       "loss": config.loss.model_dump(mode="json"), "epochs": config.epochs,
                                       "batch_size": config.batch_size, "lr": config.lr, "beta1": config.beta1,
                                       "train_samples": len(train_set), "val_samples": len(val_set),
                                       "device": str(device)}))

        def on_epoch_end(fit_state: FitState, metrics: dict[str, float], improved: bool) -> None:
            nonlocal best_state
            scheduler.step()
            if improved:
                best_state = copy.deepcopy(generator.state_dict())
            _log_epoch(generator_epoch_metrics(metrics, config.loss, optimizer.param_groups[0]["lr"], config.lr),
                       fit_state.epoch)
            # Every epoch, so the grids show how G learns (a 4-row grid costs 4 forward passes).
            mlflow.log_image(sample_grid(generator, val_set, 4, device, fit_state.epoch),
                             f"samples/epoch_{fit_state.epoch:03d}.png")
            save_checkpoint(ckpt_path, {"model": generator.state_dict(), "optimizer": optimizer.state_dict(),
                                        "scheduler": scheduler.state_dict(), "state": fit_state.as_dict(),
                                        "run_id": run.info.run_id, "best_model": best_state})
            logger.info("G epoch %d: %s", fit_state.epoch, {k: round(v, 4) for k, v in metrics.items()})

        trainable = GeneratorTrainable(generator, loss, optimizer, device)
        train_batches = epoch_loader(train_set, config.batch_size, config.seed, config.num_workers)
        with training_progress("training G", show_progress,
                               len(train_batches(state.epoch)), config.epochs, state.epoch) as progress:
            state = fit(trainable, train_batches,
                        lambda: epoch_loader(val_set, config.batch_size, config.seed, config.num_workers, False)(0),
                        max_epochs=config.epochs, patience=config.patience, state=state, on_epoch_end=on_epoch_end,
                        on_step=lambda _: progress.advance())
        if best_state is not None:
            generator.load_state_dict(best_state)
        export_path = _export_generator(generator.eval(), gen_config, data, store, device, config, run_dir)
        _log_best_losses(state, config)
        return {"path": export_path, "run_id": run.info.run_id, "epochs": state.epoch, "best_epoch": state.best_epoch,
                "best_val_loss": state.best, "stopped_early": state.stopped_early}
