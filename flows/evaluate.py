"""The evaluate and potential flows: the paper's table with baselines, and motion-potential rankings."""

from __future__ import annotations

import math
from typing import Any

import cv2
import mlflow
import numpy as np
from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.previews import png_data_uri
from im2flow_core.figures import flow_row, potential_gallery, stack_rows, tile
from im2flow_core.flow_metrics import COLUMNS, PAPER_HEADERS, mean_scores
from im2flow_storage import open_flow_store
from im2flow_storage.paths import eval_url, potential_url, split_name
from im2flow_storage.reports import csv_text, write_report_files
from tasks.config import EvalConfig
from tasks.evaluate import METHODS, evaluate_split, fit_baselines
from tasks.models import load_generator
from tasks.potential import (
    agreement_table,
    gallery_entries,
    image_files,
    score_images,
    split_frames,
    split_samples,
    still_images,
)
from tasks.progress import RunProgress
from tasks.run_labels import publish_markdown, publish_table
from tasks.tracking import check_tracking, default_tracking_uri, git_commit, log_artifact_url, now_ms, tracked_run
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


@task(name="write-report", task_run_name="write-{what}-report", persist_result=False)
def write_report(out_dir: str, files: dict[str, str | bytes], what: str) -> list[str]:
    """Write the report files of `what` (evaluation, potential, recognition) into `out_dir`; returns their URLs."""
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
    first = result["examples"][(picks[0][1]["video_id"], picks[0][1]["t"])]["rgb"]
    return stack_rows(lines, f"Best and worst {len(picks) // 2} test frames of Im2Flow by EPE (flows on one colour "
                      "scale per row)", columns=["frame", "true flow", "Im2Flow", "nearest neighbour"],
                      cell_width=tile(first).shape[1])


