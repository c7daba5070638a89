"""Dask worker preload for the local cluster: import what every task needs while the worker waits for work.

A fresh worker process imports OpenCV and the storage layer when its first task arrives, after the
flow has started (Prefect's task engine too: that one stays with the task, see MODULES). Imported in a background thread
as the worker starts, they load while the driver waits for Prefect's API and creates the flow run;
the first task then waits only for what is left (Python's per-module import locks let it wait for a
module the thread is importing). Holding the interpreter's import lock in the thread instead, to keep
Prefect's imports apart, deadlocked against `logging`'s lock (a task configuring logging imports).
At a low priority, so they do not slow the API's boot on a small machine. Torch is not among them:
stages that do not use it (ingest) would pay for it.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any

from im2flow_services.one_line_logs import QUIET_CONSOLE_ENV, quiet_dask_console

# Not Prefect: a task importing Prefect while this thread does can trip Python's import-deadlock detection
# in one of Prefect's import cycles, which Prefect printed on the console ("Failed to initialize plugins:
# deadlock detected", once per worker, in the README's demo on a fresh machine).
MODULES = ("cv2", "im2flow_storage", "im2flow_core.video")


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: start importing MODULES in a daemon thread; returns at once. On a quiet console
    (the CLI without --verbose), the worker's Dask errors print one line each (im2flow_services.one_line_logs)."""
    if os.environ.get(QUIET_CONSOLE_ENV):
        quiet_dask_console()
    threading.Thread(target=_import_all, name="im2flow-preload", daemon=True).start()


def _import_all() -> None:
    if sys.platform.startswith("linux"):
        # Nice 10 for this thread only (Linux schedules threads alone): on a small machine the driver
        # and Prefect's temporary API are booting too, and the first task needs the API first.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a failed preload changes nothing: the task's own import reports it
            pass
