"""The recognize flow: two-stream static-image action recognition with late fusion, over seeds.

For each seed: the appearance stream (RGB), the motion stream (G's hallucinated flow) and, on video
frames, the oracle motion stream (true TV-L1 flow); the fusion weight is chosen on validation
scores; accuracies are measured on the test split by frame/image and by video (mean frame scores).
Results: `W/recognize/<fingerprint>/` (table.csv/md, per_seed.csv, confusion_*.png, stream files),
one MLflow parent run (means and spreads over seeds) with nested runs per stream and seed, and a
Prefect table artifact.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import mlflow
import numpy as np
from prefect import flow, get_run_logger

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
from im2flow_storage.paths import join, recognize_url, split_name
from im2flow_storage.reports import csv_text
from im2flow_tasks.config import RecognizeConfig
from im2flow_tasks.models import load_generator
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.previews import ARTIFACT_IMAGE_BUDGET, png_data_uri
from im2flow_tasks.recognize import STREAMS, train_stream
from im2flow_tasks.recognize_data import RecognitionData, frames_data, images_data
from im2flow_tasks.run_labels import publish_markdown, publish_table
from im2flow_tasks.tracking import (
    check_tracking,
    default_tracking_uri,
    flatten,
    git_commit,
    log_artifact_url,
    tracked_run,
)

METHODS = ("appearance", "motion", "fused", "oracle", "fused_oracle")
"""Rows of the accuracy table: each stream alone, appearance + motion, and appearance + oracle motion."""


def _scores(config: RecognizeConfig, data: RecognitionData, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-method test scores of one seed, and the fusion weights chosen on validation."""
    val_labels = np.array(data.label_indices("val"))
    scores = {s: r["test_scores"] for s, r in results.items()}
    weights = {}
    for fused, motion in (("fused", "motion"), ("fused_oracle", "oracle")):
        if motion not in results:
            continue
        weight = config.fusion_weight
        if weight is None:  # chosen on validation scores only
            weight = select_fusion_weight(results["appearance"]["val_scores"], results[motion]["val_scores"],
                                          val_labels)
        weights[fused] = weight
        scores[fused] = fuse(results["appearance"]["test_scores"], results[motion]["test_scores"], weight)
    return {"scores": scores, "weights": weights}


def _metrics(scores: np.ndarray, labels: np.ndarray, ids: list[str], num_classes: int) -> dict[str, float]:
    _, per_video = video_scores(scores, ids)
    return {"acc": top1_accuracy(scores, labels), "mca": mean_class_accuracy(scores, labels, num_classes),
            "video_acc": top1_accuracy(per_video, video_labels(labels, ids))}


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


