"""Motion potential of many images: G in batches, one score per image, streaming (bounded memory).

Only scores are kept for every image; frames and flows are kept for the `k` highest and `k`
lowest (the gallery), so a folder of any size ranks in constant memory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.inference import motion_potential, predict_flow_images
from im2flow_core.motion_potential import PotentialCalibration, potential_features
from im2flow_core.rank_stats import rank_agreement
from im2flow_core.unet import UNetGenerator
from im2flow_storage.images import IMAGE_EXTENSIONS, read_rgb_image

Estimator = Callable[[np.ndarray], float]


def potential_estimator(calibration: PotentialCalibration | None) -> Estimator:
    """Motion potential (px) of a flow image: the calibrated estimate when G carries a calibration, else mean M."""
    if calibration is None:
        return motion_potential
    return lambda image: calibration.predict(potential_features(image))


def image_files(paths: Iterable[str]) -> list[str]:
    """Files given, and the image files under given folders (recursively, sorted)."""
    out: list[str] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            out += [str(p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        else:
            out.append(str(path))
    return out


class _Extremes:
    """The k highest- and k lowest-scoring items seen, with their payloads."""

    def __init__(self, k: int) -> None:
        self.k, self._top, self._bottom, self._n = k, [], [], 0

    def add(self, score: float, payload: Any) -> None:
        self._n += 1
        for heap, key in ((self._top, score), (self._bottom, -score)):
            item = (key, self._n, payload)
            if len(heap) < self.k:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)

    def ordered(self) -> list[Any]:
        """Top k (highest first), then bottom k (highest first), without repeats."""
        top = [p for _, _, p in sorted(self._top, key=lambda x: (-x[0], x[1]))]
        seen = {id(p) for p in top}
        bottom = [p for _, _, p in sorted(self._bottom, key=lambda x: (x[0], x[1])) if id(p) not in seen]
        return top + bottom


def score_images(generator: UNetGenerator, items: Iterator[tuple[str, np.ndarray | None, float | None]],
                 estimator: Estimator, device: Any, batch_size: int = 32, gallery_k: int = 6,
                 fg_threshold_px: float = 0.5) -> dict[str, Any]:
    """Score `(name, rgb or None if unreadable, true mean magnitude or None)` items in batches of G.

    Returns rows (name, potential_px, mean_m_px, potential_fg_px, true_mean_magnitude_px), the
    skipped (unreadable) names, and the gallery's extremes (name, rgb, flow, scores).
    """
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    extremes = _Extremes(gallery_k)

    def flush(batch: list[tuple[str, np.ndarray, float | None]]) -> None:
        images = predict_flow_images(generator, [rgb for _, rgb, _ in batch], generator.config.input_size, device)
        for (name, rgb, truth), image in zip(batch, images):
            fg = motion_potential(image, image[..., 2] > fg_threshold_px)
            row = {"image": name, "potential_px": estimator(image), "mean_m_px": motion_potential(image),
                   "potential_fg_px": fg if math.isfinite(fg) else math.nan,
                   "true_mean_magnitude_px": math.nan if truth is None else truth}
            rows.append(row)
            extremes.add(row["potential_px"], {**row, "rgb": rgb, "flow": decode_flow(image)})
        batch.clear()

    batch: list[tuple[str, np.ndarray, float | None]] = []
    for name, rgb, truth in items:
        if rgb is None:
            skipped.append(name)
            continue
        batch.append((name, rgb, truth))
        if len(batch) >= batch_size:
            flush(batch)
    if batch:
        flush(batch)
    return {"rows": rows, "skipped": skipped, "extremes": extremes.ordered()}


def gallery_entries(extremes: list[dict[str, Any]], rank_of: dict[str, int]) -> list[dict[str, Any]]:
    """The gallery's images in rank order (rank 1 = the most motion first)."""
    return sorted(extremes, key=lambda e: rank_of[e["image"]])


def still_images(paths: list[str]) -> Iterator[tuple[str, np.ndarray | None, None]]:
    """(path, RGB or None if unreadable, no truth) for each image file, read one at a time."""
    for path in paths:
        yield path, read_rgb_image(path), None


def agreement_table(scores: dict[str, np.ndarray], truth: np.ndarray, n_resamples: int = 2000) -> list[dict[str, Any]]:
    """Spearman ρ and Kendall τ (95 % bootstrap intervals) of each method's scores against the truth."""
    out = []
    for method, values in scores.items():
        if np.ptp(values) == 0:  # one value for every image (zero or mean flow): it cannot rank
            out.append({"method": method, **{k: math.nan for k in ("spearman", "spearman_low", "spearman_high",
                                                                   "kendall", "kendall_low", "kendall_high")}})
        else:
            out.append({"method": method, **rank_agreement(values, truth, n_resamples)})
    return out
