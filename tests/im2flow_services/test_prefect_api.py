"""The console script's temporary Prefect API (im2flow_services.prefect_api): started early, used by all,
stopped at exit.

Each scenario runs in its own Python process: starting the API changes that process's environment
and Prefect settings, as it does for a command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

services = pytest.mark.services  # starts Prefect's temporary API (and a Dask cluster) in subprocesses

DRIVER = '''
import json, os, sys
from im2flow_services.prefect_api import boot_before_settings, start_early

boot_before_settings()  # as the console script: before Prefect is imported
from prefect import flow, task
api = start_early()  # adopts it
from prefect.settings import PREFECT_API_URL, get_current_settings
from im2flow_services.dask_cluster import dask_scheduler, task_runner
from im2flow_services.preflight import check_prefect_api
from im2flow_services.prefect_api import FLOW_RUN_IMPORTS

@task
def where():
    return os.environ.get("PREFECT_API_URL"), "prefect.server.api.server" in sys.modules

@flow
def probe():
    return [f.result() for f in [where.submit() for _ in range(2)]]

imported_before = [m in sys.modules for m in FLOW_RUN_IMPORTS]
check_prefect_api()  # waits until the API answers (it boots for seconds: it was not answering yet)
imported_while_waiting = [m in sys.modules for m in FLOW_RUN_IMPORTS]
with dask_scheduler(2) as address:
    out = probe.with_options(task_runner=task_runner(address))()
from prefect.client.orchestration import get_client
with get_client(sync_client=True) as client:
    runs = client.read_flow_runs()
print(json.dumps({"url": api.url, "env": os.environ["PREFECT_API_URL"], "setting": PREFECT_API_URL.value(),
                  "pid": api.process.pid, "workers": out, "runs": [r.name for r in runs],
                  "server_module_in_driver": "prefect.server.api.server" in sys.modules,
                  "heartbeat": get_current_settings().flows.heartbeat_frequency,
                  "imported_before": imported_before, "imported_while_waiting": imported_while_waiting}))
'''


def _run(code: str, env_updates: dict[str, str], tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false", **env_updates)
    result = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@services
def test_the_early_api_serves_the_driver_and_its_workers_and_stops_at_exit(tmp_path):
    out = _run(DRIVER, {}, tmp_path)
    assert out["url"].startswith("http://127.0.0.1:") and out["url"].endswith("/api")
    # The process's environment (for its children) and Prefect's settings (for itself) both name it.
    assert out["env"] == out["setting"] == out["url"]
    # Every task ran against it, in workers that did not start (or import) a server of their own.
    assert out["workers"] == [[out["url"], False]] * 2
    assert len(out["runs"]) == 1  # the flow run is recorded in it
    assert out["server_module_in_driver"] is False  # the driver never imported Prefect's server (1.5 s)
    assert not _alive(out["pid"])  # stopped when the process exited
    # Its flow runs send no heartbeats (no server outlives the process to read them; each cost up to 1 s).
    assert out["heartbeat"] is None
    # What the first flow run imports is imported while the API boots.
    assert out["imported_before"] == [False, False] and out["imported_while_waiting"] == [True, True]


@services
def test_a_configured_api_url_in_a_profile_is_respected(tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n')
    code = ("import json, sys; import im2flow_services.prefect_api as t\n"
            "t.boot_before_settings(); booting = t._booting.process; prefect_before = 'prefect' in sys.modules\n"
            "api = t.start_early(); from prefect.settings import PREFECT_API_URL, get_current_settings\n"
            "print(json.dumps({'api': api is not None, 'url': PREFECT_API_URL.value(),"
            " 'prefect_before': prefect_before, 'booting_stopped': booting.poll() is not None,"
            " 'heartbeat': get_current_settings().flows.heartbeat_frequency}))")
    out = _run(code, {"PREFECT_PROFILES_PATH": str(profiles)}, tmp_path)
    # Spawned before Prefect was imported, it is stopped once the profile's API is known; the profile wins.
    # A configured server keeps Prefect's flow-run heartbeats (it marks a run whose process died Crashed).
    assert out == {"api": False, "url": "http://127.0.0.1:9/api", "prefect_before": False, "booting_stopped": True,
                   "heartbeat": 180}
    assert not (tmp_path / "prefect" / "prefect.db").exists()  # stopped before it opened a database


EARLY_CLIENT = '''
import errno, json, socket, time
import httpx
import im2flow_services.prefect_api as temporary_api

api = temporary_api.start_early()
other = socket.socket()
try:
    other.bind(("127.0.0.1", api.port))
    taken = False
except OSError as exc:
    taken = exc.errno == errno.EADDRINUSE
started = time.perf_counter()
status = httpx.get(api.url + "/health", timeout=120).status_code  # sent at once, while the API still boots
print(json.dumps({"taken": taken, "status": status, "waited_s": time.perf_counter() - started}))
'''


@services
def test_the_port_is_held_from_the_start_and_an_early_client_waits_instead_of_failing(tmp_path):
    out = _run(EARLY_CLIENT, {}, tmp_path)
    assert out["taken"]  # bound before the server boots: nothing else can take it meanwhile
    assert out["status"] == 200 and out["waited_s"] > 0.5  # queued until the API answered, not refused


def test_the_console_script_starts_it_early_for_flow_commands_only():
    from im2flow_cli.options import START_API_EARLY, starts_api_early

    assert starts_api_early(START_API_EARLY, "ingest", ["ingest", "d", "-w", "w"])
    assert starts_api_early(START_API_EARLY, "demo", ["--verbose", "demo"])
    assert not starts_api_early(START_API_EARLY, "ingest", ["ingest", "--help"])  # help only: no API
    assert not starts_api_early(START_API_EARLY, "predict", ["predict", "x.png"])  # runs no flow
    assert not starts_api_early(START_API_EARLY, "serve", ["serve"])  # needs a server that outlives it
    assert not starts_api_early(START_API_EARLY, "inspect", ["inspect", "-w", "w"])
    assert not starts_api_early(None, "ingest", ["ingest", "d"])  # in-process callers: Prefect's own behaviour
