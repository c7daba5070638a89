"""Checks that the services a run needs are reachable, before any long work starts.

Each raises ServiceUnreachable with the URI or address it tried and what to do about it. They
take seconds at most: MLflow's and Prefect's clients would otherwise retry for minutes.
"""

from __future__ import annotations

import httpx


class ServiceUnreachable(RuntimeError):
    """A configured service (Prefect API, MLflow tracking server, Dask scheduler) does not answer."""


def prefect_api_url() -> str | None:
    """The configured Prefect API URL (PREFECT_API_URL or a profile), or None: a temporary local API."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def check_services(tracking_uri: str | None = None, dask_address: str | None = None, prefect: bool = True) -> None:
    """Every service a command will use answers, before anything starts: the Prefect API (when one is
    configured and `prefect`), the MLflow tracking store at `tracking_uri`, the Dask scheduler at
    `dask_address`. An unreachable one fails in seconds, naming its URI, instead of after minutes of
    client retries (or after hours of work). Raises ServiceUnreachable.
    """
    if prefect:
        check_prefect_api()
    if tracking_uri:
        check_mlflow(tracking_uri)
    check_dask(dask_address)


def check_prefect_api(url: str | None = None, timeout_s: float = 5.0) -> None:
    """Fail unless the Prefect API at `url` (default: the configured one) answers its health check.

    The command's own temporary API (im2flow_services.prefect_api) may still be booting: it is waited for.
    """
    from im2flow_services.prefect_api import started, wait_until_ready

    url = url or prefect_api_url()
    if url is None:
        return
    temporary = started()
    if temporary is not None and url == temporary.url:
        wait_until_ready()
        return
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnreachable(
            f"Prefect API {url} is unreachable ({type(exc).__name__}: {exc}). Start it with `prefect server start` "
            "or unset PREFECT_API_URL to run with a temporary local API.") from exc


def check_mlflow(uri: str, timeout_s: float = 5.0) -> None:
    """Fail unless the MLflow tracking store at `uri` answers (HTTP servers: /health; others: a query)."""
    if uri.startswith(("http://", "https://")):
        try:
            httpx.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnreachable(
                f"MLflow tracking server {uri} is unreachable ({type(exc).__name__}: {exc}). Start it with "
                "`mlflow server`, or unset MLFLOW_TRACKING_URI to track in the work directory's SQLite file.") from exc
        from im2flow_tasks.tracking import record_answer

        record_answer(uri)  # the command's flows do not ask again
        return
    from im2flow_tasks.tracking import check_tracking

    try:
        check_tracking(uri)
    except RuntimeError as exc:
        raise ServiceUnreachable(str(exc)) from exc


def check_dask(address: str | None, timeout_s: float = 10.0) -> None:
    """Fail unless the Dask scheduler at `address` accepts a connection and has at least one worker."""
    if not address:
        return
    if not _scheduler_workers(address, timeout_s):
        raise ServiceUnreachable(f"Dask scheduler {address} has no workers: start some with "
                                 f"`dask worker {address} --nthreads 1`")


def check_gpu_workers(address: str, timeout_s: float = 10.0) -> None:
    """Fail unless some worker of the Dask scheduler at `address` declares a `GPU` resource.

    Tasks that ask for one (tvl1-torch with `device: cuda`) would otherwise wait forever.
    """
    workers = _scheduler_workers(address, timeout_s)
    if not any(w.get("resources", {}).get("GPU", 0) > 0 for w in workers.values()):
        raise ServiceUnreachable(
            f"Dask scheduler {address} has no worker with a GPU resource ({len(workers)} worker(s)), and "
            "tvl1-torch with --device cuda asks for one per task. Start one worker per GPU with "
            f"`dask worker {address} --nthreads 1 --resources GPU=1`, or use --device auto (CUDA where a worker "
            "has it) or --device cpu")


def _scheduler_workers(address: str, timeout_s: float) -> dict[str, dict]:
    """The scheduler's worker records (address → info, with "resources"); ServiceUnreachable if it does not answer."""
    from distributed import Client

    try:
        with Client(address, timeout=timeout_s) as client:
            return client.scheduler_info(n_workers=-1)["workers"]
    except (OSError, TimeoutError) as exc:
        raise ServiceUnreachable(f"Dask scheduler {address} is unreachable ({type(exc).__name__}: {exc})") from exc
