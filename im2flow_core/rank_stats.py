"""Rank agreement between two scorings of the same items, with a bootstrap confidence interval.

Used to judge motion potential: how well an estimate orders images by the motion they really show.
Spearman's ρ (Pearson correlation of average ranks) and Kendall's τ-b (concordant minus discordant
pairs, corrected for ties; scipy.stats.kendalltau's default) are both in [−1, 1]; NaN when either
scoring is constant. The interval resamples items with replacement (percentile bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from im2flow_core.flow_metrics import spearman


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b of two equal-length 1-D sequences (ties corrected); NaN if either is constant.

    O(n²) memory-light pair counting in row blocks: fine for the thousands of images a ranking holds.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau needs two 1-D sequences of equal length")
    n = len(a)
    concordant_minus_discordant = 0.0
    untied_a = untied_b = 0.0
    block = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n, block):
        da = np.sign(a[start : start + block, None] - a[None, :])
        db = np.sign(b[start : start + block, None] - b[None, :])
        concordant_minus_discordant += float((da * db).sum())
        untied_a += float(np.count_nonzero(da))
        untied_b += float(np.count_nonzero(db))
    if untied_a == 0 or untied_b == 0:
        return math.nan
    return concordant_minus_discordant / math.sqrt(untied_a * untied_b)


def bootstrap_interval(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float],
                       n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(a, b)` over items resampled with replacement.

    Resamples where the statistic is undefined (NaN, e.g. all items alike) are left out; (NaN, NaN)
    if fewer than half remain.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("bootstrap_interval needs two 1-D sequences of equal length ≥ 2")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(a), len(a))
        value = statistic(a[idx], b[idx])
        if math.isfinite(value):
            values.append(value)
    if len(values) < n_resamples / 2:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


_MAX_PAIRWISE = 2000
"""Kendall's interval is computed on at most this many items (a random subset): its cost is n² per resample
and its five n×n float32 matrices take 80 MB at 2,000 items (320 MB at 4,000), however large the split."""


def _kendall_interval(a: np.ndarray, b: np.ndarray, n_resamples: int, level: float, seed: int) -> tuple[float, float]:
    """Bootstrap interval of τ-b in O(n²) per resample without re-sorting: with w the resample's
    item counts, τ-b = wᵀ(SaSb)w / √(wᵀ|Sa|w · wᵀ|Sb|w), Sa, Sb the pairwise sign matrices.
    """
    rng = np.random.default_rng(seed)
    if len(a) > _MAX_PAIRWISE:
        keep = rng.choice(len(a), _MAX_PAIRWISE, replace=False)
        a, b = a[keep], b[keep]
    sa = np.sign(a[:, None] - a[None, :]).astype(np.float32)
    sb = np.sign(b[:, None] - b[None, :]).astype(np.float32)
    both, abs_a, abs_b = sa * sb, np.abs(sa), np.abs(sb)
    values = []
    for _ in range(n_resamples):
        w = np.bincount(rng.integers(0, len(a), len(a)), minlength=len(a)).astype(np.float32)
        den = float(w @ abs_a @ w) * float(w @ abs_b @ w)
        if den > 0:
            values.append(float(w @ both @ w) / math.sqrt(den))
    if len(values) < n_resamples / 2:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def rank_agreement(estimate: np.ndarray, truth: np.ndarray, n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Spearman ρ and Kendall τ-b of `estimate` against `truth`, each with its 95 % bootstrap interval.

    Keys: spearman, spearman_low, spearman_high, kendall, kendall_low, kendall_high.
    """
    estimate, truth = np.asarray(estimate, np.float64), np.asarray(truth, np.float64)
    low, high = bootstrap_interval(estimate, truth, spearman, n_resamples, 0.95, seed)
    k_low, k_high = _kendall_interval(estimate, truth, n_resamples, 0.95, seed)
    return {"spearman": spearman(estimate, truth), "spearman_low": low, "spearman_high": high,
            "kendall": kendall_tau(estimate, truth), "kendall_low": k_low, "kendall_high": k_high}
