"""Real Prefect runs (temporary API via the test harness) on a real Dask LocalCluster."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from im2flow_cli.app import app
from im2flow_flows.extract import extract_flow
from im2flow_flows.ingest import ingest_flow
from im2flow_services.dask_cluster import task_runner
from im2flow_storage import open_flow_store
from im2flow_storage.manifest import read_manifest
from im2flow_tasks.config import ExtractConfig, IngestConfig
from im2flow_tasks.run_labels import artifact_key
from tests.conftest import panning_frames, write_h264, write_video

pytestmark = pytest.mark.services


def _dataset(root):
    for label, which in (("Pan", 0), ("Flower", 1)):
        (root / label).mkdir(parents=True)
        for k in range(2):
            write_video(root / label / f"{label}_{k}.avi", panning_frames(6, 40, 56, dx=1 + k, which=which), "MJPG")
    write_h264(root / "Pan" / "Pan_h264.mp4", panning_frames(5, 41, 57))
    (root / "Pan" / "empty.mp4").write_bytes(b"")
    (root / "Flower" / "noise.avi").write_bytes(np.random.default_rng(0).bytes(20_000))
    write_video(root / "Flower" / "single.avi", panning_frames(1, 40, 56), "MJPG")
    good = root / "Pan" / "Pan_0.avi"
    (root / "Pan" / "truncated.mp4").write_bytes(write_video(root / "t.mp4", panning_frames(6),
                                                             "mp4v").read_bytes()[:900])
    (root / "t.mp4").unlink()
    return good


def test_ingest_extract_resume_and_new_videos(tmp_path, prefect_harness, dask_address):
    root, work = tmp_path / "data", str(tmp_path / "work")
    _dataset(root)
    runner = task_runner(dask_address)
    summary = ingest_flow.with_options(task_runner=runner)(str(root), work, IngestConfig())
    rows = {r["video_id"]: r for r in read_manifest(work)}
    assert summary.status == {"ok": 5, "empty": 1, "corrupt": 2, "too_short": 1}
    assert rows["Pan/empty"]["status"] == "empty" and rows["Flower/single"]["status"] == "too_short"
    assert rows["Pan/truncated"]["status"] == "corrupt" and rows["Pan/truncated"]["error"]
    assert rows["Pan/Pan_h264"]["n_frames"] == 5

    config = ExtractConfig(short_side=32, shard_frames=2)
    first = extract_flow.with_options(task_runner=runner)(work, config)
    assert (first.extracted, first.failed, first.skipped_complete) == (5, 0, 0)
    store = open_flow_store(work)
    assert len(store.video_ids) == 5
    rec = store.record("Pan/Pan_1")
    assert (rec.n_frames, rec.n_flows, min(rec.height, rec.width)) == (6, 5, 32)
    _, flow = store.read_pair("Pan/Pan_1", 0)
    assert np.median(flow[..., 0]) < -0.8  # 2 px/frame to the left at 56 px, resized to 32 px wide-ish

    # Simulated crash mid-video: its group is restarted (not complete) with some data in it.
    w = store.__class__(store.url, __import__("zarr").open_group(store.url, mode="r+")).begin_video(
        "Pan/Pan_0", label="Pan", split="train", source_size=1, source_mtime=0.0, shard_frames=2)
    w.append(np.zeros((32, 44, 3), np.uint8), np.zeros((32, 44, 3), np.float32))
    w.append(np.zeros((32, 44, 3), np.uint8), np.zeros((32, 44, 3), np.float32))
    assert not open_flow_store(work).is_complete("Pan/Pan_0")

    # A new video appears in the dataset.
    write_video(root / "Flower" / "Flower_new.avi", panning_frames(4, 40, 56, which=1), "MJPG")
    again = ingest_flow.with_options(task_runner=runner)(str(root), work, IngestConfig())
    assert again.probed == 1  # only the new file is probed again
    second = extract_flow.with_options(task_runner=runner)(work, config)
    assert (second.extracted, second.skipped_complete) == (2, 4)  # the partial one and the new one
    store = open_flow_store(work)
    assert len(store.video_ids) == 6 and store.record("Pan/Pan_0").n_frames == 6

    result = CliRunner().invoke(app, ["inspect", "--work-dir", work, "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert described["stores"][0]["fingerprint"] == store.fingerprint
    assert described["stores"][0]["config"]["resize"]["short_side"] == 32
    videos = {v["video_id"]: v for v in described["stores"][0]["videos"]}
    assert videos["Pan/Pan_1"] == {"video_id": "Pan/Pan_1", "label": "Pan", "split": videos["Pan/Pan_1"]["split"],
                                   "n_frames": 6, "n_flows": 5, "complete": True}
    shutil.rmtree(tmp_path)


def test_cli_reports_config_errors_clearly(tmp_path):
    result = CliRunner().invoke(app, ["extract", "--work-dir", str(tmp_path), "--step", "0"])
    assert result.exit_code == 2 and "step" in result.output
    result = CliRunner().invoke(app, ["extract", "--work-dir", str(tmp_path), "--size", "64by48"])
    assert result.exit_code == 2 and "size" in result.output


def test_cli_extract_on_a_dask_address_publishes_artifacts(tmp_path, prefect_harness, dask_address):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    root, work = tmp_path / "data", str(tmp_path / "work")
    (root / "Pan").mkdir(parents=True)
    for k in range(2):
        write_video(root / "Pan" / f"clip{k}.avi", panning_frames(5, 40, 56, dx=1), "MJPG")
    (root / "Pan" / "bad.avi").write_bytes(b"not a video")
    cli = CliRunner()
    result = cli.invoke(app, ["extract", "--work-dir", work])
    assert result.exit_code == 2 and "im2flow ingest" in result.output  # no manifest yet: a clear error
    result = cli.invoke(app, ["ingest", str(root), "--work-dir", work, "--dask-address", dask_address])
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["extract", "--work-dir", work, "--dask-address", dask_address, "--algorithm", "dis",
                              "--size", "48x32", "--param", "preset=fast", "--step", "2"])
    assert result.exit_code == 0, result.output
    store = open_flow_store(work)
    assert store.config["algorithm"] == "dis" and store.config["params"]["preset"] == "fast"
    assert store.record("Pan/clip0").n_flows == 3 and (store.record("Pan/clip0").width,
                                                       store.record("Pan/clip0").height) == (48, 32)
    # tvl1-torch with device auto on a CPU-only external cluster: runs on the CPU workers, asks no GPU slot.
    tiny = ["--param", "nscales=2", "--param", "warps=2", "--param", "outer_iterations=2", "--no-compile"]
    result = cli.invoke(app, ["extract", "--work-dir", work, "--dask-address", dask_address, "--algorithm",
                              "tvl1-torch", "--size", "48x32", *tiny])
    assert result.exit_code == 0, result.output
    assert open_flow_store(work, [s for s in _fingerprints(work) if s != store.fingerprint][0]).record(
        "Pan/clip0").complete
    # Asking for CUDA there fails at once, saying how to start GPU workers.
    result = cli.invoke(app, ["extract", "--work-dir", work, "--dask-address", dask_address, "--algorithm",
                              "tvl1-torch", "--device", "cuda", *tiny])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "no worker with a GPU resource" in output and "--resources GPU=1" in output
    keys = {kind: artifact_key(kind, work) for kind in ("extract-summary", "extract-flow-previews", "ingest-failures")}
    with get_client(sync_client=True) as client:
        wanted = ArtifactFilter(key=ArtifactFilterKey(any_=list(keys.values())))
        artifacts = client.read_artifacts(artifact_filter=wanted)
        progress = [a for a in client.read_artifacts() if a.type == "progress"]
    latest = {a.key: a for a in sorted(artifacts, key=lambda a: a.created)}
    assert set(latest) == set(keys.values())
    assert progress and all(a.key is None for a in progress)  # a bar belongs to its run: no key
    assert any(a.description.startswith("extracting") and a.data == 100.0 for a in progress)
    assert "data:image/png;base64," in latest[keys["extract-flow-previews"]].data
    assert "Pan/bad" in str(latest[keys["ingest-failures"]].data)
    assert "flows_per_s" in str(latest[keys["extract-summary"]].data)


def _fingerprints(work: str) -> list[str]:
    from im2flow_storage.flow_store import list_flow_stores

    return [s.fingerprint for s in list_flow_stores(work)]


def test_torch_tvl1_on_a_cluster_with_gpu_resources_via_the_cli(tmp_path, prefect_harness, monkeypatch):
    """tvl1-torch tasks ask for one GPU resource each; workers started with `--resources GPU=1` run them."""
    import dask
    from distributed import LocalCluster

    from im2flow_flows.extract import _gpu_annotation

    on_cluster = ExtractConfig(algorithm="tvl1-torch", dask_address="tcp://scheduler:8786")
    with _gpu_annotation(on_cluster.model_copy(update={"device": "cuda"})):
        assert dask.get_annotations() == {"resources": {"GPU": 1}}
    for device in ("cpu", "auto"):  # CPU work needs no GPU slot; auto resolves on the worker
        with _gpu_annotation(on_cluster.model_copy(update={"device": device})):
            assert dask.get_annotations() == {}
    root, work = tmp_path / "data", str(tmp_path / "work")
    (root / "Pan").mkdir(parents=True)
    write_video(root / "Pan" / "clip0.avi", panning_frames(3, 32, 40, dx=1), "MJPG")
    # One worker process declaring one GPU (here a CPU stands in for it: device auto finds no CUDA).
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0",
                      resources={"GPU": 1}) as cluster:
        from im2flow_services.preflight import check_gpu_workers

        check_gpu_workers(cluster.scheduler_address)  # a worker declares a GPU: `--device cuda` may go ahead
        cli = CliRunner()
        assert cli.invoke(app, ["ingest", str(root), "--work-dir", work]).exit_code == 0
        result = cli.invoke(app, ["extract", "--work-dir", work, "--dask-address", cluster.scheduler_address,
                                  "--algorithm", "tvl1-torch", "--batch-size", "2", "--no-compile",
                                  "--param", "nscales=2",
                                  "--param", "warps=2", "--param", "outer_iterations=2"])
        assert result.exit_code == 0, result.output
    store = open_flow_store(work)
    assert store.config["algorithm"] == "tvl1-torch" and store.config["params"]["nscales"] == 2
    assert store.record("Pan/clip0").n_flows == 2
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # a machine without a GPU, whatever this one has
    result = CliRunner().invoke(app, ["extract", "--work-dir", work, "--algorithm", "tvl1-torch", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA GPU" in result.output
