"""A newcomer's first command: an empty home (no `~/.prefect`), no Prefect API configured, a busy machine.

On a fresh Prefect home the temporary API creates its database and runs every migration before it
answers (26-30 s on a busy 2-core machine, past Prefect's 20 s default): the first `im2flow demo`
died with "Timed out while attempting to connect to ephemeral Prefect API server". The test suite's
own fixtures prepare a Prefect home, so only a separate process with an empty `HOME` sees this.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import panning_frames, write_video
from tests.external import cli

pytestmark = pytest.mark.services  # starts a temporary Prefect API and a Dask cluster of its own


def test_the_first_command_on_a_fresh_home_beside_a_busy_process_works_and_says_it_is_preparing(tmp_path):
    for label in ("Run", "Walk"):
        for i in range(2):
            (tmp_path / "clips" / label).mkdir(parents=True, exist_ok=True)
            write_video(tmp_path / "clips" / label / f"v{i}.avi", panning_frames(5, 32, 32, dx=1 + i), "MJPG")
    home = tmp_path / "home"
    home.mkdir()
    # Nothing of this session's Prefect or MLflow settings: a new user's shell.
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(HOME=str(home), COLUMNS="200")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        result = cli(["ingest", str(tmp_path / "clips"), "--work-dir", str(tmp_path / "w"), "--workers", "1"], env,
                     tmp_path / "ingest.log", timeout_s=600, cwd=tmp_path)
    finally:
        burner.kill()
        burner.wait()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "first run: preparing Prefect's local database" in output, output
    assert "Traceback" not in output and "╭─" not in output and "Timed out" not in output, output
    assert "View at" not in output  # the temporary API serves no UI: no links to it
    assert (home / ".prefect" / "prefect.db").is_file()  # the database it prepared, in the user's home
    assert (tmp_path / "w" / "manifest.parquet").is_file()
