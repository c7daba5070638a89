"""Progress shown in two places at once: a rich bar in the terminal and a Prefect progress artifact.

Stages that run in the driver (training, evaluation, recognition, potential, predict) advance it
from inside their tasks; stages that fan out to Dask advance it as task futures finish
(`im2flow_tasks.batch_progress.gather_batches`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext, TaskRunContext
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


class RunProgress:
    """Counts finished items; updates the terminal at once and the artifact at most every `interval_s`.

    Use it as a context manager: the terminal bar's refresh thread stops on exit, also when the
    work inside raises.
    """

    def __init__(self, total: int, description: str, show: bool, interval_s: float = 2.0) -> None:
        self.total, self.done = total, 0
        self._interval, self._last = interval_s, 0.0
        # Outside a flow or task run (`im2flow predict`) there is no run to attach an artifact to. No key: a
        # key is global on a Prefect server, and a bar belongs to its run only (its Artifacts tab).
        in_run = FlowRunContext.get() is not None or TaskRunContext.get() is not None
        self._artifact = create_progress_artifact(0.0, description=description) if in_run else None
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
        if self._artifact is not None and (now - self._last >= self._interval or self.done >= self.total):
            self._last = now
            update_progress_artifact(self._artifact, 100.0 * self.done / max(self.total, 1))

    def close(self, completed: bool = True) -> None:
        """Finish: the terminal bar stops; the artifact shows 100 % if `completed`."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if completed and self._artifact is not None:
            update_progress_artifact(self._artifact, 100.0)

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001 - the context-manager protocol
        self.close(completed=exc_type is None)

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        """`items`, advancing by one as each is taken."""
        for item in items:
            yield item
            self.advance()


def training_progress(description: str, show: bool, batches_per_epoch: int, max_epochs: int,
                      epochs_done: int) -> RunProgress:
    """A bar over the training batches of the epochs still to run; advance it from `fit`'s `on_step`.

    Early stopping leaves the terminal bar short of its total; the artifact still ends at 100 %.
    """
    return RunProgress(max(0, max_epochs - epochs_done) * batches_per_epoch, description, show)
