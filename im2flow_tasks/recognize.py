"""Recognition tasks: train one stream (appearance, motion on hallucinated flow, or oracle motion on
true flow) for one seed, and score the validation and test samples with it.

A finished stream is saved as `<run_dir>/<stream>_seed<k>.pt` (classifier weights, its
configuration, labels and the scores); a re-run loads that file instead of training again, so an
interrupted recognition run redoes at most the stream it was in. MLflow logging happens in the
calling (driver) process.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import mlflow
import numpy as np
import torch
from prefect import get_run_logger, task
from torch import nn
from torch.utils.data import DataLoader, Dataset

from im2flow_core.flow_classifier import ClassifierConfig, FlowClassifier, load_state_dict_file
from im2flow_core.recognition import MotionStream, softmax_scores
from im2flow_core.training import ClassifierTrainable, FitState, autocast, fit
from im2flow_storage.checkpoints import load_checkpoint, save_checkpoint
from im2flow_storage.paths import join
from im2flow_tasks.config import RecognizeConfig, StreamConfig
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.progress import training_progress
from im2flow_tasks.recognition_report import RecognitionRun
from im2flow_tasks.recognize_data import RecognitionData, stream_dataset
from im2flow_tasks.tracking import flatten, log_artifact_url, tracked_run
from im2flow_tasks.train_data import epoch_loader, resolve_device

Stream = Literal["appearance", "motion", "oracle"]
STREAMS: tuple[Stream, ...] = ("appearance", "motion", "oracle")
INPUT_KEY = {"appearance": "rgb", "motion": "rgb", "oracle": "flow"}
"""The batch entry each stream reads: the frame, the frame (G hallucinates from it), the true flow image."""


def stream_settings(config: RecognizeConfig, stream: Stream) -> StreamConfig:
    """The classifier settings of `stream` (the oracle uses the motion stream's)."""
    return config.appearance if stream == "appearance" else config.motion


def classifier_config(settings: StreamConfig, num_classes: int) -> ClassifierConfig:
    """The ResNet of a stream; all three read 3-channel inputs (RGB or a flow image)."""
    return ClassifierConfig(num_classes=num_classes, base_width=settings.base_width, blocks=settings.blocks,
                            stem=settings.stem, dropout=settings.dropout)


def build_stream(stream: Stream, classifier: FlowClassifier, generator: nn.Module | None) -> nn.Module:
    """The module that maps a batch entry to logits: the classifier, or G + classifier for "motion"."""
    if stream == "motion":
        if generator is None:
            raise ValueError("the motion stream needs G")
        return MotionStream(generator, classifier)
    return classifier


def load_stream(path: str, generator: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """A saved stream (`<stream>_seed<k>.pt`, weights only) as an eval-mode module, and its record.

    The motion stream needs the G it was trained with (`generator`); its file names that G.
    """
    blob = load_checkpoint(path)
    if blob is None or blob.get("kind") != "im2flow-stream":
        raise ValueError(f"{path} is not a saved im2flow recognition stream")
    classifier = FlowClassifier(ClassifierConfig(**blob["classifier_config"]))
    classifier.load_state_dict(blob["state_dict"])
    return build_stream(blob["stream"], classifier, generator).eval(), blob


def predict_scores(model: nn.Module, dataset: Dataset, input_key: str, device: torch.device,
                   batch_size: int = 64) -> np.ndarray:
    """Class probabilities `(N, C)` float64 of `model` on every sample of `dataset`, in order."""
    model.eval()
    out = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            with autocast(device):
                logits = model(batch[input_key].to(device))
            out.append(softmax_scores(logits.float().cpu()))
    return np.concatenate(out) if out else np.zeros((0, 0))


def _finished(path: str) -> dict[str, Any] | None:
    """The result of a stream already trained and saved at `path`, or None."""
    done = load_checkpoint(path)
    if done is None or done.get("kind") != "im2flow-stream":
        return None
    return {"path": path, "run_id": done["run_id"], "val_scores": np.asarray(done["val_scores"]),
            "test_scores": np.asarray(done["test_scores"]), "epochs": done["epochs"],
            "best_val_acc": done["best_val_acc"]}


def _fit_classifier(classifier: FlowClassifier, model: nn.Module, stream: Stream, seed: int,
                    settings: StreamConfig, train_set: Dataset, val_set: Dataset, device: torch.device,
                    num_workers: int, show_progress: bool) -> FitState:
    """Train `classifier` (inside `model`) with early stopping on validation accuracy, logging each epoch to the
    active MLflow run; the best epoch's weights are loaded back at the end."""
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(state: FitState, metrics: dict[str, float], improved: bool) -> None:
        nonlocal best_state
        scheduler.step()
        if improved:
            best_state = copy.deepcopy(classifier.state_dict())
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)}, step=state.epoch)

    trainable = ClassifierTrainable(model, optimizer, INPUT_KEY[stream], device)
    train_batches = epoch_loader(train_set, settings.batch_size, seed, num_workers)
    with training_progress(f"training the {stream} stream, seed {seed}",
                           show_progress, len(train_batches(0)), settings.epochs, 0) as progress:
        state = fit(trainable, train_batches,
                    lambda: epoch_loader(val_set, settings.batch_size, seed, num_workers, False)(0),
                    max_epochs=settings.epochs, patience=settings.patience, on_epoch_end=on_epoch_end,
                    on_step=lambda _: progress.advance())
    if best_state is not None:
        classifier.load_state_dict(best_state)
    return state


