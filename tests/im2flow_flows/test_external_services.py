"""Scale-out on existing engines, for real: an external Dask scheduler and workers, stores on an S3 API
server (moto), an MLflow tracking server and a Prefect server, each started on loopback by the test; and
the faults: unreachable services, a killed Dask worker, a killed pipeline.

Marked `external`: run only these with `pytest -m external`.
"""

import os
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from im2flow_storage.demo_dataset import write_demo_dataset
from tests.external import BIN, Service, cli, free_port, start_dask, start_mlflow, start_prefect, start_s3, wait_for
from tests.im2flow_flows.test_pipeline_flow import TINY

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


@pytest.fixture(scope="module")
def served(tmp_path_factory, dataset):
    """The demo preset (tiny) as a user scaling out runs it: an external Dask cluster, stores on S3, an MLflow
    tracking server and a Prefect server; then a second pipeline (ingest, extract) into another, local work
    dir on the same servers, as a second job would."""
    tmp = tmp_path_factory.mktemp("served")
    s3, s3_env = start_s3(tmp, "im2flow-test")
    services = [s3]
    try:
        mlflow_server, mlflow_uri = start_mlflow(tmp)
        services.append(mlflow_server)
        prefect_server, api, prefect_env = start_prefect(tmp)
        services.append(prefect_server)
        scheduler, workers, address = start_dask(tmp, 2, s3_env)
        services += [scheduler, *workers]
        env = {**s3_env, **prefect_env, "MLFLOW_TRACKING_URI": mlflow_uri}
        work = "s3://im2flow-test/runs/w"
        result = cli(["pipeline", "--dataset", str(dataset), "--work-dir", work, "--preset", "demo",
                      "--config", _config_file(tmp / "p.yaml"), "--dask-address", address, "--run-name", "ext"],
                     env, tmp / "pipeline.log")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        local_work = tmp / "second" / "w"
        second = cli(["pipeline", "--dataset", str(dataset), "--work-dir", str(local_work), "--preset", "demo",
                      "--config", _config_file(tmp / "p2.yaml"), "--stages", "ingest,extract"], env,
                     tmp / "second.log")
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
        from distributed import Client

        with Client(address, timeout=10) as dask_client:
            prefixes = dask_client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        yield {"api": api, "mlflow_uri": mlflow_uri, "s3_env": s3_env, "work": work, "local_work": str(local_work),
               "console": result.stdout + result.stderr, "dask_prefixes": prefixes, "tmp": tmp}
    finally:
        for service in reversed(services):
            service.stop()


def _flow_runs(api):
    return httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}).json()


def _parent_run(served):
    client = MlflowClient(served["mlflow_uri"])
    experiment = client.get_experiment_by_name("im2flow-pipeline")
    parents = client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'ext'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    return client, experiment, parents[0]


def test_pipeline_on_external_dask_s3_mlflow_and_prefect_servers(served, dataset):
    # One progress bar per stage on the console, not the task runs' lines
    console = served["console"]
    for bar in ("probing videos", "extracting", "training φ", "training G", "fitting the baselines",
                "evaluating on the test split", "training the motion stream, seed", "scoring motion potential"):
        assert bar in console, bar
    assert "Task run" not in console and "View run" not in console  # nor MLflow's line per run

    # Stores on S3
    os.environ.update(served["s3_env"])
    import fsspec

    from im2flow_storage import open_flow_store

    fs = fsspec.filesystem("s3")
    assert fs.exists("im2flow-test/runs/w/manifest.parquet")
    store = open_flow_store(served["work"])
    assert len(store.video_ids) == sum(1 for p in dataset.rglob("*") if p.suffix in (".mp4", ".avi"))
    assert fs.ls("im2flow-test/runs/w/train") and fs.exists("im2flow-test/runs/w/pipeline-cache")

    # MLflow server: the parent run, its nested stage runs, the registered model
    client, experiment, parent = _parent_run(served)
    assert {"epe", "acc_fused", "extract_flows_per_s"} <= set(parent.data.metrics)
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 6
    assert client.get_registered_model("im2flow-generator").latest_versions

    # Prefect server: the flow run, its stage subflows, the artifacts
    names = {r["name"]: r["state_type"] for r in _flow_runs(served["api"])}
    assert names.get("ext") == "COMPLETED", names
    flows = {f["id"]: f["name"] for f in httpx.post(f"{served['api']}/flows/filter", json={}).json()}
    assert {"pipeline", "ingest", "extract", "train", "evaluate", "recognize", "potential"} <= set(flows.values())
    task_names = {t["name"] for t in httpx.post(f"{served['api']}/task_runs/filter", json={"limit": 200}).json()}
    assert any(n.startswith("extract-Bounce/") for n in task_names)  # task runs named after their videos

    # The extraction ran on the external workers
    assert any("extract" in p for p in served["dask_prefixes"]), served["dask_prefixes"]


