"""Bad inputs, command by command, through the real `im2flow` CLI: one clear line, the right exit code, no traceback,
nothing half-written. Add a row for every bad input found."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from im2flow_core.unet import GeneratorConfig, UNetGenerator
from im2flow_storage.checkpoints import save_checkpoint
from tests.conftest import panning_frames, png_claiming, real_texture, write_video
from tests.external import cli

pytestmark = pytest.mark.services  # real CLI processes on the session's Prefect API


@dataclass(frozen=True)
class Row:
    """One bad input: the command line (paths relative to the case folder), its exit code, a phrase of its error
    line, and what must hold afterwards (nothing half-written, nothing created)."""

    name: str
    args: list[str]
    exit_code: int
    says: str
    after: Callable[[Path], bool] = field(default=lambda case: True)
    setup: list[list[str]] = field(default_factory=list)


def _make_inputs(case: Path) -> None:
    """Every input the rows use, in `case`."""
    (case / "raw" / "Run" / "v1").mkdir(parents=True)
    for i in (1, 2):
        cv2.imwrite(str(case / "raw" / "Run" / "v1" / f"img_{i:05d}.jpg"), real_texture(16, 16))
    for axis in ("x", "y"):
        cv2.imwrite(str(case / "raw" / "Run" / "v1" / f"flow_{axis}_00001.jpg"), np.zeros((16, 16), np.uint8))
    (case / "raw" / "x_train_split_1_rawframes.txt").write_text("Run/v1 2 0\n")
    shutil.copytree(case / "raw", case / "raw2")
    (case / "raw" / "classInd.txt").write_text("one Run\n")
    (case / "raw2" / "classInd.txt").write_bytes(b"1 Run\xff\n")
    for label in ("Run", "Walk"):
        (case / "ds" / label).mkdir(parents=True)
        write_video(case / "ds" / label / "a.avi", panning_frames(5, 32, 32), "MJPG")
    os.rename(case / "ds" / "Run" / "a.avi", case / "ds" / "Run" / os.fsdecode(b"c\xff.avi"))
    shutil.copy(case / "ds" / "Walk" / "a.avi", case / "ds" / "Run" / "b.avi")
    for label in ("Run", "Walk"):
        (case / "broken" / label).mkdir(parents=True)
        (case / "broken" / label / "x.avi").write_bytes(b"not a video" * 50)
    (case / "empty").mkdir()
    (case / "notamodel.pt").write_bytes(b"hello")
    (case / "afile").write_text("a file where a folder must be")
    generator = UNetGenerator(GeneratorConfig(depth=3, ngf=4, input_size=32))
    save_checkpoint(str(case / "g.pt"), {"kind": "im2flow-generator", "state_dict": generator.state_dict(),
                                         "generator_config": generator.config.model_dump(mode="json")})
    (case / "stills").mkdir()
    cv2.imwrite(str(case / "stills" / "a.png"), real_texture(20, 24))
    cv2.imwrite(str(case / "stills" / "a_flow.png"), real_texture(20, 24))
    png_claiming(case / "stills" / "bomb.png", 10_000, 6_000)
    (case / "someones").mkdir()
    (case / "someones" / "notes.txt").write_text("keep me")


ROWS = [
    Row("import-flow: a classInd.txt line that is not 'index name'", ["import-flow", "raw", "-w", "w"], 2,
        "classInd.txt:1: expected '<index> <class name>'", lambda c: not (c / "w" / "manifest.parquet").exists()),
    Row("import-flow: a list that is not UTF-8", ["import-flow", "raw2", "-w", "w"], 2, "not UTF-8 text",
        lambda c: not (c / "w" / "manifest.parquet").exists()),
    Row("ingest: a file name that is not UTF-8", ["ingest", "ds", "-w", "w", "--workers", "1"], 0,
        "not valid UTF-8: rename it", lambda c: (c / "w" / "manifest.parquet").is_file()),
    Row("ingest: an empty (or unmounted) dataset", ["ingest", "empty", "-w", "w", "--workers", "1"], 2,
        "no videos found", lambda c: not (c / "w" / "manifest.parquet").exists()),
    Row("extract: no video of the manifest is usable", ["extract", "-w", "w", "--workers", "1"], 2,
        "has no ok videos to extract", setup=[["ingest", "broken", "-w", "w", "--workers", "1"]]),
    Row("pipeline: --device cuda without a GPU", ["pipeline", "--dataset", "ds", "-w", "w", "--device", "cuda"], 2,
        "torch sees no CUDA GPU", lambda c: not (c / "w" / "manifest.parquet").exists()),
    Row("predict: --model is not a model", ["predict", "stills/a.png", "--model", "notamodel.pt", "--out", "o"], 2,
        "notamodel.pt: not a torch checkpoint", lambda c: not (c / "o").exists()),
    Row("predict: --out under a file", ["predict", "stills/a.png", "--model", "g.pt", "--out", "afile/o"], 2,
        "afile/o: Not a directory"),
    Row("predict: --out is the input folder", ["predict", "stills", "--model", "g.pt", "--out", "stills"], 2,
        "an input image", lambda c: sorted(p.name for p in (c / "stills").iterdir()) == ["a.png", "a_flow.png",
                                                                                           "bomb.png"]),
    Row("predict: an image claiming 60 MP", ["predict", "stills/bomb.png", "stills/a.png", "--model", "g.pt", "--out",
                                             "o"], 1, "10000×6000 = 60,000,000 pixels",
        lambda c: (c / "o" / "a_flow.png").is_file()),
    Row("export: --out holds someone's files", ["export", "--out", "someones", "--hallucinated", "--model", "g.pt",
                                                "--images", "stills/a.png"], 2, "not empty and holds no im2flow export",
        lambda c: sorted(p.name for p in (c / "someones").iterdir()) == ["notes.txt"]),
    Row("export: --out under a file", ["export", "--out", "afile/o", "--hallucinated", "--model", "g.pt", "--images",
                                       "stills/a.png"], 2, "Not a directory"),
    Row("compare: a mistyped work dir", ["compare", "a", "b", "-w", "typo"], 2, "no MLflow store at",
        lambda c: not (c / "typo").exists()),
]


def _run(row: Row, case: Path, env: dict[str, str | None], log: Path) -> tuple[int, str]:
    for setup in row.setup:
        assert cli(setup, env, log, cwd=case).returncode in (0, 1)
    result = cli(row.args, env, log, timeout_s=300, cwd=case)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, prefect_harness) -> dict[str, tuple[Path, int, str]]:
    """Every row run in its own copy of the inputs, three CLI processes at a time (their start-up dominates)."""
    from concurrent.futures import ThreadPoolExecutor

    from prefect.settings import PREFECT_API_URL

    base = tmp_path_factory.mktemp("bad-inputs")
    _make_inputs(base / "inputs")
    # mlflow.set_tracking_uri (any earlier in-process run) exports MLFLOW_TRACKING_URI: the rows resolve their own.
    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "COLUMNS": "200", "MLFLOW_TRACKING_URI": None}
    cases = {}
    for i, row in enumerate(ROWS):
        cases[row.name] = base / f"case{i}"
        shutil.copytree(base / "inputs", cases[row.name], symlinks=True)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {row.name: pool.submit(_run, row, cases[row.name], env, cases[row.name].with_suffix(".log"))
                   for row in ROWS}
        return {name: (cases[name], *future.result()) for name, future in futures.items()}


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_a_bad_input_gets_one_clear_line(row, outcomes):
    case, code, output = outcomes[row.name]
    assert code == row.exit_code, output
    assert row.says in output.replace("\n", " "), output
    assert "Traceback" not in output and "╭─" not in output, output  # no plain or rich traceback
    assert row.after(case), output
