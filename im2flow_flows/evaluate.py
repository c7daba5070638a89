"""The evaluate flow: the paper's table for G and the baselines, with best and worst examples."""

from __future__ import annotations

import math
from typing import Any

import cv2
import mlflow
import numpy as np
from prefect import flow, get_run_logger

from im2flow_core.figures import flow_row, stack_rows, tile
from im2flow_core.flow_metrics import COLUMNS, PAPER_HEADERS, mean_scores
from im2flow_storage import open_flow_store
from im2flow_storage.paths import eval_url, split_name
from im2flow_storage.reports import csv_text
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import METHODS, evaluate_split
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.potential import (
    agreement_markdown,
    agreement_table,
    format_score,
)
from im2flow_tasks.previews import png_data_uri
from im2flow_tasks.run_labels import publish_markdown, publish_table
from im2flow_tasks.tracking import (
    check_tracking,
    default_tracking_uri,
    git_commit,
    log_artifact_url,
    now_ms,
    tracked_run,
)


def results_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method with the paper's nine columns (means over images)."""
    return [{"method": m, **mean_scores([r for r in rows if r["method"] == m])} for m in METHODS
            if any(r["method"] == m for r in rows)]


def markdown_table(table: list[dict[str, Any]], extra: str | None = None) -> str:
    """The table in the paper's layout as Markdown."""
    columns = list(COLUMNS) + ([extra] if extra else [])
    header = "| method | " + " | ".join(PAPER_HEADERS.get(c, c) for c in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + r["method"] + " | " + " | ".join(format_score(r.get(c, math.nan)) for c in columns) + " |"
              for r in table]
    return "\n".join(lines)


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
    publish_table("evaluation-table", [{"method": e["method"], **{PAPER_HEADERS.get(k, k): format_score(v)
                                                                  for k, v in e.items() if k != "method"}}
                                       for e in table],
                  work_dir, f"Flow prediction on the {config.split} split")
    publish_markdown("evaluation-report",
                     f"# Evaluation ({config.split})\n\n{markdown}\n\n![examples]({png_data_uri(examples)})",
                     work_dir, "Table and best/worst examples")
    logger.info("evaluation on %d frames:\n%s", len(rows) // len(METHODS), markdown)
    return {"table": table, "markdown": markdown, "out_dir": out_dir, "run_id": parent.info.run_id, "files": paths}
