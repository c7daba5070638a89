"""Progress of stages that fan out to Dask: a bar (`im2flow_tasks.progress.RunProgress`) advanced as task
futures finish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.futures import as_completed

from im2flow_tasks.progress import RunProgress


def gather_batches(futures: dict[Any, list[dict[str, Any]]], description: str, show: bool,
                   crashed: Callable[[list[dict[str, Any]], Exception], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The outcomes of Prefect task futures, each running one batch (future → its batch), as they finish.

    Progress advances by each batch's outcomes; a task that still raised after its retries gives
    `crashed(batch, exception)` instead, so every item of the batch is recorded.
    """
    outcomes: list[dict[str, Any]] = []
    with RunProgress(sum(len(b) for b in futures.values()), description, show) as progress:
        for future in as_completed(list(futures)):
            try:
                batch_outcomes = future.result()
            except Exception as exc:  # noqa: BLE001 - a task that still crashed after its retries is recorded
                batch_outcomes = crashed(futures[future], exc)
            outcomes.extend(batch_outcomes)
            progress.advance(len(batch_outcomes))
    return outcomes

