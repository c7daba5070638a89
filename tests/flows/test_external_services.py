"""Scale-out on existing engines, for real: an external Dask scheduler and workers, stores on an S3 API
server (moto), an MLflow tracking server and a Prefect server, each started on loopback by the test; and
the faults: unreachable services, a killed Dask worker, a killed pipeline.

Marked `external`: run only these with `pytest -m external`.
"""

import os
import re
import subprocess
import threading

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from im2flow_storage.demo_dataset import write_demo_dataset
from tests.external import BIN, Service, cli, free_port, start_dask, start_mlflow, start_prefect, start_s3, wait_for
from tests.flows.test_pipeline_flow import TINY

pytestmark = [pytest.mark.external, pytest.mark.services]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("external") / "data"
    write_demo_dataset(root, groups_per_class=3, test_groups=1, size=48, n_frames=5)
    return root


def _config_file(path, **sections):
    data = {k: dict(v) for k, v in TINY.items() if k != "pipeline"}
    for name, fields in sections.items():
        data.setdefault(name, {}).update(fields)
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_pipeline_on_external_dask_s3_mlflow_and_prefect_servers(tmp_path, dataset):
    s3, s3_env = start_s3(tmp_path, "im2flow-test")
    services = [s3]
    try:
        mlflow_server, mlflow_uri = start_mlflow(tmp_path)
        services.append(mlflow_server)
        prefect_server, api, prefect_env = start_prefect(tmp_path)
        services.append(prefect_server)
        scheduler, workers, address = start_dask(tmp_path, 2, s3_env)
        services += [scheduler, *workers]
        env = {**s3_env, **prefect_env, "MLFLOW_TRACKING_URI": mlflow_uri}
        work = "s3://im2flow-test/runs/w"
        result = cli(["pipeline", "--dataset", str(dataset), "--work-dir", work, "--preset", "demo",
                      "--config", _config_file(tmp_path / "p.yaml"), "--dask-address", address, "--run-name", "ext"],
                     env, tmp_path / "pipeline.log")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        # One progress bar per stage on the console, not the task runs' lines
        console = result.stdout + result.stderr
        for bar in ("probing videos", "extracting", "training φ", "training G", "fitting the baselines",
                    "evaluating on the test split", "training the motion stream, seed", "scoring motion potential"):
            assert bar in console, bar
        assert "Task run" not in console and "View run" not in console  # nor MLflow's line per run

        # Stores on S3
        os.environ.update(s3_env)
        from im2flow_storage import open_flow_store
        import fsspec

        fs = fsspec.filesystem("s3")
        assert fs.exists("im2flow-test/runs/w/manifest.parquet")
        store = open_flow_store(work)
        assert len(store.video_ids) == sum(1 for p in dataset.rglob("*") if p.suffix in (".mp4", ".avi"))
        assert fs.ls("im2flow-test/runs/w/train") and fs.exists("im2flow-test/runs/w/pipeline-cache")

        # MLflow server: the parent run, its nested stage runs, the registered model
        client = MlflowClient(mlflow_uri)
        experiment = client.get_experiment_by_name("im2flow-pipeline")
        for made in client.search_experiments():  # every experiment the run made opens on its runs in the UI
            if made.name.startswith("im2flow-"):
                assert made.tags.get("mlflow.experimentKind") == "custom_model_development", made.name
        parents = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'ext'")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        parent = parents[0]
        assert {"epe", "acc_fused", "extract_flows_per_s"} <= set(parent.data.metrics)
        children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == 6
        assert client.get_registered_model("im2flow-generator").latest_versions

        # Prefect server: the flow run, its stage subflows, the artifacts
        runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}).json()
        names = {r["name"]: r["state_type"] for r in runs}
        assert names.get("pipeline-data") == "COMPLETED", names
        flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
        assert {"pipeline", "ingest", "extract", "train", "evaluate", "recognize", "potential"} <= set(flows.values())
        keys = {a["key"] for a in httpx.post(f"{api}/artifacts/filter", json={"limit": 200}).json()}
        assert {"pipeline-summary", "extract-summary", "evaluation-table", "recognition-accuracy",
                "motion-potential", "ingest-summary", "train-generator-progress", "evaluate-progress",
                "recognize-motion-progress", "potential-progress"} <= keys
        task_names = {t["name"] for t in httpx.post(f"{api}/task_runs/filter", json={"limit": 200}).json()}
        assert any(n.startswith("extract-Bounce/") for n in task_names)  # task runs named after their videos

        # The extraction ran on the external workers
        from distributed import Client

        with Client(address, timeout=10) as dask_client:
            prefixes = dask_client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert any("extract" in p for p in prefixes), prefixes
    finally:
        for service in reversed(services):
            service.stop()


