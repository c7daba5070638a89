"""The local Dask cluster: workers keep glibc's adaptive malloc unless the user configured it."""

import os

import dask
import pytest
from distributed import Client

from flows.compute import dask_scheduler

pytestmark = pytest.mark.services  # starts local Dask clusters


def _trim_threshold() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_start_without_dasks_malloc_trim_threshold_unless_configured(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536  # Dask's default
    with dask_scheduler(workers=2) as address, Client(address) as client:
        assert list(client.run(_trim_threshold).values()) == [None, None]
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 262144}):
        with dask_scheduler(workers=1) as address, Client(address) as client:
            assert list(client.run(_trim_threshold).values()) == ["262144"]  # the user's choice is kept
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with dask_scheduler(workers=1) as address, Client(address) as client:
        assert list(client.run(_trim_threshold).values()) == ["65536"]
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536  # restored
