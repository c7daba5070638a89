"""Take the README's Prefect UI and MLflow UI screenshots from a real pipeline run (headless Chromium).

Starts `prefect server start` and `mlflow server` on loopback, runs the pipeline twice on a small
demo dataset (λ = 1 and λ = 0, as a user comparing settings would), then renders the UI pages
with Chromium and writes them to docs/images/. Needs Debian's chromium (`apt-get install chromium`).

    python docs/make_screenshots.py [--keep /tmp/im2flow-screens]
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

SETTINGS = ["--preset", "demo", "--set", "train.epochs=3", "--set", "train.phi.epochs=2",
            "--set", "recognize.seeds=[0]", "--set", "recognize.appearance.epochs=2",
            "--set", "recognize.motion.epochs=2"]


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
    args = parser.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="im2flow-screens-"))
    tmp.mkdir(parents=True, exist_ok=True)
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    dataset = tmp / "data"
    if not dataset.exists():
        write_demo_dataset(dataset, groups_per_class=6, test_groups=2)
    prefect, api, prefect_env = start_prefect(tmp)
    mlflow_server, mlflow_uri = start_mlflow(tmp)
    try:
        env = {**os.environ, **prefect_env, "MLFLOW_TRACKING_URI": mlflow_uri}
        for name, weight in (("lambda-1", "1.0"), ("lambda-0", "0.0")):
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
                                                               "limit": 1}).json()
        if artifacts:
            shot(f"{ui}/artifacts/artifact/{artifacts[0]['id']}", images / "prefect-evaluation-report.png")
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
