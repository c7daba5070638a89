"""Scale-out on existing engines, for real: an external Dask scheduler and workers, stores on an S3 API
server (moto), an MLflow tracking server and a Prefect server, each started on loopback by the test; and
the faults: unreachable services, a killed Dask worker, a killed pipeline.

Marked `external`: run only these with `pytest -m external`.
"""

import json
import os
import signal
import subprocess
import threading
import time

import httpx
import pytest
import yaml
from mlflow.tracking import MlflowClient

from im2flow_storage.demo_dataset import write_demo_dataset
from tests.external import cli, start_dask, start_mlflow, start_prefect, start_s3, wait_for, BIN
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
                "motion-potential", "ingest-summary"} <= keys
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
