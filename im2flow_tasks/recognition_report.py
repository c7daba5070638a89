"""The recognize stage's bookkeeping: what it trains on, G's frozen copy, fusion and scores per seed, and the
report (accuracy table over seeds, per-seed rows, confusion matrices)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from prefect import task

from im2flow_core.figures import confusion_image
from im2flow_core.recognition import (
    confusion_matrix,
    fuse,
    mean_class_accuracy,
    select_fusion_weight,
    top1_accuracy,
    video_labels,
    video_scores,
)
from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import save_checkpoint
from im2flow_storage.flow_store import config_fingerprint
from im2flow_storage.paths import join, recognize_url
from im2flow_storage.reports import csv_text
from im2flow_tasks.config import RecognizeConfig
from im2flow_tasks.models import load_generator
from im2flow_tasks.recognize_data import RecognitionData, frames_data, images_data

METHODS = ("appearance", "motion", "fused", "oracle", "fused_oracle")
"""Rows of the accuracy table: each stream alone, appearance + motion, and appearance + oracle motion."""


@task(name="load-recognition-data", task_run_name="load-recognition-data", persist_result=False)
def load_recognition_data(work_dir: str, config: RecognizeConfig) -> tuple[RecognitionData, str]:
    """The samples to train, validate and test on, and what names their source in fingerprints and tags:
    labelled still images (`config.images_csv`, named by its path), else frames of the work dir's flow store
    (`config.split` tested; named by the store's fingerprint, which survives the store moving)."""
    if config.images_csv is not None:
        data = images_data(str(config.images_csv), config.val_fraction, config.test_fraction, 0)
        return data, str(config.images_csv)
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    return frames_data(store, config.split, config.val_fraction, 0, config.frames_per_video,
                       config.eval_frames_per_video), store.fingerprint


@dataclass(frozen=True)
class RecognitionRun:
    """Where one recognition run keeps its files (`run_dir`, keyed by `fingerprint`) and G's frozen copy, and
    where it tracks (`tracking_uri`; `parent_run_id`, the MLflow run its streams nest under, once open)."""

    run_dir: str
    fingerprint: str
    generator_path: str
    tracking_uri: str
    parent_run_id: str = ""


@task(name="freeze-generator", task_run_name="freeze-generator", persist_result=False)
def freeze_generator(work_dir: str, config: RecognizeConfig, labels: list[str], source_tag: str,
                     tracking_uri: str) -> RecognitionRun:
    """Load G (`config.model`, or the registry alias in `tracking_uri`) and save its weights in the run's folder,
    `W/recognize/<fingerprint>/generator.pt`, which every motion stream reads. The fingerprint covers the data
    source (`source_tag`), the configuration and G's weights, so a changed G or setting starts a new run folder."""
    generator = load_generator(config.model, work_dir, tracking_uri)
    state = {k: v.cpu() for k, v in generator.state_dict().items()}
    fingerprint = config_fingerprint({"source": source_tag, "config": config.content_dict(),
                                      "generator": config_fingerprint({k: float(v.float().sum())
                                                                       for k, v in state.items()})})
    run_dir = recognize_url(work_dir, fingerprint)
    path = join(run_dir, "generator.pt")
    save_checkpoint(path, {"kind": "im2flow-generator", "generator_config": generator.config.model_dump(mode="json"),
                           "labels": labels, "state_dict": state})
    return RecognitionRun(run_dir, fingerprint, path, tracking_uri)


def seed_metrics(scores: np.ndarray, labels: np.ndarray, ids: list[str], num_classes: int) -> dict[str, float]:
    """Top-1 by sample, mean per-class accuracy and top-1 by video (mean sample scores) of `scores` `(N, C)`."""
    _, per_video = video_scores(scores, ids)
    return {"acc": top1_accuracy(scores, labels), "mca": mean_class_accuracy(scores, labels, num_classes),
            "video_acc": top1_accuracy(per_video, video_labels(labels, ids))}


@dataclass(frozen=True)
class SeedResult:
    """One seed's rows (method, seed, motion weight, accuracies) and confusion matrices `(C, C)` by method."""

    rows: list[dict[str, Any]]
    confusions: dict[str, np.ndarray] = field(repr=False)


@task(name="score-seed", task_run_name="score-seed{seed}", persist_result=False)
def score_seed(config: RecognizeConfig, data: RecognitionData, seed: int,
               streams: dict[str, dict[str, Any]]) -> SeedResult:
    """Fuse appearance with motion (and with oracle motion) for one seed, the weight chosen on validation scores
    unless `config.fusion_weight` fixes it, and score every method on the test samples. `streams`: each
    stream's result (`im2flow_tasks.recognize.train_stream`)."""
    val_labels = np.array(data.label_indices("val"))
    test_labels, test_ids = np.array(data.label_indices("test")), data.ids("test")
    scores = {s: r["test_scores"] for s, r in streams.items()}
    weights: dict[str, float] = {}
    for fused, motion in (("fused", "motion"), ("fused_oracle", "oracle")):
        if motion not in streams:
            continue
        weight = config.fusion_weight
        if weight is None:  # chosen on validation scores only
            weight = select_fusion_weight(streams["appearance"]["val_scores"], streams[motion]["val_scores"],
                                          val_labels)
        weights[fused] = weight
        scores[fused] = fuse(streams["appearance"]["test_scores"], streams[motion]["test_scores"], weight)
    rows = [{"method": method, "seed": seed, "motion_weight": weights.get(method),
             **seed_metrics(method_scores, test_labels, test_ids, len(data.labels))}
            for method, method_scores in scores.items()]
    confusions = {method: confusion_matrix(method_scores, test_labels, len(data.labels))
                  for method, method_scores in scores.items()}
    return SeedResult(rows, confusions)


def _fmt(mean: float, std: float) -> str:
    return "n/a" if not math.isfinite(mean) else f"{mean:.3f} ± {std:.3f}"


def accuracy_table(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds of each method's accuracies."""
    table = []
    for method in METHODS:
        rows = [r for r in per_seed if r["method"] == method]
        if not rows:
            continue
        entry: dict[str, Any] = {"method": method, "seeds": len(rows)}
        for key in ("acc", "mca", "video_acc"):
            values = np.array([r[key] for r in rows], np.float64)
            entry[key], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        weights = [r["motion_weight"] for r in rows if r.get("motion_weight") is not None]
        entry["motion_weight"] = float(np.mean(weights)) if weights else math.nan
        table.append(entry)
    return table


def markdown_accuracy(table: list[dict[str, Any]]) -> str:
    """The accuracy table as Markdown: mean ± std over seeds."""
    lines = ["| method | top-1 (frames) | mean per-class | top-1 (videos) | motion weight |", "|---|---|---|---|---|"]
    for e in table:
        weight = "" if not math.isfinite(e["motion_weight"]) else f"{e['motion_weight']:.2f}"
        lines.append(f"| {e['method']} | {_fmt(e['acc'], e['acc_std'])} | {_fmt(e['mca'], e['mca_std'])} | "
                     f"{_fmt(e['video_acc'], e['video_acc_std'])} | {weight} |")
    return "\n".join(lines)


def published_rows(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accuracy table as the Prefect table artifact shows it: mean ± std, one column per accuracy."""
    return [{"method": e["method"], "top-1 (frames)": _fmt(e["acc"], e["acc_std"]),
             "mean per-class": _fmt(e["mca"], e["mca_std"]),
             "top-1 (videos)": _fmt(e["video_acc"], e["video_acc_std"]), "seeds": e["seeds"]} for e in table]


def table_metrics(table: list[dict[str, Any]]) -> dict[str, float]:
    """The recognition run's MLflow metrics: each method's accuracies, spreads and mean motion weight."""
    metrics: dict[str, float] = {}
    for e in table:
        name = e["method"]
        metrics.update({f"acc_{name}": e["acc"], f"acc_{name}_std": e["acc_std"], f"mca_{name}": e["mca"],
                        f"video_acc_{name}": e["video_acc"], f"video_acc_{name}_std": e["video_acc_std"]})
        if math.isfinite(e["motion_weight"]):
            metrics[f"motion_weight_{name}"] = e["motion_weight"]
    return {k: v for k, v in metrics.items() if math.isfinite(v)}


@dataclass(frozen=True)
class RecognitionReport:
    """The accuracy table over seeds, its Markdown, every seed's rows, the report files and the confusion pictures
    by method."""

    table: list[dict[str, Any]]
    markdown: str
    per_seed: list[dict[str, Any]]
    files: dict[str, str | bytes] = field(repr=False)
    images: dict[str, np.ndarray] = field(repr=False)


@task(name="summarize-recognition", task_run_name="summarize-recognition", persist_result=False)
def summarize_recognition(seeds: list[SeedResult], data: RecognitionData) -> RecognitionReport:
    """Mean and std over seeds of every method's accuracies, the confusion matrices summed over seeds, and the
    report files (table.csv/md, per_seed.csv, confusion_<method>.png, skipped.csv when samples were skipped)."""
    per_seed = [row for seed in seeds for row in seed.rows]
    table = accuracy_table(per_seed)
    markdown = markdown_accuracy(table)
    summed: dict[str, np.ndarray] = {}
    for seed in seeds:
        for method, matrix in seed.confusions.items():
            summed[method] = summed.get(method, 0) + matrix
    images = {m: confusion_image(summed[m], data.labels, f"{m}, {len(seeds)} seed(s) summed")
              for m in METHODS if m in summed and summed[m].sum()}
    files: dict[str, str | bytes] = {"table.csv": csv_text(table), "table.md": markdown + "\n",
                                     "per_seed.csv": csv_text(per_seed)}
    for method, image in images.items():
        files[f"confusion_{method}.png"] = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    if data.skipped:
        files["skipped.csv"] = csv_text(data.skipped)
    return RecognitionReport(table, markdown, per_seed, files, images)
