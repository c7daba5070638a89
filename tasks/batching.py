"""Sizing Prefect tasks by the work they carry, not by a fixed count of videos."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def batches_by_work(items: Sequence[T], work: Callable[[T], float], per_task: float, min_tasks: int = 16) -> list[list[T]]:
    """Consecutive `items` grouped so each group carries about `per_task` work (e.g. frames), in order.

    The target shrinks to total / `min_tasks` on small jobs, so a few videos still spread over the
    cluster and the progress bar moves; an item heavier than the target gets a group of its own.
    """
    if not items:
        return []
    total = sum(work(item) for item in items)
    target = max(1e-9, min(per_task, math.ceil(total / max(1, min_tasks))))
    batches: list[list[T]] = [[]]
    carried = 0.0
    for item in items:
        if batches[-1] and carried + work(item) > target:
            batches.append([])
            carried = 0.0
        batches[-1].append(item)
        carried += work(item)
    return batches
