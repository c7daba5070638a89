"""Dask worker preload for the local cluster: import what every task needs before the worker takes work.

A fresh worker process imports Prefect's task engine (1.1 s on 2 cores), OpenCV and the storage layer when
its first task arrives, after the flow has started. Here a background thread imports them as the worker
starts, while the driver waits for Prefect's API: the worker joins the cluster once Prefect is imported
(TASK_ENGINE), so no task can arrive while this thread imports Prefect (a task importing Prefect at the same
time tripped Python's import-deadlock detection in one of Prefect's import cycles, which printed "Failed to
initialize plugins: deadlock detected"); the rest (MODULES) may still load as the first task runs (Python's
per-module import locks let it wait for a module the thread is importing). Holding the interpreter's import
lock in the thread instead deadlocked against `logging`'s lock (a task configuring logging imports).
At a low priority, so they do not slow the API's boot on a small machine. Torch is not among them: stages
that do not use it (ingest) would pay for it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from im2flow_services.one_line_logs import QUIET_CONSOLE_ENV, quiet_dask_console

TASK_ENGINE = ("prefect", "prefect.task_engine", "prefect_dask")
"""What a Prefect task needs on a worker before it runs (unpickling it imports them): imported before the
worker joins."""
MODULES = ("cv2", "im2flow_storage", "im2flow_core.video")
"""What most tasks use: imported after the worker joined."""


async def dask_setup(worker: Any) -> None:
    """Dask's preload hook: import TASK_ENGINE, then MODULES, in a low-priority thread; returns (and the worker
    registers with the scheduler) once TASK_ENGINE is imported. On a quiet console (the CLI without --verbose),
    the worker's Dask errors print one line each (im2flow_services.one_line_logs)."""
    if os.environ.get(QUIET_CONSOLE_ENV):
        quiet_dask_console()
    loop = asyncio.get_running_loop()
    engine_imported: asyncio.Future[None] = loop.create_future()

    def mark_imported() -> None:
        if not engine_imported.done():
            engine_imported.set_result(None)

    threading.Thread(target=_import_all, args=(lambda: loop.call_soon_threadsafe(mark_imported),),
                     name="im2flow-preload", daemon=True).start()
    await engine_imported


def _import_all(engine_done: Callable[[], object]) -> None:
    if sys.platform.startswith("linux"):
        # Nice 10 for this thread only (Linux schedules threads alone): on a small machine the driver
        # and Prefect's temporary API are booting too, and the first task needs the API first.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    try:
        _import(TASK_ENGINE)
    finally:
        engine_done()
    _import(MODULES)


def _import(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a failed preload changes nothing: the task's own import reports it
            pass
