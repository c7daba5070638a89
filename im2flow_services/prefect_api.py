"""Prefect's temporary API, started by a command as it starts, so it boots while the command sets up.

Without a Prefect server (no `PREFECT_API_URL`), Prefect starts a temporary API in a subprocess
the first time a flow needs one, and waits for it: 3.6 s on an idle 2-core machine, 12 s on a
busy one, more on a fresh home (its database is created). A command of the console script starts
that same subprocess (Prefect's own server app under uvicorn, as `SubprocessASGIServer` runs it)
at once instead (the console script spawns it even before Prefect is imported: `boot_before_settings`),
and points this process, its Dask workers and its children at it through
`PREFECT_API_URL`; it answers by the time the command has imported torch, Prefect's engine and
Dask (`wait_until_ready`, called by the preflight). The driver never imports Prefect's server
package (1.5 s). While it waits, it imports what its first flow run needs (FLOW_RUN_IMPORTS). Flow runs on this
API send no heartbeats (`_without_flow_run_heartbeats`: each cost up to 1 s). The server stops when the command
exits.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx


@dataclass
class TemporaryApi:
    """This process's temporary Prefect API: its uvicorn subprocess and port."""

    process: subprocess.Popen[bytes]
    port: int
    ready: bool = False

    @property
    def url(self) -> str:
        """The API's URL, e.g. `http://127.0.0.1:8431/api`."""
        return f"http://127.0.0.1:{self.port}/api"


_started: TemporaryApi | None = None  # one per process, as Prefect's own temporary server
_booting: TemporaryApi | None = None  # spawned before Prefect's settings were read; start_early decides
_SERVER_FLAGS = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
                 # Block types are for the UI and for saved block documents; this API serves neither, and registering
                 # them (or checking that they are) imports every Prefect collection (prefect-dask: Dask) as it boots.
                 "PREFECT_API_BLOCKS_REGISTER_ON_START": "0", "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "0"}
# What a command's first flow run imports, which nothing before it does (measured on `im2flow ingest`): pandas
# (pyarrow imports it the first time it converts Python values, as every manifest and report write does: 0.3-0.8 s)
# and FastAPI's encoder (Prefect's flow-run parameters). Imported while the API boots, not after.
FLOW_RUN_IMPORTS = ("pandas", "fastapi.encoders")


def boot_before_settings() -> None:
    """Spawn the temporary API before Prefect is imported, when the environment names no Prefect API.

    Reading Prefect's settings (a profile may name an API) imports Prefect: 0.75 s on 2 cores, in
    which the API can already boot. `start_early` then adopts it, or stops it (within a second,
    while it still imports, before it opens its database) when the settings name an API after all.
    """
    global _booting
    disabled = os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in ("0", "false", "no", "off")
    if (_booting or _started or "prefect" in sys.modules or os.environ.get("PREFECT_API_URL") or disabled
            or os.name != "posix"):
        return
    _booting = _spawn({**os.environ, **_SERVER_FLAGS})
    atexit.register(stop)  # registered before Prefect's own exit handlers, so it runs after them


def start_early() -> TemporaryApi | None:
    """Start the temporary Prefect API now (or adopt `boot_before_settings`'), unless a Prefect API URL is
    configured or ephemeral mode is off (then a booting one is stopped).

    Sets `PREFECT_API_URL` in this process's environment and Prefect's settings, so Prefect's
    clients here and in every process started from here (Dask workers) use it. Returns it, or
    None when a configured API (or none at all) is used. Idempotent.
    """
    global _started, _booting
    if _started is not None or os.name != "posix":  # elsewhere Prefect starts its own when a flow needs it
        return _started
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, get_current_settings

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        stop()
        return None
    if _booting is not None:
        _started, _booting = _booting, None
    else:
        # What Prefect gives its own temporary server: the settings of this process (profile included).
        _started = _spawn({**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
                           **_SERVER_FLAGS})
        atexit.register(stop)  # registered before Prefect's own exit handlers, so it runs after them
    _point_prefect_at(_started.url)
    return _started


def started() -> TemporaryApi | None:
    """The temporary API `start_early` started in this process, or None."""
    return _started


