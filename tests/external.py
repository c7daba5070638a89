"""Real services started on loopback for the scale-out tests: Dask, an S3 API (moto), MLflow and Prefect servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 120.0, process: subprocess.Popen | None = None,
             log: Path | None = None) -> None:
    """Poll `check` until it is true; fail naming `what` (and the process's log) on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {timeout_s} s\n{tail}")


def http_ok(url: str) -> Callable[[], bool]:
    """A check that `url` answers 2xx."""
    return lambda: httpx.get(url, timeout=2).status_code < 300


class Service:
    """A background process with its log file; stopped (its whole process group) by `stop`."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                        start_new_session=True)

    def stop(self) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log_file.close()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, not a shutdown)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def s3_env(port: int) -> dict[str, str]:
    """Environment for S3 clients (s3fs, boto3) pointed at a local S3 API server."""
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}


def start_s3(tmp: Path, bucket: str) -> tuple[Service, dict[str, str]]:
    """moto's S3 API server on loopback with `bucket` created; returns it and the client environment."""
    port = free_port()
    service = Service([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], tmp / "moto.log")
    env = s3_env(port)
    wait_for(http_ok(f"http://127.0.0.1:{port}/moto-api/"), "moto S3 server", 60, service.process, service.log)
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=bucket)
    return service, env


def start_mlflow(tmp: Path) -> tuple[Service, str]:
    """`mlflow server` with a SQLite backend on loopback; returns it and its URI."""
    port = free_port()
    args = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{tmp / 'mlflow-server.db'}",
            "--artifacts-destination", (tmp / "mlflow-artifacts").as_uri()]
    service = Service(args, tmp / "mlflow.log", env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    wait_for(http_ok(f"{uri}/health"), "mlflow server", 180, service.process, service.log)
    return service, uri


def start_prefect(tmp: Path) -> tuple[Service, str, dict[str, str]]:
    """`prefect server start` on loopback with its own home; returns it, its API URL and the client env."""
    port = free_port()
    home = tmp / "prefect-server-home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": "", "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    service = Service([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                      tmp / "prefect.log", env=env)
    api = f"http://127.0.0.1:{port}/api"
    wait_for(http_ok(f"{api}/health"), "prefect server", 180, service.process, service.log)
    return service, api, {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp / "prefect-client-home"),
                          "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def start_dask(tmp: Path, n_workers: int, env: dict[str, str] | None = None) -> tuple[Service, list[Service], str]:
    """`dask scheduler` and `n_workers` single-threaded `dask worker` processes (no nanny) on loopback."""
    port = free_port()
    full_env = {**os.environ, **(env or {})}
    scheduler = Service([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                         "--dashboard-address", ":0"], tmp / "scheduler.log", env=full_env)
    address = f"tcp://127.0.0.1:{port}"
    workers = [Service([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--name", f"w{i}",
                        "--dashboard-address", ":0"], tmp / f"worker{i}.log", env=full_env, cwd=tmp)
               for i in range(n_workers)]
    from distributed import Client

    def ready() -> bool:
        with Client(address, timeout=5) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"]) >= n_workers

    wait_for(ready, f"dask scheduler with {n_workers} workers", 120, scheduler.process, scheduler.log)
    return scheduler, workers, address


def cli(args: list[str], env: dict[str, str | None], log: Path, timeout_s: float = 600,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `im2flow ARGS` as a separate process with `env` added (a None value removes the variable), in `cwd`;
    its output goes to `log` too."""
    merged = {key: value for key, value in {**os.environ, **env}.items() if value is not None}
    result = subprocess.run([str(BIN / "im2flow"), *args], env=merged, capture_output=True, text=True,
                            timeout=timeout_s, cwd=cwd)
    log.write_text(result.stdout + result.stderr)
    return result


def which(name: str) -> str | None:
    """Path of an executable of this environment (or PATH)."""
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name)
