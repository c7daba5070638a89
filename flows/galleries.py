"""Image grids for reports: frames beside colour-wheel flows, with captions."""

from __future__ import annotations

import cv2
import numpy as np

from im2flow_core.flow_viz import flow_to_color


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((14, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text[: max(1, image.shape[1] // 6)], (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def flow_row(rgb: np.ndarray, flows: list[np.ndarray], caption: str, scale: float | None = None,
             tile: int = 96) -> np.ndarray:
    """One row: the frame, then each flow `(H, W, 2)` in colour (a shared scale), each `tile` px high."""
    peak = scale or max(max(float(np.linalg.norm(f, axis=-1).max()) for f in flows), 1e-3)
    width = max(1, round(rgb.shape[1] * tile / rgb.shape[0]))
    cells = [cv2.resize(rgb, (width, tile), interpolation=cv2.INTER_AREA)]
    cells += [cv2.resize(flow_to_color(f, peak), (width, tile), interpolation=cv2.INTER_NEAREST) for f in flows]
    return _caption(np.concatenate(cells, axis=1), caption)


def stack_rows(rows: list[np.ndarray], title: str) -> np.ndarray:
    """Rows of equal width under a title: `(H, W, 3) uint8` RGB."""
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return _caption(np.concatenate(padded, axis=0), title)


def potential_gallery(extremes: list[dict], rank_of: dict[str, int]) -> np.ndarray:
    """Rows of the top and bottom of a motion-potential ranking (`extremes` in rank order): frame, predicted flow,
    captions with rank, potential and (when known) the true mean motion, all flows on one colour scale.
    """
    scale = max(max(float(np.linalg.norm(e["flow"], axis=-1).max()) for e in extremes), 1e-3)
    rows = []
    for e in extremes:
        truth = e.get("true_mean_magnitude_px", float("nan"))
        true_text = f" | true {truth:.3f} px" if truth == truth else ""  # NaN: no truth for a still
        name = e["image"].rsplit("/", 1)[-1]
        rows.append(flow_row(e["rgb"], [e["flow"]], f"#{rank_of[e['image']]} {e['potential_px']:.3f} px{true_text} "
                             f"{name}", scale))
    return stack_rows(rows, "top and bottom by motion potential (frame | predicted flow)")


def confusion_image(matrix: np.ndarray, labels: list[str], title: str, cell: int = 28) -> np.ndarray:
    """A confusion matrix `(C, C)` (rows true, columns predicted) as a heat map with counts, RGB uint8."""
    n = len(labels)
    margin = 8 * max(len(name) for name in labels) + 8
    image = np.full((margin + n * cell, margin + n * cell, 3), 255, np.uint8)
    rows = matrix.sum(1, keepdims=True).clip(min=1)
    share = matrix / rows  # per true class, so rare classes show as clearly as common ones
    for i in range(n):
        cv2.putText(image, labels[i], (2, margin + i * cell + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            y, x = margin + i * cell, margin + j * cell
            shade = int(255 - 200 * share[i, j])
            cv2.rectangle(image, (x, y), (x + cell - 2, y + cell - 2), (shade, shade, 255), -1)
            cv2.putText(image, str(int(matrix[i, j])), (x + 3, y + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                        (0, 0, 0), 1, cv2.LINE_AA)
    # Column names, rotated so long names fit above the columns.
    strip = np.full((n * cell, margin, 3), 255, np.uint8)
    for j in range(n):
        cv2.putText(strip, labels[j], (2, j * cell + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1,
                    cv2.LINE_AA)
    image[:margin, margin:] = np.rot90(strip, 1)
    return _caption(image, f"{title} (rows: true, columns: predicted)")
