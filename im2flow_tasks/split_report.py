"""Results over official splits: each split's headline metrics, their mean and std, and the published table."""

from __future__ import annotations

import numpy as np

from im2flow_tasks.summaries import SplitsSummary

SPLIT_METRICS = ("epe", "epe_canny", "epe_fg", "ds", "ds_canny", "ds_fg", "os", "os_canny", "os_fg",
                 "acc_appearance", "acc_motion", "acc_fused")
"""The headline metrics reported per official split and as their mean ± std (the published convention)."""


def split_summary(by_split: dict[int, dict[str, float]]) -> SplitsSummary:
    """Per-split headline metrics, their mean and std over splits (`<metric>` and `<metric>_split_std`), and a
    Markdown table: one row per split, then mean ± std, as UCF-101 and HMDB-51 results are published."""
    splits = sorted(by_split)
    metrics = [m for m in SPLIT_METRICS if all(m in by_split[k] for k in splits)]
    mean = {m: float(np.mean([by_split[k][m] for k in splits])) for m in metrics}
    std = {m: float(np.std([by_split[k][m] for k in splits])) for m in metrics}
    lines = ["| split | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    lines += [f"| {k} | " + " | ".join(f"{by_split[k][m]:.3f}" for m in metrics) + " |" for k in splits]
    lines.append("| mean ± std | " + " | ".join(f"{mean[m]:.3f} ± {std[m]:.3f}" for m in metrics) + " |")
    return SplitsSummary(splits=splits, per_split={str(k): by_split[k] for k in splits}, metrics=metrics,
                         mean={**mean, **{f"{m}_split_std": v for m, v in std.items()}}, markdown="\n".join(lines))