@task(name="train-stream", task_run_name="train-{stream}-seed{seed}", persist_result=False)
def train_stream(config: RecognizeConfig, data: RecognitionData, stream: Stream, seed: int, run: RecognitionRun,
                 show_progress: bool = False) -> dict[str, Any]:
    """Train `stream` with `seed` (or load it if already finished in `run.run_dir`), as an MLflow run nested
    under `run.parent_run_id`; returns its scores and record. A terminal progress bar over its batches if
    `show_progress` (always a Prefect progress artifact).

    Returns {"path", "run_id", "val_scores" (Nv, C), "test_scores" (Nt, C), "epochs", "best_val_acc"}.
    """
    logger = get_run_logger()
    path = join(run.run_dir, f"{stream}_seed{seed}.pt")
    done = _finished(path)
    if done is not None:
        logger.info("%s stream, seed %d: already trained (%s)", stream, seed, path)
        return done
    device = resolve_device(config.device)
    generator = load_generator_export(run.generator_path)
    crop, scale = generator.config.input_size, float(generator.config.magnitude_scale_px)
    settings = stream_settings(config, stream)
    torch.manual_seed(seed)
    classifier = FlowClassifier(classifier_config(settings, len(data.labels)))
    if stream == "motion" and config.motion_init == "phi":
        load_state_dict_file(classifier, str(config.phi_weights))
    # channels-last as in im2flow_tasks.train
    model = build_stream(stream, classifier, generator).to(device, memory_format=torch.channels_last)
    train_set, val_set, test_set = (stream_dataset(data, part, crop, scale, seed, settings.hflip)
                                    for part in ("train", "val", "test"))
    with tracked_run(run.tracking_uri, config.experiment, f"{stream}-seed{seed}", parent_run_id=run.parent_run_id,
                     tags={"stream": stream, "seed": str(seed)}) as stream_run:
        mlflow.log_params(flatten({"stream": stream, "seed": seed, **settings.model_dump(mode="json"),
                                   "input": INPUT_KEY[stream], "crop_size": crop, "train_samples": len(train_set),
                                   "val_samples": len(val_set), "device": str(device),
                                   "init": config.motion_init if stream == "motion" else "fresh"}))
        state = _fit_classifier(classifier, model, stream, seed, settings, train_set, val_set, device,
                                config.num_workers, show_progress)
        val_scores = predict_scores(model, val_set, INPUT_KEY[stream], device)
        test_scores = predict_scores(model, test_set, INPUT_KEY[stream], device)
        best_val_acc = float((val_scores.argmax(1) == np.array(data.label_indices("val"))).mean())
        mlflow.log_metrics({"best_val_acc": best_val_acc, "epochs_trained": state.epoch})
        save_checkpoint(path, {"kind": "im2flow-stream", "stream": stream, "seed": seed, "labels": data.labels,
                               "classifier_config": classifier.config.model_dump(mode="json"),
                               "state_dict": {k: v.cpu() for k, v in classifier.state_dict().items()},
                               "generator": run.generator_path if stream == "motion" else None,
                               "val_scores": torch.from_numpy(val_scores), "test_scores": torch.from_numpy(test_scores),
                               "epochs": state.epoch, "best_val_acc": best_val_acc, "run_id": stream_run.info.run_id})
        log_artifact_url(path, "model")
    logger.info("%s stream, seed %d: %d epochs, validation accuracy %.3f", stream, seed, state.epoch, best_val_acc)
    return {"path": path, "run_id": stream_run.info.run_id, "val_scores": val_scores, "test_scores": test_scores,
            "epochs": state.epoch, "best_val_acc": best_val_acc}