def test_every_experiment_opens_on_its_runs_in_mlflows_ui(served):
    """Issue 27, item 1: MLflow's kind tag on every experiment; the printed link asks for the runs view."""
    client = MlflowClient(served["mlflow_uri"])
    made = [e for e in client.search_experiments() if e.name.startswith("im2flow-")]
    assert made and all(e.tags.get("mlflow.experimentKind") == "custom_model_development" for e in made)
    assert "workflowType=machine_learning" in " ".join(served["console"].split())


def test_artifact_keys_tell_work_dirs_apart_and_say_their_run(served):
    """Item 2: two work dirs on one server keep their summaries apart; each version names its run and work dir."""
    from im2flow_tasks.run_labels import artifact_key

    api = served["api"]
    artifacts = httpx.post(f"{api}/artifacts/filter", json={"limit": 200}).json()
    by_key: dict[str, list] = {}
    for artifact in artifacts:
        by_key.setdefault(artifact["key"], []).append(artifact)
    runs = {r["id"]: r["name"] for r in _flow_runs(api)}
    for work in (served["work"], served["local_work"]):
        for kind in ("ingest-summary", "extract-summary", "pipeline-summary", "pipeline-stages"):
            versions = by_key.get(artifact_key(kind, work), [])
            assert len(versions) == 1, (kind, work, sorted(by_key))
            assert runs[versions[0]["flow_run_id"]] in versions[0]["description"]
            assert work.rstrip("/") in versions[0]["description"]
    assert artifact_key("extract-summary", served["work"]) != artifact_key("extract-summary", served["local_work"])
    for kind in ("evaluation-table", "evaluation-report", "recognition-accuracy", "recognition-report",
                 "motion-potential", "train-summary"):
        assert artifact_key(kind, served["work"]) in by_key, kind
    # Progress bars belong to their run only: no key, so nothing on the Artifacts page mixes runs
    progress = [a for a in artifacts if a["type"] == "progress"]
    assert len(progress) >= 10 and all(a["key"] is None for a in progress)


def test_no_random_run_names(served):
    """Item 3: every flow and task run is named after what it works on; nothing random, no absolute paths."""
    api = served["api"]
    flow_runs = _flow_runs(api)
    names = sorted(r["name"] for r in flow_runs)
    assert {"ext", "extract-tvl1", "evaluate-test", "recognize-test", "potential-test", "train-32px"} <= set(names)
    dataset_runs = [n for n in names if n.startswith(("ingest-", "pipeline-"))]
    assert dataset_runs and all(n.endswith("/data") and "/tmp" not in n and n.count("/") == 1 for n in dataset_runs)
    flows = {f["id"]: f["name"] for f in httpx.post(f"{api}/flows/filter", json={}).json()}
    for run in flow_runs:  # Prefect's random names are adjective-animal pairs, never prefixed by the flow's name
        assert run["name"] == "ext" or run["name"].startswith(flows[run["flow_id"]].split("-")[0] + "-"), run["name"]
    subflow_trackers = {r["parent_task_run_id"] for r in flow_runs if r["parent_task_run_id"]}
    task_runs = httpx.post(f"{api}/task_runs/filter", json={"limit": 200}).json()
    ours = [t["name"] for t in task_runs if t["id"] not in subflow_trackers]
    assert ours and not [n for n in ours if re.search(r"-[0-9a-f]{3}$", n) and not n.startswith(("extract-", "probe-"))]
    assert {"train-phi", "train-generator", "write-evaluation-report", "write-recognition-report",
            "write-potential-report", "train-appearance-seed0"} <= set(ours)


