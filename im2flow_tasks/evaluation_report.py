"""The evaluate stage's report: the paper's table, per-class scores, motion-potential agreement and the
best/worst examples, from the per-image rows of `im2flow_tasks.evaluate.evaluate_split`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from prefect import task

from im2flow_core.figures import flow_row, stack_rows, tile
from im2flow_core.flow_metrics import COLUMNS, PAPER_HEADERS, mean_scores
from im2flow_storage.reports import csv_text
from im2flow_tasks.evaluate import METHODS
from im2flow_tasks.potential import agreement_markdown, agreement_table, format_score


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


def examples_image(examples: dict[tuple[str, int], Any], rows: list[dict[str, Any]], k: int) -> np.ndarray:
    """The best and worst `k` frames of Im2Flow by EPE, one row each (frame, true flow, Im2Flow, nearest
    neighbour), `(H, W, 3) uint8`; `examples` maps (video_id, t) to the frame and flows of those frames."""
    im2flow = sorted((r for r in rows if r["method"] == "Im2Flow" and (r["video_id"], r["t"]) in examples),
                     key=lambda r: r["epe"])
    picks = [("best", r) for r in im2flow[:k]] + [("worst", r) for r in im2flow[-k:]]
    lines = []
    for tag, r in picks:
        ex = examples[(r["video_id"], r["t"])]
        lines.append(flow_row(ex["rgb"], [ex["true"], ex["Im2Flow"], ex["Nearest neighbour"]],
                              f"{tag} {r['video_id']} t={r['t']} EPE {r['epe']:.2f}"))
    first = examples[(picks[0][1]["video_id"], picks[0][1]["t"])]["rgb"]
    return stack_rows(lines, f"Best and worst {len(picks) // 2} test frames of Im2Flow by EPE (flows on one colour "
                      "scale per row)", columns=["frame", "true flow", "Im2Flow", "nearest neighbour"],
                      cell_width=tile(first).shape[1])


@dataclass(frozen=True)
class EvaluationReport:
    """The evaluation's tables, its Markdown and its examples picture `(H, W, 3) uint8`."""

    table: list[dict[str, Any]]
    markdown: str
    frames: int
    files: dict[str, str | bytes] = field(repr=False)
    examples: np.ndarray = field(repr=False)


@task(name="summarize-evaluation", task_run_name="summarize-evaluation", persist_result=False)
def summarize_evaluation(rows: list[dict[str, Any]], examples: dict[tuple[str, int], Any],
                         k: int) -> EvaluationReport:
    """The paper's table, per-class means, rank agreement of each method's motion potential with the true mean
    magnitude (bootstrap intervals), the best/worst `k` examples, and the report files (table.csv/md,
    potential.csv, per_class.csv, per_image.csv, examples.png) from the per-image `rows`."""
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
    picture = examples_image(examples, rows, k)
    png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))[1].tobytes()
    files: dict[str, str | bytes] = {"table.csv": csv_text(table), "table.md": markdown + "\n",
                                     "potential.csv": csv_text(potential), "per_class.csv": csv_text(per_class),
                                     "per_image.csv": csv_text(rows), "examples.png": png}
    return EvaluationReport(table, markdown, len(rows) // len(METHODS), files, picture)
