"""Take the README's Prefect UI and MLflow UI screenshots from a real pipeline run (headless Chromium).

Starts `prefect server start` and `mlflow server` on loopback, runs the pipeline twice on the demo's
own dataset with the demo preset, as `im2flow demo` does (λ = 1, the demo, then λ = 0, as a user
comparing settings would; about 15 minutes on 2 cores), and a third, short one (ingest and
extraction) into a second work dir, as another job on the same server would; then renders the UI
pages with Chromium and writes them to docs/images/: Prefect's runs, a pipeline run and its graph,
the extract subflow's artifacts, the Artifacts page (two work dirs' summaries apart), the
evaluation, recognition and motion-potential reports; MLflow's runs table, the parent run's
artifacts, the generator's sample grids and the compare view. Needs Debian's chromium (`apt-get
install chromium`) and the test extras (for the server helpers). Look at every image before
committing it.

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
        work = tmp / "w"
        for name, weight in (("lambda-1", "1.0"), ("lambda-0", "0.0")) if run else ():
            subprocess.run([str(BIN / "im2flow"), "pipeline", "--dataset", str(dataset), "--work-dir", str(work),
                            *SETTINGS, "--lambda", weight, "--run-name", name], env=env, check=True)
        if run:  # another job on the same server: its summaries must stay apart from the first work dir's
            subprocess.run([str(BIN / "im2flow"), "pipeline", "--dataset", str(dataset), "--work-dir",
                            str(tmp / "other" / "w"), *SETTINGS, "--stages", "ingest,extract"], env=env, check=True)
        take_shots(api, mlflow_uri, work, images)
    finally:
        mlflow_server.stop()
        prefect.stop()


def _artifact(api: str, kind: str, work: Path) -> dict | None:
    """The oldest version of `kind` written for `work` (the first run's: λ = 1, exactly the demo)."""
    from im2flow_tasks.run_labels import artifact_key

    found = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"key": {"any_": [artifact_key(kind, str(work))]}},
                                                       "sort": "CREATED_DESC", "limit": 10}).json()
    return found[-1] if found else None


def take_shots(api: str, mlflow_uri: str, work: Path, images: Path) -> None:
    """Every page the README shows, from the servers at `api` (Prefect) and `mlflow_uri`."""
    ui = api.removesuffix("/api")
    runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_ASC", "limit": 100}).json()
    pipeline_run = next(r for r in runs if r["name"] == "lambda-1")
    shot(f"{ui}/runs", images / "prefect-runs.png")
    shot(f"{ui}/runs/flow-run/{pipeline_run['id']}", images / "prefect-pipeline-run.png")
    shot(f"{ui}/artifacts", images / "prefect-artifacts.png")
    # Artifact pages, not a run's Artifacts tab: the UI shows its Logs tab until the run has loaded.
    for kind, name, height in (("extract-flow-previews", "prefect-extract-artifacts.png", 1300),
                               ("evaluation-report", "prefect-evaluation-report.png", 1500),
                               ("recognition-report", "prefect-recognition-report.png", 1500),
                               ("motion-potential", "prefect-motion-potential.png", 1700)):
        artifact = _artifact(api, kind, work)
        if artifact:
            shot(f"{ui}/artifacts/artifact/{artifact['id']}", images / name, height=height)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("im2flow-pipeline")
    parents = client.search_runs([experiment.experiment_id], "tags.mlflow.runName LIKE 'lambda-%'")
    ids = ",".join(f'"{r.info.run_id}"' for r in parents)
    ml = "workflowType=machine_learning"  # MLflow 3's UI opens on GenAI otherwise (a per-browser choice)
    base = f"{mlflow_uri}/#/experiments/{experiment.experiment_id}"
    shot(f"{base}/runs?viewMode=table&{ml}", images / "mlflow-runs.png")
    first = next(r for r in parents if r.info.run_name == "lambda-1")
    shot(f"{base}/runs/{first.info.run_id}/artifacts/summary.md?{ml}", images / "mlflow-parent-artifacts.png")
    generator = client.search_runs([experiment.experiment_id], f"tags.stage = 'generator' and "
                                   f"attributes.start_time >= {first.info.start_time}", order_by=["start_time ASC"])
    if generator:
        grids = sorted(a.path for a in client.list_artifacts(generator[0].info.run_id, "samples"))
        shot(f"{base}/runs/{generator[0].info.run_id}/artifacts/{grids[-1]}?{ml}", images / "mlflow-samples.png",
             height=1200)
    shot(f"{mlflow_uri}/#/compare-runs?runs=[{ids}]&experiments=[\"{experiment.experiment_id}\"]&{ml}",
         images / "mlflow-compare.png", height=1400)
    print("im2flow compare", " ".join(r.info.run_id for r in parents))


if __name__ == "__main__":
    main()
