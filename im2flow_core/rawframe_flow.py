"""Flow as the two-stream ecosystem stores it: one 8-bit grey image per component, bounded at ±b px.

denseflow, TSN's dense_flow and mmaction2 store a flow field (u, v) as two grey images
(flow_x, flow_y) with value q = round(255 · (f + b) / (2b)) clamped to [0, 255], b = 20 px by
default. Reading back, f = q · 2b / 255 − b: a grid of 2b / 255 px (0.157 px at b = 20), so a
component with |f| ≤ b comes back within b / 255 px (0.078 px) before any JPEG loss; beyond ±b it
is clipped to the bound (and counted). Zero flow is not on that grid: it reads back as ±b / 255.

Also here: the photometric check that a flow field belongs to the frame it is numbered with
(`alignment_errors`), which catches folders whose flow is shifted by a frame against the RGB.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

DEFAULT_BOUND_PX = 20.0
"""mmaction2's and denseflow's default bound (`-b=20`)."""


def flow_to_gray(flow: np.ndarray, bound_px: float = DEFAULT_BOUND_PX) -> tuple[np.ndarray, np.ndarray, int]:
    """Quantize flow `(H, W, 2) float32` px (u, v) into `(x, y)` grey images `(H, W) uint8`.

    Returns `(x, y, n_clipped)`: n_clipped counts the components (u and v separately) with |f| > b,
    which the images hold at the bound.
    """
    if bound_px <= 0:
        raise ValueError(f"bound must be > 0 px, got {bound_px}")
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"expected flow (H, W, 2), got shape {flow.shape}")
    n_clipped = int(np.count_nonzero(np.abs(flow) > bound_px))
    levels = np.clip(np.rint((flow + bound_px) * (255.0 / (2.0 * bound_px))), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(levels[..., 0]), np.ascontiguousarray(levels[..., 1]), n_clipped


def gray_to_flow(x: np.ndarray, y: np.ndarray, bound_px: float = DEFAULT_BOUND_PX) -> np.ndarray:
    """Inverse of `flow_to_gray`: grey images `(H, W) uint8` → flow `(H, W, 2) float32` px (u, v)."""
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"flow_x and flow_y must be grey images of one size, got {x.shape} and {y.shape}")
    levels = np.stack([x, y], axis=-1).astype(np.float32)
    return (levels * np.float32(2.0 * bound_px / 255.0) - np.float32(bound_px)).astype(np.float32)


def count_at_bound(x: np.ndarray, y: np.ndarray) -> int:
    """Components stored at the bound (value 0 or 255): clipped, or exactly ±b, in the source."""
    return int(np.count_nonzero((x == 0) | (x == 255)) + np.count_nonzero((y == 0) | (y == 255)))


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)


def warp_error(frame_a: np.ndarray, frame_b: np.ndarray, flow: np.ndarray) -> float:
    """Mean |A(x) − B(x + f(x))| (grey levels) over pixels whose target lies inside B.

    `frame_a`, `frame_b`: `(H, W, 3) uint8` RGB; `flow`: `(H, W, 2) float32` px from A to B.
    Small when `flow` is the motion from A to B.
    """
    height, width = flow.shape[:2]
    cols, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = cols + flow[..., 0], rows + flow[..., 1]
    warped = cv2.remap(_gray(frame_b), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1) & (warped >= 0)
    if not inside.any():
        return float("inf")
    return float(np.abs(_gray(frame_a) - warped)[inside].mean())


def alignment_errors(frames: Mapping[int, np.ndarray], flows: Mapping[int, np.ndarray], step: int = 1,
                     offsets: tuple[int, ...] = (-1, 0, 1)) -> dict[int, float]:
    """Mean warp error of flow i applied from frame i + d to frame i + d + step, for each offset d.

    `frames`: frame index → `(H, W, 3) uint8` RGB (only the frames needed); `flows`: flow index i →
    `(H, W, 2) float32` px, numbered so that it should go from frame i to i + step. The true
    numbering has the smallest error at d = 0; flow shifted by one frame has it at d = ±1. Offsets
    whose frames are not given are left out.
    """
    out: dict[int, float] = {}
    for d in offsets:
        errors = [warp_error(frames[i + d], frames[i + d + step], flow) for i, flow in flows.items()
                  if i + d in frames and i + d + step in frames]
        if errors:
            out[d] = float(np.mean(errors))
    return out


def misaligned_offset(errors: dict[int, float], margin: float = 0.8) -> int:
    """The offset d ≠ 0 whose error is below `margin` × the error at d = 0, or 0 if none is.

    A margin keeps videos whose motion barely changes (where every offset fits about as well) from
    being flagged: only a clearly better shifted fit counts as mis-numbering.
    """
    aligned = errors.get(0, float("inf"))
    best = min(errors, key=lambda d: errors[d])
    return best if best != 0 and errors[best] < margin * aligned else 0
