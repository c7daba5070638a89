"""The Dask cluster the flows run on: a local one sized to the machine, or an existing scheduler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import LocalCluster
from prefect_dask import DaskTaskRunner


@contextmanager
def dask_scheduler(workers: int | None = None, address: str | None = None) -> Iterator[str]:
    """Yield a scheduler address: `address` as given, else a LocalCluster's (closed on exit).

    The local cluster has `workers` single-threaded worker processes (default: one per core).
    """
    if address:
        yield address
        return
    n_workers = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def task_runner(address: str) -> DaskTaskRunner:
    """A Prefect task runner on the Dask cluster at `address`."""
    return DaskTaskRunner(address=address)
