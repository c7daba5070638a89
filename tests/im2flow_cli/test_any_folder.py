"""The reading commands with the default registered model, run from a folder that is not the work dir.

MLflow resolves `models:/NAME@ALIAS` through its process-wide registry URI, which falls back to
`./mlflow.db` of the current folder: from anywhere but the work dir the default model was "not a
weights-only generator" and an empty `mlflow.db` appeared in the current folder. Each command runs
as a real `im2flow` process in its own empty folder, and that folder must stay empty.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

from im2flow_flows.train import train_flow
from im2flow_tasks.config import TrainConfig
from tests.conftest import make_tiny_store, real_texture
from tests.external import cli

pytestmark = pytest.mark.services

RECOGNIZE_YAML = """recognize:
  seeds: [0]
  appearance: {epochs: 1, base_width: 8, blocks: [1, 1, 1, 1], stem: small}
  motion: {epochs: 1, base_width: 8, blocks: [1, 1, 1, 1], stem: small}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory, prefect_harness) -> dict[str, tuple[Path, int, str]]:
    """A work dir with a registered G; each command run from its own empty folder (three at a time)."""
    from prefect.settings import PREFECT_API_URL

    base = tmp_path_factory.mktemp("any-folder")
    work = base / "w"
    make_tiny_store(work)
    # The work dir's own store, where the commands look for the default model.
    train_flow(str(work), TrainConfig(
        generator={"depth": 3, "ngf": 8, "input_size": 32}, load_size=32, epochs=1, batch_size=8, num_workers=0,
        phi={"base_width": 4, "blocks": (1, 1, 1, 1), "stem": "small", "epochs": 1, "batch_size": 8},
        val_fraction=0.34, device="cpu", mlflow_tracking_uri=f"sqlite:///{work / 'mlflow.db'}"))
    inputs = base / "inputs"
    inputs.mkdir()
    cv2.imwrite(str(inputs / "still.png"), real_texture(40, 48))
    (inputs / "recognize.yaml").write_text(RECOGNIZE_YAML)
    commands = {
        "predict": ["predict", str(inputs / "still.png"), "--out", str(base / "predicted"), "--work-dir", str(work)],
        "evaluate": ["evaluate", "--work-dir", str(work)],
        "potential": ["potential", "--work-dir", str(work)],
        "recognize": ["recognize", "--work-dir", str(work), "--config", str(inputs / "recognize.yaml")],
        "export": ["export", "--hallucinated", "--work-dir", str(work), "--out", str(base / "exported")],
    }
    # No MLFLOW_TRACKING_URI (an earlier in-process run may have exported one): the work dir alone says where.
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200", "MLFLOW_TRACKING_URI": None,
           "MLFLOW_REGISTRY_URI": None}

    def run(name: str) -> tuple[Path, int, str]:
        folder = base / f"cwd-{name}"
        folder.mkdir()
        result = cli(commands[name], env, base / f"{name}.log", timeout_s=400, cwd=folder)
        return folder, result.returncode, result.stdout + result.stderr

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(commands, pool.map(run, commands)))


@pytest.mark.parametrize("command", ["predict", "evaluate", "potential", "recognize", "export"])
def test_default_model_from_any_folder_writes_nothing_there(command, runs):
    folder, code, output = runs[command]
    assert code == 0, output
    assert "Traceback" not in output, output
    assert sorted(p.name for p in folder.iterdir()) == [], output  # no mlflow.db, mlruns, logs or outputs here
