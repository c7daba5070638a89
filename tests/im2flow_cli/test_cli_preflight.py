"""Every command checks the services it will use before any work, and fails naming the unreachable URI."""

import socket

import pytest
from typer.testing import CliRunner

from im2flow_cli.app import app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def _run(args, env=None):
    result = CliRunner(env=env).invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def test_unreachable_prefect_api_fails_every_flow_command(tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{_closed_port()}/api"
    work = str(tmp_path / "w")
    commands = {"ingest": ["ingest", str(tmp_path), "-w", work], "extract": ["extract", "-w", work],
                "train": ["train", "-w", work], "evaluate": ["evaluate", "-w", work],
                "recognize": ["recognize", "-w", work], "potential": ["potential", "-w", work],
                "demo": ["demo", "-w", work]}
    with temporary_settings({PREFECT_API_URL: url}):
        for name, args in commands.items():
            code, output = _run(args)
            assert code == 2 and f"Prefect API {url} is unreachable" in output, (name, output)
    assert not (tmp_path / "w" / "manifest.parquet").exists()


def test_unreachable_mlflow_server_fails_every_tracking_command(tmp_path):
    uri = f"http://127.0.0.1:{_closed_port()}"
    work = str(tmp_path / "w")
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    commands = {"train": ["train", "-w", work], "evaluate": ["evaluate", "-w", work],
                "recognize": ["recognize", "-w", work], "potential": ["potential", "-w", work],
                "predict": ["predict", str(image), "--out", str(tmp_path / "out"), "-w", work],
                "compare": ["compare", "run-a", "run-b"]}
    for name, args in commands.items():
        code, output = _run(args, {"MLFLOW_TRACKING_URI": uri})
        assert code == 2 and f"MLflow tracking server {uri} is unreachable" in output, (name, output)
    assert not (tmp_path / "out").exists()


@pytest.mark.services
def test_unreachable_dask_scheduler_fails_ingest_and_extract(tmp_path):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    for args in (["ingest", str(tmp_path), "-w", str(tmp_path / "w")], ["extract", "-w", str(tmp_path / "w")]):
        code, output = _run([*args, "--dask-address", address])
        assert code == 2 and f"Dask scheduler {address} is unreachable" in output, output


def test_no_tracking_store_is_chosen_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, output = _run(["compare", "run-a", "run-b"])
    assert code == 2 and "--work-dir" in output and "MLFLOW_TRACKING_URI" in output
    code, output = _run(["potential", "a.png"])
    assert code == 2 and "--work-dir" in output  # required: no default of "."
    code, output = _run(["train", "-w", "s3://bucket/work"])
    assert code == 2 and "is not local" in output
    assert list(tmp_path.iterdir()) == []