def test_stages_nest_once_in_order_and_the_top_run_holds_the_headline(served):
    """Item 4: the pipeline run holds its stages' flow runs directly, linked in their order, and the summary."""
    api = served["api"]
    flow_runs = _flow_runs(api)
    top = next(r for r in flow_runs if r["name"] == "ext")
    trackers = {t["id"]: t for t in httpx.post(f"{api}/task_runs/filter", json={
        "task_runs": {"id": {"any_": [r["parent_task_run_id"] for r in flow_runs if r["parent_task_run_id"]]}},
        "limit": 200}).json()}
    stages = [r for r in flow_runs if r["parent_task_run_id"] in trackers
              and trackers[r["parent_task_run_id"]]["flow_run_id"] == top["id"]]
    assert sorted(r["name"].split("-")[0] for r in stages) == sorted(
        ["ingest", "extract", "train", "evaluate", "recognize", "potential"])
    graph = httpx.get(f"{api}/flow_runs/{top['id']}/graph-v2").json()
    nodes = {node_id: node for node_id, node in graph["nodes"]}
    order = sorted((n for n in nodes.values() if n["kind"] == "flow-run"), key=lambda n: n["start_time"])
    assert [n["label"].split(" / ")[0] for n in order] == ["ingest", "extract", "train", "evaluate", "recognize",
                                                           "potential"]
    for i, (before, after) in enumerate(zip(order, order[1:])):
        parents = {p["id"] for p in after["parents"]}  # an edge from the previous stage (and maybe from train,
        assert before["id"] in parents, after["label"]  # whose model the later stages read), none from later
        assert parents <= {n["id"] for n in order[: i + 1]}, after["label"]
    assert all(p["id"] in nodes for n in nodes.values() for p in n["parents"])  # every edge drawable
    summaries = httpx.post(f"{api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [top["id"]]}},
                                                           "limit": 50}).json()
    headline = next(a for a in summaries if a["key"] and a["key"].startswith("pipeline-summary-"))
    assert "| Im2Flow |" in headline["data"] and "| fused |" in headline["data"]


def test_images_are_legible_and_full_size(served, tmp_path):
    """Item 5: tiles ≥ 128 px and captions that fit; the full-size confusion matrix is larger than embedded."""
    import cv2

    client, _, parent = _parent_run(served)
    local = client.download_artifacts(parent.info.run_id, "", str(tmp_path))
    examples = cv2.imread(f"{local}/evaluate/examples.png")
    assert examples.shape[1] >= 4 * 128 and examples.shape[0] >= 2 * 128
    gallery = cv2.imread(f"{local}/potential/gallery.png")
    assert gallery.shape[1] >= 2 * 128 and gallery.shape[1] > gallery.shape[0] / 4  # a grid, not a strip
    confusions = sorted(Path(local, "recognize").glob("confusion_*.png"))
    assert confusions and all(cv2.imread(str(c)).shape[1] >= 420 for c in confusions)


