"""Take the README's Prefect UI and MLflow UI screenshots from a real pipeline run (headless Chromium).

Starts `prefect server start` and `mlflow server` on loopback, runs the pipeline twice on the demo's
own dataset with the demo preset, as `im2flow demo` does (λ = 1, the demo, then λ = 0, as a user
comparing settings would; about 15 minutes on 2 cores), then renders the UI pages with Chromium
and writes them to docs/images/. Needs Debian's chromium (`apt-get install chromium`) and the test
extras (for the server helpers).

    python docs/make_screenshots.py [--keep /tmp/im2flow-screens] [--shots-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from im2flow_storage.demo_dataset import write_demo_dataset  # noqa: E402
from tests.external import BIN, start_mlflow, start_prefect  # noqa: E402

SETTINGS = ["--preset", "demo", "--set", "train.seed=0"]
"""Exactly the demo's settings (`im2flow demo` = the pipeline with the demo preset and seed 0)."""


def shot(url: str, out: Path, width: int = 1500, height: int = 950, wait_ms: int = 20000) -> None:
    """Render `url` in headless Chromium to the PNG `out`."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=180)
    print("wrote", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default=None, help="folder for servers, dataset and work dir (default: a temp dir)")
    parser.add_argument("--shots-only", action="store_true", help="with --keep: restart the kept servers and only "
                        "take the screenshots again (no pipeline runs)")
    args = parser.parse_args()
    if args.shots_only and not args.keep:
        parser.error("--shots-only needs --keep FOLDER of an earlier run")
    with tempfile.TemporaryDirectory(prefix="im2flow-screens-") as temporary:
        tmp = Path(args.keep or temporary)
        tmp.mkdir(parents=True, exist_ok=True)
        render(tmp, run=not args.shots_only)


def render(tmp: Path, run: bool = True) -> None:
    """Servers, two demo-quality pipeline runs and the screenshots, with everything under `tmp`."""
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    dataset = tmp / "data"
    if not dataset.exists():
        write_demo_dataset(dataset, seed=0)  # the demo's dataset
    prefect, api, prefect_env = start_prefect(tmp)
    mlflow_server, mlflow_uri = start_mlflow(tmp)
    try:
        env = {**os.environ, **prefect_env, "MLFLOW_TRACKING_URI": mlflow_uri}
        for name, weight in (("lambda-1", "1.0"), ("lambda-0", "0.0")) if run else ():
            subprocess.run([str(BIN / "im2flow"), "pipeline", "--dataset", str(dataset), "--work-dir", str(tmp / "w"),
                            *SETTINGS, "--lambda", weight, "--run-name", name], env=env, check=True)
        ui = api.removesuffix("/api")
        runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 50}).json()
        pipeline_run = next(r for r in runs if r["name"].startswith("pipeline-"))
        shot(f"{ui}/runs", images / "prefect-runs.png")
        shot(f"{ui}/runs/flow-run/{pipeline_run['id']}", images / "prefect-pipeline-run.png")
        extract_run = next(r for r in runs if r["name"].startswith("extract-"))
        shot(f"{ui}/runs/flow-run/{extract_run['id']}?tab=Artifacts", images / "prefect-extract-artifacts.png")
        artifacts = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": ["evaluation-report"]}},
                                                               "sort": "CREATED_DESC", "limit": 10}).json()
        if artifacts:  # the oldest: the first run's, λ = 1, exactly the demo
            shot(f"{ui}/artifacts/artifact/{artifacts[-1]['id']}", images / "prefect-evaluation-report.png")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(mlflow_uri)
        experiment = client.get_experiment_by_name("im2flow-pipeline")
        parents = client.search_runs([experiment.experiment_id], "tags.mlflow.runName LIKE 'lambda-%'")
        ids = ",".join(f'"{r.info.run_id}"' for r in parents)
        shot(f"{mlflow_uri}/#/experiments/{experiment.experiment_id}/runs?viewMode=table&workflowType=machine_learning",
             images / "mlflow-runs.png")
        shot(f"{mlflow_uri}/#/compare-runs?runs=[{ids}]&experiments=[\"{experiment.experiment_id}\"]",
             images / "mlflow-compare.png", height=1400)
        print("im2flow compare", " ".join(r.info.run_id for r in parents))
    finally:
        mlflow_server.stop()
        prefect.stop()


if __name__ == "__main__":
    main()