@flow(name="evaluate", flow_run_name="evaluate-{config.split}", log_prints=True, persist_result=False)
def evaluate_flow(work_dir: str, config: EvalConfig = EvalConfig(), show_progress: bool = False) -> dict[str, Any]:
    """Score G and the baselines on `config.split`; table to CSV/Markdown, Prefect and MLflow.

    `show_progress`: terminal bars (the Prefect UI always gets progress artifacts).
    """
    logger = get_run_logger()
    started_ms = now_ms()  # the MLflow run spans the work, though it is opened after it
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)
    store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
    k = min(max(config.gallery_k // 2, 1), 3)
    result = evaluate_split(store.url, config.model, work_dir, config, k, show_progress)
    rows = result["rows"]
    table = results_table(rows)
    truth = np.array([r["true_mean_magnitude"] for r in rows if r["method"] == "Im2Flow"])
    potential = agreement_table({m: np.array([r["potential_px"] for r in rows if r["method"] == m])
                                 for m in METHODS if any(r["method"] == m for r in rows)}, truth)
    labels = sorted({r["label"] for r in rows})
    per_class = [{"method": m, "label": lab, "frames": sum(1 for r in rows if r["method"] == m and r["label"] == lab),
                  **mean_scores([r for r in rows if r["method"] == m and r["label"] == lab])}
                 for m in METHODS for lab in labels]
    markdown = (markdown_table(table) + "\n\nMotion potential vs the true mean magnitude of each frame "
                "(rank agreement, 95 % bootstrap intervals):\n\n" + agreement_markdown(potential))
    examples = _examples_image(result, rows, k)
    ok, png = cv2.imencode(".png", cv2.cvtColor(examples, cv2.COLOR_RGB2BGR))
    out_dir = eval_url(work_dir, config.split, config.split_index)
    files = {"table.csv": csv_text(table), "table.md": markdown + "\n", "potential.csv": csv_text(potential),
             "per_class.csv": csv_text(per_class),
             "per_image.csv": csv_text(rows), "examples.png": png.tobytes()}
    paths = write_report(out_dir, files, "evaluation")
    with tracked_run(tracking_uri, config.experiment, f"evaluate-{split_name(config.split, config.split_index)}",
                     tags={"store_fingerprint": store.fingerprint, "split": config.split,
                           "split_index": str(config.split_index or ""),
                           "model": config.model or "registry alias", "git_commit": git_commit()},
                     started_ms=started_ms) as parent:
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
    publish_table("evaluation-table", [{"method": e["method"], **{PAPER_HEADERS.get(k, k): _fmt(v)
                                                                  for k, v in e.items() if k != "method"}}
                                       for e in table],
                  work_dir, f"Flow prediction on the {config.split} split")
    publish_markdown("evaluation-report",
                     f"# Evaluation ({config.split})\n\n{markdown}\n\n![examples]({png_data_uri(examples)})",
                     work_dir, "Table and best/worst examples")
    logger.info("evaluation on %d frames:\n%s", len(rows) // len(METHODS), markdown)
    return {"table": table, "markdown": markdown, "out_dir": out_dir, "run_id": parent.info.run_id, "files": paths}


POTENTIAL_NOTE = ("Motion potential: the motion a still image implies, in pixels per frame at the image's own "
                  "resolution (G's potential head's estimate of the image's true mean flow magnitude; the mean "
                  "predicted magnitude for models without a head). Higher = more motion expected. ρ and τ: rank "
                  "agreement with the true mean magnitude (1 = same order, 0 = unrelated), with 95 % bootstrap "
                  "intervals.")


def agreement_markdown(table: list[dict[str, Any]]) -> str:
    """Rank agreement rows as Markdown: ρ and τ with their intervals."""
    lines = ["| method | Spearman ρ [95 % CI] | Kendall τ [95 % CI] |", "|---|---|---|"]
    for r in table:
        cells = [f"{_fmt(r[k])} [{_fmt(r[k + '_low'])}, {_fmt(r[k + '_high'])}]" if math.isfinite(r[k]) else "n/a"
                 for k in ("spearman", "kendall")]
        lines.append(f"| {r['method']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _potential_run_name() -> str:
    """`potential-<split>` (`potential-test-split2`) for a split's frames, `potential-images` for still images."""
    params = flow_run.parameters
    if params.get("images"):
        return "potential-images"
    config = params.get("config") or EvalConfig()
    get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    return f"potential-{split_name(get('split', 'test'), get('split_index'))}"


@flow(name="potential", flow_run_name=_potential_run_name, log_prints=True, persist_result=False)
def potential_flow(work_dir: str, images: list[str] | None = None, config: EvalConfig = EvalConfig(),
                   show_progress: bool = False) -> dict[str, Any]:
    """Rank still images (files or folders) by motion potential, or with `images` None `frames_per_video`
    evenly spaced frames (`video_id@t`) of every video of `config.split`, scored against their true mean
    magnitude beside the nearest-neighbour baseline (the frames `evaluate` scores).

    Unreadable images are named and skipped. Writes ranking.csv, agreement.csv, gallery.png (top and
    bottom of the ranking, with their true motion when known) and skipped.csv; logs ρ and τ to MLflow.
    `show_progress`: terminal bars (the Prefect UI always gets progress artifacts).
    """
    started_ms = now_ms()  # the MLflow run spans the work, though it is opened after it
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)
    generator = load_generator(config.model, work_dir, tracking_uri)
    device = resolve_device(config.device)
    generator = generator.to(device)
    nn_scores: dict[str, float] = {}
    problems: dict[str, str] = {}
    if images is None:
        store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
        records = store.records(complete_only=True)  # read once: on an object store, a request per video
        samples = split_samples(store, config.split, config.frames_per_video, records)
        nearest = fit_baselines(store, config, show_progress, records).nearest
        items, total = split_frames(store, samples, nearest, nn_scores), len(samples)
    else:
        paths = image_files(images)
        items, total = still_images(paths, problems), len(paths)
    with RunProgress(total, "scoring motion potential", show_progress) as progress:
        result = score_images(generator, progress.counted(items), device, config.batch_size, config.gallery_k,
                              config.fg_threshold_px)
    rows = result["rows"]
    if not rows:
        raise ValueError("no readable images to rank" + (f" (unreadable: {', '.join(result['skipped'][:5])})"
                                                          if result["skipped"] else ""))
    ranked = sorted(rows, key=lambda r: -r["potential_px"])
    table = [{"rank": i + 1, **{k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else
                                    ("" if isinstance(v, float) else v)) for k, v in r.items()}}
             for i, r in enumerate(ranked)]
    agreement: list[dict[str, Any]] = []
    if images is None:
        truth = np.array([r["true_mean_magnitude_px"] for r in rows])
        agreement = agreement_table({"Im2Flow": np.array([r["potential_px"] for r in rows]),
                                     "Nearest neighbour": np.array([nn_scores[r["image"]] for r in rows]),
                                     "Zero flow": np.zeros(len(rows)), "Mean flow": np.ones(len(rows))}, truth)
    rank_of = {r["image"]: r["rank"] for r in table}
    gallery = potential_gallery(gallery_entries(result["extremes"], rank_of), rank_of)
    ok, png = cv2.imencode(".png", cv2.cvtColor(gallery, cv2.COLOR_RGB2BGR))
    out_dir = potential_url(work_dir, None if images else config.split_index)
    files: dict[str, str | bytes] = {"ranking.csv": csv_text(table), "gallery.png": png.tobytes()}
    if agreement:
        files["agreement.csv"] = csv_text(agreement)
    if result["skipped"]:
        files["skipped.csv"] = csv_text([{"image": name, "error": problems.get(name, "cannot read as an image")}
                                         for name in result["skipped"]])
    paths = write_report(out_dir, files, "potential")
    run_name = "potential" if images or config.split_index is None else f"potential-split{config.split_index}"
    with tracked_run(tracking_uri, config.experiment, run_name, tags={"git_commit": git_commit()},
                     started_ms=started_ms) as run:
        for path in paths:
            log_artifact_url(path)
        mlflow.log_metrics({f"potential_{stat}_{r['method'].lower().replace(' ', '_')}": r[stat] for r in agreement
                            for stat in ("spearman", "spearman_low", "spearman_high", "kendall", "kendall_low",
                                         "kendall_high") if math.isfinite(r[stat])})
    publish_markdown("motion-potential",
                     "# Motion potential\n\n" + POTENTIAL_NOTE + "\n\n"
                     + (agreement_markdown(agreement) + "\n\n" if agreement else "")
                     + f"![gallery]({png_data_uri(gallery)})",
                     work_dir, "Images ranked by how much motion they imply")
    return {"ranking": table, "spearman": {r["method"]: r["spearman"] for r in agreement}, "agreement": agreement,
            "skipped": result["skipped"], "skipped_errors": problems, "out_dir": out_dir, "run_id": run.info.run_id,
            "note": POTENTIAL_NOTE, "files": paths}
