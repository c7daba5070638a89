"""Flow-prediction metrics of Im2Flow (Gao, Xiong & Grauman 2018, Sec. 4.2) and their masks.

Per pixel, between predicted (u₁, v₁) and true (u₂, v₂) flow in px:
- EPE = ‖(u₁ − u₂, v₁ − v₂)‖₂ (lower is better);
- DS = (u₁u₂ + v₁v₂) / (‖(u₁, v₁)‖ ‖(u₂, v₂)‖) ∈ [−1, 1] (direction similarity, higher is better);
- OS = |DS| ∈ [0, 1] (orientation similarity).
Convention: where either vector is shorter than `min_norm_px` it has no direction, and DS = OS = 0
there (it agrees with nothing); such pixels still count in the averages, as in the paper's
all-pixel columns. Each metric is averaged over a mask: all pixels, Canny edges of the input
image, or the foreground; an empty mask gives NaN (not a crash), and NaNs are skipped when
averaging over images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

MIN_NORM_PX = 1e-3
METRICS = ("epe", "ds", "os")
REGIONS = ("all", "canny", "fg")
COLUMNS = tuple(f"{m}{'' if r == 'all' else '_' + r}" for m in METRICS for r in REGIONS)
"""epe, epe_canny, epe_fg, ds, ds_canny, ds_fg, os, os_canny, os_fg — the paper's table order."""

PAPER_HEADERS = {"epe": "EPE", "epe_canny": "EPE-Canny", "epe_fg": "EPE-FG", "ds": "DS", "ds_canny": "DS-Canny",
                 "ds_fg": "DS-FG", "os": "OS", "os_canny": "OS-Canny", "os_fg": "OS-FG"}


def per_pixel(pred: np.ndarray, true: np.ndarray, min_norm_px: float = MIN_NORM_PX) -> dict[str, np.ndarray]:
    """EPE, DS and OS maps `(..., H, W)` for flows `(..., H, W, 2)` px."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.shape[-1] != 2:
        raise ValueError(f"flows must both be (..., H, W, 2), got {pred.shape} and {true.shape}")
    epe = np.linalg.norm(pred - true, axis=-1)
    n1, n2 = np.linalg.norm(pred, axis=-1), np.linalg.norm(true, axis=-1)
    directed = (n1 >= min_norm_px) & (n2 >= min_norm_px)
    dot = np.sum(pred * true, axis=-1)
    ds = np.where(directed, dot / np.where(directed, n1 * n2, 1.0), 0.0)
    ds = np.clip(ds, -1.0, 1.0)
    return {"epe": epe, "ds": ds, "os": np.abs(ds)}


def canny_mask(rgb: np.ndarray, low: float = 100.0, high: float = 200.0) -> np.ndarray:
    """Canny edges of an `(H, W, 3) uint8` RGB image (OpenCV, on grey levels): `(H, W)` bool."""
    return cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), low, high) > 0


def foreground_mask(true_flow: np.ndarray, threshold_px: float = 0.5, kernel: int = 3) -> np.ndarray:
    """Pixels whose true flow exceeds `threshold_px`, opened then closed with a `kernel`² square."""
    moving = (np.linalg.norm(true_flow, axis=-1) > threshold_px).astype(np.uint8)
    if kernel > 1:
        element = np.ones((kernel, kernel), np.uint8)
        moving = cv2.morphologyEx(cv2.morphologyEx(moving, cv2.MORPH_OPEN, element), cv2.MORPH_CLOSE, element)
    return moving > 0


def image_scores(pred: np.ndarray, true: np.ndarray, masks: dict[str, np.ndarray],
                 min_norm_px: float = MIN_NORM_PX) -> dict[str, float]:
    """The nine table entries for one image: each metric's mean over "all", "canny" and "fg" masks."""
    maps = per_pixel(pred, true, min_norm_px)
    scores = {}
    for metric in METRICS:
        for region in REGIONS:
            mask = np.ones(true.shape[:-1], bool) if region == "all" else masks[region]
            key = metric if region == "all" else f"{metric}_{region}"
            scores[key] = float(maps[metric][mask].mean()) if mask.any() else math.nan
    return scores


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average each column over images, skipping NaN (images where that mask was empty)."""
    out = {}
    for column in COLUMNS:
        values = np.array([r[column] for r in rows], np.float64)
        values = values[np.isfinite(values)]
        out[column] = float(values.mean()) if values.size else math.nan
    return out


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's 'average'), vectorised."""
    values = np.asarray(values, np.float64)
    n = len(values)
    order = np.argsort(values, kind="mergesort")
    inverse = np.empty(n, np.intp)
    inverse[order] = np.arange(n)
    sorted_values = values[order]
    new_value = np.r_[True, sorted_values[1:] != sorted_values[:-1]] if n else np.zeros(0, bool)
    dense = np.cumsum(new_value)[inverse]  # 1-based index of each value's group of ties
    bounds = np.r_[np.nonzero(new_value)[0], n]  # where each group starts, then n
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length sequences; NaN if either is constant."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("spearman needs two 1-D sequences of equal length")
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])
