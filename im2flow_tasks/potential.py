"""Motion potential of many images: G in batches, one score per image, streaming (bounded memory).

Only scores are kept for every image; frames and flows are kept for the `k` highest and `k`
lowest (the gallery), so a folder of any size ranks in constant memory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.inference import motion_potential, predict_flow_and_features
from im2flow_core.potential_head import PotentialHead, fit_potential_head
from im2flow_core.rank_stats import rank_agreement
from im2flow_core.splits import group_of
from im2flow_core.unet import UNetGenerator
from im2flow_storage.flow_store import FlowStore
from im2flow_storage.images import IMAGE_EXTENSIONS, read_rgb_image_checked
from im2flow_storage.torch_datasets import sample_index


def predict_with_potential(generator: UNetGenerator, images: list[np.ndarray], device: Any
                           ) -> tuple[list[np.ndarray], list[float]]:
    """G's flow images `(H, W, 3)` for RGB images and each image's motion potential (px).

    The potential is G's potential head's estimate when the model carries one (`generator.potential_head`,
    set by `im2flow_tasks.models`), else the mean predicted magnitude.
    """
    head: PotentialHead | None = getattr(generator, "potential_head", None)
    flows, features = predict_flow_and_features(generator, images, generator.config.input_size, device,
                                                features=head is not None)
    if head is None:
        return flows, [motion_potential(image) for image in flows]
    # The head's estimate is averaged over the image and its mirror image (it was fitted on both):
    # motion does not depend on left and right, and the average halves the head's variance.
    _, mirrored = predict_flow_and_features(generator, [np.ascontiguousarray(rgb[:, ::-1]) for rgb in images],
                                            generator.config.input_size, device)
    return flows, [float(v) for v in (head.predict(np.stack(features)) + head.predict(np.stack(mirrored))) / 2]


def fit_head_on_store(generator: UNetGenerator, store: FlowStore, video_ids: list[str], device: Any,
                      max_frames: int = 4096, batch_size: int = 64) -> PotentialHead:
    """G's potential head fitted on frames of `video_ids` (at most `max_frames`, spread evenly over the
    videos) and their mirror images, each with its true mean magnitude; cross-validated by video group
    (im2flow_core.splits.group_of).
    """
    per_video = max(1, max_frames // max(1, len(video_ids)))
    samples = sample_index(store, video_ids, {v: 0 for v in video_ids}, per_video)[:max_frames]
    features, truth, groups = [], [], []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        pairs = [store.read_pair(s.video_id, s.t) for s in chunk]
        for mirror in (False, True):
            rgbs = [np.ascontiguousarray(rgb[:, ::-1]) if mirror else rgb for rgb, _ in pairs]
            _, pooled = predict_flow_and_features(generator, rgbs, generator.config.input_size, device)
            features += pooled
            truth += [float(np.linalg.norm(flow, axis=-1).mean()) for _, flow in pairs]
            groups += [group_of(s.video_id) for s in chunk]
    return fit_potential_head(np.stack(features), np.array(truth), groups)


LIST_EXTENSIONS = (".txt", ".lst", ".list")


def image_files(paths: Iterable[str]) -> list[str]:
    """Files given, the image files under given folders (recursively, sorted), and the files named in list files.

    A list file (`.txt`, `.lst`, `.list`) names one image per line, relative to its own folder or
    absolute; blank lines and lines starting with `#` are skipped.
    """
    out: list[str] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            out += [str(p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            for line in path.read_text().splitlines():
                name = line.strip()
                if name and not name.startswith("#"):
                    out.append(str(path.parent / Path(name).expanduser()))  # an absolute name stays absolute
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
                 device: Any, batch_size: int = 32, gallery_k: int = 6, fg_threshold_px: float = 0.5) -> dict[str, Any]:
    """Score `(name, rgb or None if unreadable, true mean magnitude or None)` items in batches of G.

    Returns rows (name, potential_px, mean_m_px, potential_fg_px, true_mean_magnitude_px), the
    skipped (unreadable) names, and the gallery's extremes (name, rgb, flow, scores).
    """
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    extremes = _Extremes(gallery_k)

    def flush(batch: list[tuple[str, np.ndarray, float | None]]) -> None:
        images, potentials = predict_with_potential(generator, [rgb for _, rgb, _ in batch], device)
        for (name, rgb, truth), image, potential in zip(batch, images, potentials):
            fg = motion_potential(image, image[..., 2] > fg_threshold_px)
            row = {"image": name, "potential_px": potential, "mean_m_px": motion_potential(image),
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


def split_samples(store: Any, split: str, frames_per_video: int | None, records: list[Any] | None = None) -> list[Any]:
    """The evenly spaced frames `(video_id, t)` of each complete video of `split`, as `evaluate` samples them.
    `records`: the store's complete records, if already read."""
    records = store.records(complete_only=True) if records is None else records
    videos = [r.video_id for r in records if r.split == split]
    return sample_index(store, videos, {v: 0 for v in videos}, frames_per_video, records)


def split_frames(store: Any, samples: list[Any], nearest: Any,
                 nn_scores: dict[str, float]) -> Iterator[tuple[str, np.ndarray, float]]:
    """(`video_id@t`, frame t `(H, W, 3) uint8`, its true mean magnitude px) for each of `samples`
    (`split_samples`), read one at a time; the nearest neighbour's score of each on the side.
    """
    for s in samples:
        rgb, true = store.read_pair(s.video_id, s.t)
        name = f"{s.video_id}@{s.t}"
        nn_scores[name] = float(np.linalg.norm(nearest.predict(rgb), axis=-1).mean())
        yield name, rgb, float(np.linalg.norm(true, axis=-1).mean())


def still_images(paths: list[str], problems: dict[str, str] | None = None
                 ) -> Iterator[tuple[str, np.ndarray | None, None]]:
    """(path, RGB or None if unreadable or over the pixel limit, no truth) for each image file, read one at a
    time; why an image was not read goes into `problems` (path → reason)."""
    for path in paths:
        rgb, problem = read_rgb_image_checked(path)
        if problem and problems is not None:
            problems[path] = problem
        yield path, rgb, None


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


POTENTIAL_NOTE = ("Motion potential: the motion a still image implies, in pixels per frame at the image's own "
                  "resolution (G's potential head's estimate of the image's true mean flow magnitude; the mean "
                  "predicted magnitude for models without a head). Higher = more motion expected. ρ and τ: rank "
                  "agreement with the true mean magnitude (1 = same order, 0 = unrelated), with 95 % bootstrap "
                  "intervals.")


def format_score(value: float) -> str:
    """A score for a report table: three decimals, or `n/a` when it is not finite."""
    return "n/a" if not math.isfinite(value) else f"{value:.3f}"


def agreement_markdown(table: list[dict[str, Any]]) -> str:
    """Rank agreement rows as Markdown: ρ and τ with their intervals."""
    lines = ["| method | Spearman ρ [95 % CI] | Kendall τ [95 % CI] |", "|---|---|---|"]
    for r in table:
        cells = [f"{format_score(r[k])} [{format_score(r[k + '_low'])}, {format_score(r[k + '_high'])}]"
                 if math.isfinite(r[k]) else "n/a"
                 for k in ("spearman", "kendall")]
        lines.append(f"| {r['method']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
