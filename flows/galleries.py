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