def test_mlflow_stage_runs_span_their_work(served):
    """Item 6: the nested runs recorded after a stage (ingest, extract) start when the stage started."""
    client, experiment, parent = _parent_run(served)
    children = {c.data.tags["mlflow.runName"]: c for c in client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")}
    for stage, run_name in (("ingest", "ingest"), ("extract", "extract"), ("evaluate", "evaluate-test"),
                            ("potential", "potential")):
        run = children[run_name].info
        seconds = parent.data.metrics[f"seconds_{stage}"]
        # Most of the stage (its flow run's start-up is not in its MLflow run); before, 50 ms of 12.9 s
        assert (run.end_time - run.start_time) / 1000 >= 0.5 * seconds - 0.5, (stage, run, seconds)


def test_parent_run_holds_the_headline_reports_and_the_registered_model(served):
    """Item 7: the parent run's artifacts and its link to the registered version."""
    client, _, parent = _parent_run(served)
    paths = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.md", "evaluate", "recognize", "potential"} <= paths
    assert {"evaluate/table.md", "evaluate/examples.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id, "evaluate")}
    version = client.get_model_version_by_alias("im2flow-generator", "champion")
    assert parent.data.tags["registered_model"] == "im2flow-generator"
    assert parent.data.tags["registered_model_version"] == str(version.version)
    summary = client.download_artifacts(parent.info.run_id, "summary.md")
    assert f"#/models/im2flow-generator/versions/{version.version}" in Path(summary).read_text()


def _most_significant_digits(text: str) -> int:
    """The most significant digits of any decimal number in `text` (`0.00298787` has 6)."""
    numbers = re.findall(r"\d+\.\d+", text)
    return max((len(n.replace(".", "").lstrip("0")) for n in numbers), default=0)


def test_metrics_are_logged_once_readably_and_only_for_what_ran(served):
    """Item 8: one name per metric, no unused algorithm's params, no all-zero curves, no 17-digit artifacts."""
    client, experiment, parent = _parent_run(served)
    metrics = set(parent.data.metrics)
    assert "potential_spearman_im2flow" in metrics and "potential_spearman" not in metrics
    assert not [p for p in parent.data.params if p.startswith(("extract.dis.", "extract.farneback."))]
    assert any(p.startswith("extract.tvl1.") for p in parent.data.params)
    generator = client.search_runs([experiment.experiment_id], "tags.stage = 'generator'")[0]
    assert "lr" not in generator.data.metrics and "lr_factor" in generator.data.metrics
    assert not [m for m in generator.data.metrics if "loss_potential" in m]
    evaluate = next(c for c in client.search_runs([experiment.experiment_id], "tags.mlflow.runName = 'evaluate-test'"))
    assert not [m for m in evaluate.data.metrics if m.startswith("potential")]
    table = Path(client.download_artifacts(evaluate.info.run_id, "table.csv")).read_text()
    assert _most_significant_digits(table) <= 6  # not seventeen
    artifacts = httpx.post(f"{served['api']}/artifacts/filter", json={"limit": 200}).json()
    train = next(a for a in artifacts if a["key"] and a["key"].startswith("train-summary-"))
    assert "parent_run_id" not in str(train["data"]) and "stopped_early" in str(train["data"])
    assert _most_significant_digits(str(train["data"])) <= 6


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
    from im2flow_flows.extract import extract_flow
    from im2flow_flows.ingest import ingest_flow
    from im2flow_services.dask_cluster import task_runner
    from im2flow_storage import open_flow_store
    from im2flow_tasks.config import ExtractConfig, IngestConfig

    root, work = tmp_path / "data", str(tmp_path / "w")
    write_demo_dataset(root, groups_per_class=2, test_groups=1, size=96, n_frames=16)
    scheduler, workers, address = start_dask(tmp_path, 2)
    try:
        ingest_flow.with_options(task_runner=task_runner(address))(str(root), work, IngestConfig(dask_address=address))
        outcome: dict = {}
        config = ExtractConfig(short_side=96, dask_address=address)
        thread = threading.Thread(target=lambda: outcome.update(
            extract_flow.with_options(task_runner=task_runner(address))(work, config).model_dump()))
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
