"""Prefect's temporary API started in the background, so a command imports and sets up while it boots.

Without a Prefect server (`PREFECT_API_URL` unset), Prefect starts a temporary API in a subprocess
the first time a flow needs one, and waits for it: about 5 s on an idle 2-core machine, 12 s on a
busy one, more on a fresh home (its database is created). Started when the command starts instead,
it boots while the command imports torch, Prefect's engine and Dask and starts its cluster.
"""

from __future__ import annotations

import threading


def start_in_background() -> None:
    """Start this process's temporary Prefect API in a thread, unless an API URL is configured.

    Every caller of `SubprocessASGIServer().start()` (Prefect's clients, `flows.compute`) then waits
    until it answers, as Prefect's own start does: the background start replaces that method on the
    one server object of this process. If the background start fails, the next caller starts it
    again in the foreground, and that raises Prefect's own error.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one per process: the one Prefect's clients will use
    if server.running:
        return
    started = threading.Event()
    start_now = server.start
    if server.port is None:
        server.port = server.find_available_port()  # known now: workers can be told it while it boots

    def boot() -> None:
        try:
            start_now()
        except Exception:  # noqa: BLE001 - the foreground start below repeats it and raises
            pass
        finally:
            started.set()

    def start_when_booted(timeout: int | None = None) -> None:
        started.wait()
        if not server.running:
            start_now(timeout)

    server.start = start_when_booted  # type: ignore[method-assign] - this instance only
    threading.Thread(target=boot, name="prefect-temporary-api", daemon=True).start()


def api_url_for_workers() -> str:
    """The URL of this process's temporary API, for processes started now (local Dask workers).

    At once when the background start has chosen its port (the API may still be booting: workers
    only call it from tasks, after the flow has started, by when it answers); otherwise the API is
    started here (Prefect's own start, which waits until it answers).
    """
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the one this process's flows use (one per process)
    if not (server.running and server.port is not None):
        server.start()
    return server.api_url