def test_serve_schedules_the_pipeline_on_a_prefect_server(tmp_path, dataset):
    server, api, prefect_env = start_prefect(tmp_path)
    serving = None
    try:
        work = tmp_path / "w"
        serving = Service([str(BIN / "im2flow"), "serve", "--cron", "0 3 * * *", "--dataset", str(dataset),
                           "--work-dir", str(work), "--preset", "demo", "--config", _config_file(tmp_path / "p.yaml"),
                           "--set", "pipeline.stages=[ingest,extract]", "--name", "nightly"],
                          tmp_path / "serve.log", env={**os.environ, **prefect_env})
        deployment_url = f"{api}/deployments/name/pipeline/nightly"
        wait_for(lambda: httpx.get(deployment_url).status_code == 200, "the served deployment", 120,
                 serving.process, serving.log)
        deployment = httpx.get(deployment_url).json()
        assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]
        assert deployment["parameters"]["preset"] == "demo"
        # A run of the deployment (as the schedule would start it), executed by the serving process
        run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={}).json()
        wait_for(lambda: httpx.get(f"{api}/flow_runs/{run['id']}").json()["state_type"] in
                 ("COMPLETED", "FAILED", "CRASHED"), "the deployment's flow run", 240, serving.process, serving.log)
        state = httpx.get(f"{api}/flow_runs/{run['id']}").json()["state_type"]
        assert state == "COMPLETED", serving.log.read_text()[-4000:]
        assert (work / "manifest.parquet").exists() and list((work / "flows").glob("*.zarr"))
        assert not (work / "train").exists()  # only the configured stages ran
    finally:
        if serving is not None:
            serving.stop()
        server.stop()


def test_unreachable_services_fail_fast_naming_the_uri(tmp_path, dataset):
    port = free_port()
    work = tmp_path / "w"
    args = ["pipeline", "--dataset", str(dataset), "--work-dir", str(work)]
    for env, expected in (({"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"},
                           f"MLflow tracking server http://127.0.0.1:{port} is unreachable"),
                          ({"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"},
                           f"Prefect API http://127.0.0.1:{port}/api is unreachable")):
        result = cli(args, env, tmp_path / "cli.log", timeout_s=90)  # a hang fails the test, no timing asserted
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 2 and expected in output, output[-2000:]
    result = cli([*args, "--dask-address", f"tcp://127.0.0.1:{port}"], {}, tmp_path / "cli.log", timeout_s=120)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and f"Dask scheduler tcp://127.0.0.1:{port} is unreachable" in output, output[-2000:]
    assert not (work / "manifest.parquet").exists()  # nothing started


def test_killed_dask_worker_during_extraction_loses_nothing(tmp_path, prefect_harness):
    from flows.compute import task_runner
    from flows.extract import extract_flow
    from flows.ingest import ingest_flow
    from im2flow_storage import open_flow_store
    from tasks.config import ExtractConfig, IngestConfig

    root, work = tmp_path / "data", str(tmp_path / "w")
    write_demo_dataset(root, groups_per_class=2, test_groups=1, size=96, n_frames=16)
    scheduler, workers, address = start_dask(tmp_path, 2)
    try:
        ingest_flow.with_options(task_runner=task_runner(address))(str(root), work, IngestConfig(dask_address=address))
        outcome: dict = {}
        config = ExtractConfig(short_side=96, dask_address=address)
        thread = threading.Thread(target=lambda: outcome.update(
            extract_flow.with_options(task_runner=task_runner(address))(work, config)))
        thread.start()
        wait_for(lambda: len(open_flow_store(work).video_ids) >= 1, "the first extracted video", 120)
        workers[0].kill()  # a worker dies mid-run, with a video in progress
        thread.join(300)
        assert not thread.is_alive()
        assert outcome["failed"] == 0 and outcome["extracted"] == 16, outcome
        store = open_flow_store(work)
        assert len(store.video_ids) == 16
        assert all(store.record(v).n_flows == 15 for v in store.video_ids)
    finally:
        for service in [*workers, scheduler]:
            service.stop()


def test_killed_pipeline_resumes_without_redoing_finished_work(tmp_path, dataset):
    work = tmp_path / "w"
    config = _config_file(tmp_path / "p.yaml", train={"epochs": 40, "patience": 40})
    args = [str(BIN / "im2flow"), "pipeline", "--dataset", str(dataset), "--work-dir", str(work), "--preset", "demo",
            "--config", config]
    first = Service(args, tmp_path / "first.log")
    try:
        wait_for(lambda: bool(list(work.glob("train/*/generator.pt"))), "a generator checkpoint", 300,
                 first.process, first.log)
    finally:
        first.kill()  # SIGKILL mid-training: no clean-up runs
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    # The console shows progress and summaries; the flow runs' lines are in the run's log file.
    log_files = sorted(work.glob("logs/im2flow-pipeline-*.log"), key=lambda p: p.stat().st_mtime)
    log = second.stdout + second.stderr + (log_files[-1].read_text() if log_files else "")
    assert second.returncode == 0, log[-4000:]
    assert len(log_files) == 2 and str(log_files[-1]) in second.stdout + second.stderr  # one log per run, named
    assert "stage ingest reused (cached)" in log and "stage extract reused (cached)" in log
    resumed = re.search(r"G resumes after epoch (\d+)", log)
    assert resumed and 1 <= int(resumed.group(1)) < 40, log[-4000:]  # continued, not restarted or finished
    assert "stage train ran" in log
