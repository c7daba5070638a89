"""The evaluate and potential flows: the paper's table with baselines, and motion-potential rankings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import mlflow
import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.galleries import flow_row, stack_rows
from flows.previews import png_data_uri
from im2flow_core.flow_encoding import decode_flow
from im2flow_core.flow_metrics import COLUMNS, PAPER_HEADERS, mean_scores, spearman
from im2flow_core.inference import motion_potential, predict_flow_images
from im2flow_storage import open_flow_store
from im2flow_storage.images import read_rgb_image
from im2flow_storage.paths import eval_url, potential_url
from im2flow_storage.reports import csv_text, write_report_files
from im2flow_storage.torch_datasets import sample_index
from tasks.config import EvalConfig
from tasks.evaluate import METHODS, evaluate_split, fit_baselines
from tasks.models import load_generator
from tasks.tracking import check_tracking, default_tracking_uri, git_commit, log_artifact_url, tracked_run
from tasks.train_data import resolve_device


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def results_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method with the paper's nine columns (means over images)."""
    return [{"method": m, **mean_scores([r for r in rows if r["method"] == m])} for m in METHODS
            if any(r["method"] == m for r in rows)]


def markdown_table(table: list[dict[str, Any]], extra: str | None = None) -> str:
    """The table in the paper's layout as Markdown."""
    columns = list(COLUMNS) + ([extra] if extra else [])
    header = "| method | " + " | ".join(PAPER_HEADERS.get(c, c) for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + r["method"] + " | " + " | ".join(_fmt(r.get(c, math.nan)) for c in columns) + " |" for r in table]
    return "\n".join(lines)


@task(name="write-report")
def write_report(out_dir: str, files: dict[str, str | bytes]) -> list[str]:
    """Write the report files into `out_dir`; returns their URLs."""
    return write_report_files(out_dir, files)


def _examples_image(result: dict[str, Any], rows: list[dict[str, Any]], k: int) -> np.ndarray:
    im2flow = sorted((r for r in rows if r["method"] == "Im2Flow" and (r["video_id"], r["t"]) in result["examples"]),
                     key=lambda r: r["epe"])
    picks = [("best", r) for r in im2flow[:k]] + [("worst", r) for r in im2flow[-k:]]
    lines = []
    for tag, r in picks:
        ex = result["examples"][(r["video_id"], r["t"])]
        lines.append(flow_row(ex["rgb"], [ex["true"], ex["Im2Flow"], ex["Nearest neighbour"]],
                              f"{tag} {r['video_id']} t={r['t']} EPE {r['epe']:.2f}"))
    return stack_rows(lines, "frame | true flow | Im2Flow | nearest neighbour")