def wait_until_ready(timeout_s: float | None = None) -> None:
    """Block until the temporary API answers its health check (at once if it did before).

    Waits at most `timeout_s` (default: Prefect's `server.ephemeral.startup_timeout_seconds`);
    RuntimeError when it exits or does not answer in time.
    """
    api = _started
    if api is None or api.ready:
        return
    if timeout_s is None:
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        timeout_s = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as client:
        if not _answers(api, client):
            for name in FLOW_RUN_IMPORTS:  # the time is spent waiting anyway
                importlib.import_module(name)
        while time.monotonic() < deadline:
            status = api.process.poll()
            if status is not None:
                raise RuntimeError(f"Prefect's temporary API exited with status {status} before it answered "
                                   "(its messages are above)")
            if _answers(api, client):
                return
            time.sleep(0.05)
    raise RuntimeError(f"Prefect's temporary API at {api.url} did not answer within {timeout_s:.0f} s; raise "
                       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS or start a server (`prefect server start`)")


def _answers(api: TemporaryApi, client: httpx.Client) -> bool:
    """Whether `api` answers its health check now (and then marks it ready)."""
    try:
        api.ready = client.get(f"{api.url}/health").status_code == 200
    except httpx.TransportError:
        return False
    return api.ready


def stop() -> None:
    """Stop the temporary API, started or booting (SIGTERM, then SIGKILL after 5 s); called when the process exits."""
    global _started, _booting
    for api in (_started, _booting):
        if api is None or api.process.poll() is not None:
            continue
        api.process.terminate()
        try:
            api.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            api.process.kill()
            api.process.wait()
    _started = _booting = None


def api_url_for_workers() -> str:
    """The Prefect API URL for processes started now (local Dask workers) when no API URL is configured.

    The early-started API's URL when there is one; otherwise Prefect's own temporary server,
    started here (it waits until it answers), which this process's flows use too.
    """
    if _started is not None:
        return _started.url
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the one this process's flows use (one per process)
    server.start()
    return server.api_url


def _spawn(env: dict[str, str]) -> TemporaryApi:
    """Prefect's server app under uvicorn, as Prefect runs its temporary server, on a socket bound here.

    The socket (127.0.0.1, a free port) is bound and listening before the server starts and handed
    to it (`--fd`): no other process can take the port meanwhile, and a client that connects before
    the server answers waits in the socket's queue instead of failing.
    """
    spec = importlib.util.find_spec("prefect")  # where Prefect is installed, without importing it (0.75 s)
    app_dir = os.path.dirname(os.path.dirname(spec.origin)) if spec and spec.origin else "."
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}  # the server itself needs none
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
                                    "prefect.server.api.server:create_app", "--fd", str(sock.fileno()),
                                    "--log-level", "error", "--lifespan", "on"], env=env, pass_fds=[sock.fileno()])
        return TemporaryApi(process, int(sock.getsockname()[1]))


def _point_prefect_at(url: str) -> None:
    """Make `url` this process's Prefect API (and its children's, through the environment)."""
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = url
    # It serves no UI (as Prefect's own temporary API): no "View at <URL>" log lines linking to nothing.
    os.environ.setdefault("PREFECT_UI_URL", "")
    refresh_global_settings_context()  # Prefect's way to pick up a changed environment variable
    _without_flow_run_heartbeats()


def _without_flow_run_heartbeats() -> None:
    """Flow runs in this process send no heartbeats (`flows.heartbeat_frequency` None).

    A heartbeat lets a Prefect server mark a run Crashed when its process dies unseen; the temporary API dies
    with this process, so they have no reader. And each flow run ends by joining its heartbeat thread, which
    sleeps in 1 s steps: a trivial flow took 1.10 s with them and 0.14 s without (Prefect 3.9, 2 cores). There
    is no environment value for "none", so the process's global settings get it, as Prefect's own
    `refresh_global_settings_context` sets them. A configured Prefect server keeps its heartbeats.
    """
    import prefect.context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    current = prefect.context.GLOBAL_SETTINGS_CONTEXT
    prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.SettingsContext(
        profile=current.profile,
        settings=current.settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
