"""Sizing Prefect tasks by the work they carry, not by a fixed count of videos."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from im2flow_core.video import resolve_frame_size

if TYPE_CHECKING:
    from im2flow_tasks.config import ExtractConfig

T = TypeVar("T")


def batches_by_work(items: Sequence[T], work: Callable[[T], float], per_task: float, min_tasks: int = 16,
                    min_per_task: float = 0.0) -> list[list[T]]:
    """Consecutive `items` grouped so each group carries about `per_task` work (e.g. frames), in order.

    The target shrinks to total / `min_tasks` on small jobs, so a few videos still spread over the
    cluster and the progress bar moves, but not below `min_per_task` (work worth a Prefect task's own
    cost); an item heavier than the target gets a group of its own.
    """
    if not items:
        return []
    total = sum(work(item) for item in items)
    target = max(1e-9, min_per_task, min(per_task, total / max(1, min_tasks)))
    batches: list[list[T]] = [[]]
    carried = 0.0
    for item in items:
        if batches[-1] and carried + work(item) > target:
            batches.append([])
            carried = 0.0
        batches[-1].append(item)
        carried += work(item)
    return batches


# Core-seconds per megapixel of frame for decoding, flow, encoding and writing, on one CPU core at
# 340×256 (benchmarks/extract_throughput.py): only their rough size and ratios matter, as they set
# how many videos share a task. tvl1-torch on a GPU is far cheaper; its tasks then just carry more.
EXTRACT_SECONDS_PER_MEGAPIXEL = {"tvl1": 12.0, "tvl1-torch": 3.0, "dis": 2.5, "farneback": 2.8}
# Opening a video, creating its group and marking it complete, whatever its length.
EXTRACT_SECONDS_PER_VIDEO = 0.05


def extract_work_seconds(row: Mapping[str, Any], algorithm: str, size: tuple[int, int],
                         frame_stride: int = 1, max_frames: int | None = None) -> float:
    """Estimated core-seconds to extract the manifest row `row` (n_frames) at output `size` (W, H) px."""
    frames = max(1, int(row.get("n_frames") or 1) // max(1, frame_stride))
    if max_frames is not None:
        frames = min(frames, max_frames)
    megapixels = size[0] * size[1] / 1e6
    return EXTRACT_SECONDS_PER_VIDEO + frames * megapixels * EXTRACT_SECONDS_PER_MEGAPIXEL.get(algorithm, 12.0)


# Small jobs still spread over this many tasks, so every worker of a cluster gets some and progress moves.
MIN_TASKS = 32


def extract_batches(rows: Sequence[Mapping[str, Any]], config: ExtractConfig) -> list[list[Any]]:
    """Manifest rows grouped into extraction tasks of about `config.seconds_per_task` core-seconds."""
    def work(row: Mapping[str, Any]) -> float:
        size = resolve_frame_size(row["width"], row["height"], config.short_side, config.size)
        return extract_work_seconds(row, config.algorithm.value, size, config.frame_stride, config.max_frames)

    return batches_by_work(list(rows), work, config.seconds_per_task, MIN_TASKS)


# Probing decodes every frame, at roughly 20-50 MB of compressed video a second on one core: below
# about 2 MB a task would cost more in Prefect's own bookkeeping (≈ 0.1 s a task run) than in decoding.
PROBE_MIN_MEGABYTES_PER_TASK = 2.0


def probe_batches(entries: Sequence[Mapping[str, Any]], megabytes_per_task: float) -> list[list[Any]]:
    """Dataset entries grouped into probing tasks of about `megabytes_per_task` MB of video files (whole files)."""
    sizes = {}
    for entry in entries:
        try:
            sizes[entry["path"]] = os.stat(entry["path"]).st_size / 1e6  # decoding cost grows with the file
        except OSError:
            sizes[entry["path"]] = 1.0
    return batches_by_work(list(entries), lambda e: sizes[e["path"]], megabytes_per_task, MIN_TASKS,
                           min(megabytes_per_task, PROBE_MIN_MEGABYTES_PER_TASK))