@flow(name="evaluate", flow_run_name="evaluate-{config.split}", log_prints=True)
def evaluate_flow(work_dir: str, config: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Score G and the baselines on `config.split`; table to CSV/Markdown, Prefect and MLflow."""
    logger = get_run_logger()
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)
    store = open_flow_store(work_dir, config.store_fingerprint)
    k = min(max(config.gallery_k // 2, 1), 3)
    result = evaluate_split(store.url, config.model, work_dir, config, k)
    rows = result["rows"]
    table = results_table(rows)
    for entry in table:
        method_rows = [r for r in rows if r["method"] == entry["method"]]
        entry["potential_spearman"] = spearman(np.array([r["pred_mean_magnitude"] for r in method_rows]),
                                               np.array([r["true_mean_magnitude"] for r in method_rows]))
    labels = sorted({r["label"] for r in rows})
    per_class = [{"method": m, "label": lab, "frames": sum(1 for r in rows if r["method"] == m and r["label"] == lab),
                  **mean_scores([r for r in rows if r["method"] == m and r["label"] == lab])}
                 for m in METHODS for lab in labels]
    markdown = markdown_table(table, "potential_spearman")
    examples = _examples_image(result, rows, k)
    ok, png = cv2.imencode(".png", cv2.cvtColor(examples, cv2.COLOR_RGB2BGR))
    out_dir = eval_url(work_dir, config.split)
    files = {"table.csv": csv_text(table), "table.md": markdown + "\n", "per_class.csv": csv_text(per_class),
             "per_image.csv": csv_text(rows), "examples.png": png.tobytes()}
    paths = write_report(out_dir, files)
    with tracked_run(tracking_uri, config.experiment, f"evaluate-{config.split}",
                     tags={"store_fingerprint": store.fingerprint, "split": config.split,
                           "model": config.model or "registry alias", "git_commit": git_commit()}) as parent:
        mlflow.log_params({"frames": len(rows) // len(METHODS), "train_frames_for_baselines": result["train_frames"],
                           **{k: str(v) for k, v in config.model_dump(mode="json").items()}})
        for path in paths:
            log_artifact_url(path)
        for entry in table:
            with tracked_run(tracking_uri, config.experiment, entry["method"], parent_run_id=parent.info.run_id,
                             tags={"method": entry["method"]}):
                mlflow.log_metrics({k: v for k, v in entry.items() if k != "method" and math.isfinite(v)})
        im2flow = next(e for e in table if e["method"] == "Im2Flow")
        mlflow.log_metrics({k: v for k, v in im2flow.items() if k != "method" and math.isfinite(v)})
    create_table_artifact([{"method": e["method"], **{PAPER_HEADERS.get(k, k): _fmt(v) for k, v in e.items()
                                                       if k != "method"}} for e in table],
                          key="evaluation-table", description=f"Flow prediction on the {config.split} split")
    create_markdown_artifact(f"# Evaluation ({config.split})\n\n{markdown}\n\n![examples]({png_data_uri(examples)})",
                             key="evaluation-report", description="Table and best/worst examples")
    logger.info("evaluation on %d frames:\n%s", len(rows) // len(METHODS), markdown)
    return {"table": table, "markdown": markdown, "out_dir": out_dir, "run_id": parent.info.run_id}


@flow(name="potential", log_prints=True)
def potential_flow(work_dir: str, images: list[str] | None = None, config: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Rank still images by motion potential (mean predicted magnitude, px).

    With `images` None, the middle frame of every video of `config.split` is ranked, and the rank
    correlation with the true mean magnitude is reported for G and the nearest-neighbour baseline.
    """
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)
    generator = load_generator(config.model, work_dir, tracking_uri)
    device = resolve_device(config.device)
    generator = generator.to(device)
    entries: list[dict[str, Any]] = []
    truth: dict[int, float] = {}
    store = None
    if images is None:
        store = open_flow_store(work_dir, config.store_fingerprint)
        videos = [r.video_id for r in store.records(complete_only=True) if r.split == config.split]
        for s in sample_index(store, videos, {v: 0 for v in videos}, 1):
            rgb, true = store.read_pair(s.video_id, store.record(s.video_id).n_flows // 2)  # type: ignore[union-attr]
            truth[len(entries)] = float(np.linalg.norm(true, axis=-1).mean())
            entries.append({"image": f"{s.video_id}", "rgb": rgb})
    else:
        for path in images:
            rgb = read_rgb_image(path)
            if rgb is None:
                raise ValueError(f"cannot read {path} as an image")
            entries.append({"image": path, "rgb": rgb})
    if not entries:
        raise ValueError("no images to rank")
    for entry in entries:
        image = predict_flow_images(generator, [entry["rgb"]], generator.config.input_size, device)[0]
        entry["flow"] = decode_flow(image)
        entry["potential_px"] = motion_potential(image)
        entry["potential_fg_px"] = motion_potential(image, image[..., 2] > config.fg_threshold_px)
    ranked = sorted(entries, key=lambda e: -e["potential_px"])
    table = [{"rank": i + 1, "image": e["image"], "potential_px": round(e["potential_px"], 4),
              "potential_fg_px": round(e["potential_fg_px"], 4) if math.isfinite(e["potential_fg_px"]) else "",
              **({"true_mean_magnitude_px": round(truth[entries.index(e)], 4)} if truth else {})}
             for i, e in enumerate(ranked)]
    correlations: dict[str, float] = {}
    if truth and store is not None:
        order = range(len(entries))
        true_values = np.array([truth[i] for i in order])
        correlations["Im2Flow"] = spearman(np.array([entries[i]["potential_px"] for i in order]), true_values)
        nearest = fit_baselines(store, config).nearest
        nn_values = np.array([float(np.linalg.norm(nearest.predict(entries[i]["rgb"]), axis=-1).mean()) for i in order])
        correlations["Nearest neighbour"] = spearman(nn_values, true_values)
        correlations["Mean flow"] = math.nan  # one prediction for every image: no ranking
        correlations["Zero flow"] = math.nan
    k = min(config.gallery_k, len(ranked))
    scale = max(float(np.linalg.norm(e["flow"], axis=-1).max()) for e in ranked[:k] + ranked[-k:])
    gallery = stack_rows([flow_row(e["rgb"], [e["flow"]], f"#{table[i]['rank']} {e['potential_px']:.3f} px "
                                   f"{Path(e['image']).name}", scale)
                          for i, e in list(enumerate(ranked))[:k] + list(enumerate(ranked))[-k:]],
                         f"top {k} and bottom {k} by motion potential")
    ok, png = cv2.imencode(".png", cv2.cvtColor(gallery, cv2.COLOR_RGB2BGR))
    out_dir = potential_url(work_dir)
    corr_rows = [{"method": m, "spearman": v} for m, v in correlations.items()]
    files: dict[str, str | bytes] = {"ranking.csv": csv_text(table), "gallery.png": png.tobytes()}
    if corr_rows:
        files["spearman.csv"] = csv_text(corr_rows)
    paths = write_report(out_dir, files)
    with tracked_run(tracking_uri, config.experiment, "potential", tags={"git_commit": git_commit()}) as run:
        for path in paths:
            log_artifact_url(path)
        mlflow.log_metrics({f"potential_spearman_{m.lower().replace(' ', '_')}": v
                            for m, v in correlations.items() if math.isfinite(v)})
    corr_md = "".join(f"| {m} | {_fmt(v)} |\n" for m, v in correlations.items())
    create_markdown_artifact(
        "# Motion potential\n\n" + (f"Spearman with the true mean magnitude:\n\n| method | ρ |\n|---|---|\n{corr_md}\n"
                                    if corr_md else "") + f"![gallery]({png_data_uri(gallery)})",
        key="motion-potential", description="Images ranked by how much motion they imply")
    return {"ranking": table, "spearman": correlations, "out_dir": out_dir, "run_id": run.info.run_id}
