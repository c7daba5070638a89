"""The local Dask cluster: workers keep glibc's adaptive malloc unless the user configured it."""

import os

import dask
import psutil
import pytest
from distributed import Client

from im2flow_services.dask_cluster import dask_scheduler

pytestmark = pytest.mark.services  # starts local Dask clusters


def _trim_threshold() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_workers_start_without_dasks_malloc_trim_threshold_unless_configured(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536  # Dask's default
    with dask_scheduler(workers=2) as address, Client(address) as client:
        assert list(client.run(_trim_threshold).values()) == [None, None]
        # Scheduler, dashboard (this process) and workers (children) listen on loopback only: a Dask
        # scheduler runs whatever code it is sent.
        listening = [c.laddr.ip for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]
                     for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
        assert len(listening) >= 4 and set(listening) == {"127.0.0.1"}, listening
        assert "127.0.0.1" in client.dashboard_link
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 262144}):
        with dask_scheduler(workers=1) as address, Client(address) as client:
            assert list(client.run(_trim_threshold).values()) == ["262144"]  # the user's choice is kept
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with dask_scheduler(workers=1) as address, Client(address) as client:
        assert list(client.run(_trim_threshold).values()) == ["65536"]
    assert dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_") == 65536  # restored


WORKERS_SHARE_THE_DRIVERS_API = '''
import json, os
from prefect import flow, task
from prefect.server.api.server import SubprocessASGIServer
from im2flow_services.dask_cluster import dask_scheduler, task_runner

@task
def where():
    from prefect.server.api.server import SubprocessASGIServer
    return os.environ.get("PREFECT_API_URL"), any(s.running for s in SubprocessASGIServer._instances.values())

@flow
def probe():
    return [f.result() for f in [where.submit() for _ in range(4)]]

with dask_scheduler(2) as address:
    out = probe.with_options(task_runner=task_runner(address))()
print(json.dumps({"driver": SubprocessASGIServer().api_url, "workers": out}))
'''


def test_local_workers_report_to_the_drivers_temporary_prefect_api(tmp_path):
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    result = subprocess.run([sys.executable, "-c", WORKERS_SHARE_THE_DRIVERS_API], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["driver"].startswith("http://127.0.0.1:")
    # Every task ran against the driver's API; no worker started a server of its own.
    assert out["workers"] == [[out["driver"], False]] * 4


def _preloaded(timeout_s: float = 60.0) -> dict:
    import sys
    import threading
    import time

    from im2flow_services.worker_preload import MODULES

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(t.name == "im2flow-preload" for t in threading.enumerate()):
        time.sleep(0.05)
    return {"modules": [m for m in MODULES if m in sys.modules], "torch": "torch" in sys.modules}


def _engine_imported() -> list[str]:
    import sys

    from im2flow_services.worker_preload import TASK_ENGINE

    return [m for m in TASK_ENGINE if m in sys.modules]


def test_local_workers_import_what_tasks_need_as_they_start_but_not_torch():
    from im2flow_services.worker_preload import MODULES, TASK_ENGINE

    with dask_scheduler(workers=1) as address, Client(address) as client:
        # Prefect's task engine is imported before the worker joins: no task can arrive while it is imported.
        (engine,) = client.run(_engine_imported).values()
        (out,) = client.run(_preloaded).values()
    assert engine == list(TASK_ENGINE)
    assert out == {"modules": list(MODULES), "torch": False}
