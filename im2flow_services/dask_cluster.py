"""The Dask cluster the flows run on: a local one sized to the machine, or an existing scheduler."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dask
from distributed import LocalCluster
from prefect_dask import DaskTaskRunner

LOOPBACK = "127.0.0.1"


@contextmanager
def dask_scheduler(workers: int | None = None, address: str | None = None) -> Iterator[str]:
    """Yield a scheduler address: `address` as given, else a LocalCluster's (closed on exit).

    The local cluster listens on 127.0.0.1 only (scheduler, workers and dashboard): whoever reaches a
    Dask scheduler can run any code on its workers. The local cluster has `workers` single-threaded
    worker processes (default: one per core), with
    glibc's adaptive malloc (see `worker_environ_overrides`), reporting to this process's Prefect API
    (see `worker_prefect_environ`), importing what tasks need as they start (im2flow_services.worker_preload).
    """
    if address:
        yield address
        return
    n_workers = workers or os.cpu_count() or 1
    preload = {"distributed.worker.preload": [*dask.config.get("distributed.worker.preload", []),
                                              "im2flow_services.worker_preload"]}
    with dask.config.set({**worker_environ_overrides(), **worker_prefect_environ(), **preload}), LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, host=LOOPBACK,
            dashboard_address=f"{LOOPBACK}:0") as cluster:
        yield cluster.scheduler_address


_DASK_DEFAULT_TRIM_THRESHOLD = 65536


def worker_environ_overrides() -> dict[str, object]:
    """Dask config that starts local workers without Dask's default `MALLOC_TRIM_THRESHOLD_=65536`.

    That setting hands freed memory back to the OS sooner, but it also pins glibc's mmap threshold
    at 128 KiB, so every large temporary array becomes a fresh mmap whose pages fault in on first
    touch: the PyTorch TV-L1 on CPU ran 3× slower in such a worker than in a plain process. A value
    set in the environment, or a Dask config value other than Dask's default, is kept.
    """
    key = "MALLOC_TRIM_THRESHOLD_"
    configured = dask.config.get(f"distributed.nanny.pre-spawn-environ.{key}", None)
    if key in os.environ or configured != _DASK_DEFAULT_TRIM_THRESHOLD:
        return {}
    return {f"distributed.nanny.pre-spawn-environ.{key}": None}  # None: the nanny leaves it unset


def worker_prefect_environ() -> dict[str, object]:
    """Dask config that points local workers at this process's temporary Prefect API, when it uses one.

    With no `PREFECT_API_URL`, Prefect starts a temporary API server in the process that first needs
    one: without this, every worker would start its own (seconds each, all writing one SQLite file),
    and a 64-core machine would run 64 of them. A configured API URL is inherited as it is.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return {}
    from im2flow_services.prefect_api import api_url_for_workers

    # Started in the background by the CLI: the cluster starts while the API boots.
    return {"distributed.nanny.pre-spawn-environ.PREFECT_API_URL": api_url_for_workers()}


def task_runner(address: str) -> DaskTaskRunner:
    """A Prefect task runner on the Dask cluster at `address`."""
    return DaskTaskRunner(address=address)
