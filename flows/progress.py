"""Progress shown in two places at once: a rich bar in the terminal and a Prefect progress artifact."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunProgress:
    """Counts finished items; updates the terminal at once and the artifact at most every `interval_s`.

    Use it as a context manager: the terminal bar's refresh thread stops on exit, also when the
    work inside raises.
    """

    def __init__(self, total: int, description: str, artifact_key: str, show: bool, interval_s: float = 2.0) -> None:
        self.total, self.done = total, 0
        self._interval, self._last = interval_s, 0.0
        self._artifact = create_progress_artifact(0.0, key=artifact_key, description=description)
        self._bar: Progress | None = None
        if show and total:
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn())
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        """Record `n` more finished items."""
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
        now = time.monotonic()
        if now - self._last >= self._interval or self.done >= self.total:
            self._last = now
            update_progress_artifact(self._artifact, 100.0 * self.done / max(self.total, 1))

    def close(self, completed: bool = True) -> None:
        """Finish: the terminal bar stops; the artifact shows 100 % if `completed`."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if completed:
            update_progress_artifact(self._artifact, 100.0)

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001 - the context-manager protocol
        self.close(completed=exc_type is None)


def gather_batches(futures: dict[Any, list[dict[str, Any]]], description: str, artifact_key: str, show: bool,
                   crashed: Callable[[list[dict[str, Any]], Exception], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The outcomes of Prefect task futures, each running one batch (future → its batch), as they finish.

    Progress advances by each batch's outcomes; a task that still raised after its retries gives
    `crashed(batch, exception)` instead, so every item of the batch is recorded.
    """
    outcomes: list[dict[str, Any]] = []
    with RunProgress(sum(len(b) for b in futures.values()), description, artifact_key, show) as progress:
        for future in as_completed(list(futures)):
            try:
                batch_outcomes = future.result()
            except Exception as exc:  # noqa: BLE001 - a task that still crashed after its retries is recorded
                batch_outcomes = crashed(futures[future], exc)
            outcomes.extend(batch_outcomes)
            progress.advance(len(batch_outcomes))
    return outcomes