@flow(name="recognize", flow_run_name="recognize-{config.split}", log_prints=True, persist_result=False)
def recognize_flow(work_dir: str, config: RecognizeConfig = RecognizeConfig(),
                   show_progress: bool = False) -> dict[str, Any]:
    """Train and evaluate the streams for every seed; returns the table, paths and the MLflow run id.

    `show_progress`: a terminal bar per stream and seed (the Prefect UI always gets progress artifacts).
    """
    logger = get_run_logger()
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)  # before any long work
    generator = load_generator(config.model, work_dir, tracking_uri)
    if config.images_csv is not None:
        data = images_data(str(config.images_csv), config.val_fraction, config.test_fraction, 0)
        source_tag = str(config.images_csv)
    else:
        store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
        data = frames_data(store, config.split, config.val_fraction, 0, config.frames_per_video,
                           config.eval_frames_per_video)
        source_tag = store.fingerprint
    for skipped in data.skipped:
        logger.warning("skipped %s: %s", skipped["item"], skipped["reason"])
    streams = [s for s in STREAMS if s != "oracle" or (config.oracle and data.has_true_flow)]
    generator_state = {k: v.cpu() for k, v in generator.state_dict().items()}
    fingerprint = config_fingerprint({"source": source_tag, "config": config.content_dict(),
                                      "generator": config_fingerprint({k: float(v.float().sum())
                                                                       for k, v in generator_state.items()})})
    run_dir = recognize_url(work_dir, fingerprint)
    generator_path = join(run_dir, "generator.pt")
    save_checkpoint(generator_path, {"kind": "im2flow-generator",
                                     "generator_config": generator.config.model_dump(mode="json"),
                                     "labels": data.labels, "state_dict": generator_state})
    logger.info("recognition on %s: %d labels, %d train / %d validation / %d test samples; streams %s; seeds %s",
                data.kind, len(data.labels), len(data.train), len(data.val), len(data.test), ", ".join(streams),
                list(config.seeds))
    test_labels, test_ids = np.array(data.label_indices("test")), data.ids("test")
    per_seed: list[dict[str, Any]] = []
    confusions = {m: np.zeros((len(data.labels), len(data.labels)), np.int64) for m in METHODS}
    tags = {"dataset": source_tag, "source": data.kind, "split": config.split, "recognize_fingerprint": fingerprint,
            "split_index": str(config.split_index or ""),
            "model": config.model or "registry alias", "git_commit": git_commit()}
    with tracked_run(tracking_uri, config.experiment, f"recognize-{split_name(config.split, config.split_index)}",
                     tags=tags) as parent:
        mlflow.log_params(flatten({**config.content_dict(), "train_samples": len(data.train),
                                   "val_samples": len(data.val), "test_samples": len(data.test)}))
        for seed in config.seeds:
            results = {s: train_stream(config, data, s, seed, run_dir, generator_path, tracking_uri,
                                       parent.info.run_id, show_progress) for s in streams}
            seed_scores = _scores(config, data, results)
            for method, scores in seed_scores["scores"].items():
                per_seed.append({"method": method, "seed": seed, "motion_weight": seed_scores["weights"].get(method),
                                 **_metrics(scores, test_labels, test_ids, len(data.labels))})
                confusions[method] += confusion_matrix(scores, test_labels, len(data.labels))
        table = accuracy_table(per_seed)
        markdown = markdown_accuracy(table)
        images = {m: confusion_image(confusions[m], data.labels, f"{m}, {len(config.seeds)} seed(s) summed")
                  for m in METHODS if confusions[m].sum()}
        files: dict[str, str | bytes] = {"table.csv": csv_text(table), "table.md": markdown + "\n",
                                         "per_seed.csv": csv_text(per_seed)}
        for method, image in images.items():
            files[f"confusion_{method}.png"] = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
        if data.skipped:
            files["skipped.csv"] = csv_text(data.skipped)
        paths = write_report(run_dir, files, "recognition")
        for path in paths:
            log_artifact_url(path, "report")
        metrics: dict[str, float] = {}
        for e in table:
            name = e["method"]
            metrics.update({f"acc_{name}": e["acc"], f"acc_{name}_std": e["acc_std"], f"mca_{name}": e["mca"],
                            f"video_acc_{name}": e["video_acc"], f"video_acc_{name}_std": e["video_acc_std"]})
            if math.isfinite(e["motion_weight"]):
                metrics[f"motion_weight_{name}"] = e["motion_weight"]
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
    publish_table("recognition-accuracy",
                  [{"method": e["method"], "top-1 (frames)": _fmt(e["acc"], e["acc_std"]),
                    "mean per-class": _fmt(e["mca"], e["mca_std"]),
                    "top-1 (videos)": _fmt(e["video_acc"], e["video_acc_std"]), "seeds": e["seeds"]} for e in table],
                  work_dir, f"Static-image action recognition on the {config.split} split")
    # The images share one artifact's budget; the full-size PNGs are in the report folder.
    per_image = ARTIFACT_IMAGE_BUDGET // max(1, len(images))
    confusion_md = "\n".join(f"![{m}]({png_data_uri(img, per_image)})" for m, img in images.items())
    if images:
        confusion_md += f"\n\nFull-size confusion matrices: `{run_dir}` (`confusion_<method>.png`)."
    publish_markdown("recognition-report",
                     f"# Recognition ({config.split})\n\n{markdown}\n\n{confusion_md}",
                     work_dir, "Accuracy table and confusion matrices")
    logger.info("recognition on the %s split (mean ± std over %d seeds):\n%s", config.split, len(config.seeds),
                markdown)
    return {"table": table, "markdown": markdown, "per_seed": per_seed, "out_dir": run_dir,
            "run_id": parent.info.run_id, "labels": data.labels, "skipped": data.skipped, "files": paths}
