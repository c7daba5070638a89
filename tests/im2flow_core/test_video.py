import os

import numpy as np
import pytest

from im2flow_core.errors import VideoDecodeError
from im2flow_core.video import VideoStatus, iter_frames, probe_video, resolve_frame_size
from tests.conftest import panning_frames, write_ffmpeg, write_h264, write_video


@pytest.mark.parametrize("ext,fourcc", [("mp4", "mp4v"), ("avi", "MJPG"), ("avi", "XVID"), ("webm", "VP90"),
                                        ("mov", "mp4v"), ("mkv", "FFV1")])
def test_probe_counts_decoded_frames_in_real_codecs(tmp_path, ext, fourcc):
    path = write_video(tmp_path / f"clip.{ext}", panning_frames(7, 58, 84), fourcc)
    probe = probe_video(str(path))
    assert probe.status is VideoStatus.ok, probe.error
    assert probe.n_frames == 7 and (probe.width, probe.height) == (84, 58)
    assert probe.fps == pytest.approx(10.0)


@pytest.mark.parametrize("codec", [["-c:v", "ffv1"], ["-c:v", "rawvideo", "-pix_fmt", "bgr24"]])
def test_probe_odd_frame_size(tmp_path, codec):
    path = write_ffmpeg(tmp_path / "odd.avi", panning_frames(5, 57, 83), codec)
    probe = probe_video(str(path))
    assert probe.status is VideoStatus.ok and (probe.width, probe.height) == (83, 57)
    assert next(iter_frames(str(path))).shape == (57, 83, 3)


def test_probe_h264(tmp_path):
    path = write_h264(tmp_path / "clip.mp4", panning_frames(9, 61, 87))
    probe = probe_video(str(path))
    assert probe.status is VideoStatus.ok and probe.n_frames == 9
    assert probe.codec.lower() in ("avc1", "h264")


def test_container_that_lies_about_its_frame_count(tmp_path):
    path = write_video(tmp_path / "clip.avi", panning_frames(30, 64, 96), "MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.5)])  # truncated: the header still claims 30 frames
    probe = probe_video(str(path))
    assert probe.status is VideoStatus.ok
    assert probe.container_frames == 30 and 5 < probe.n_frames < 30
    assert "claims 30" in probe.warning
    assert sum(1 for _ in iter_frames(str(path))) == probe.n_frames


def test_bad_inputs_get_a_status_and_a_reason(tmp_path):
    good = write_video(tmp_path / "good.mp4", panning_frames(8), "mp4v")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # the moov atom is at the end
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    one_frame = write_video(tmp_path / "one.avi", panning_frames(1), "MJPG")
    broken_link = tmp_path / "gone.mp4"
    os.symlink(tmp_path / "does-not-exist.mp4", broken_link)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    expected = {truncated: VideoStatus.corrupt, noise: VideoStatus.corrupt, empty: VideoStatus.empty,
                text: VideoStatus.corrupt, one_frame: VideoStatus.too_short, broken_link: VideoStatus.unreadable,
                folder: VideoStatus.unreadable}
    for path, status in expected.items():
        probe = probe_video(str(path))
        assert probe.status is status, (path.name, probe)
        assert probe.error, path.name
    assert probe_video(str(one_frame)).n_frames == 1


def test_iter_frames_streams_with_stride_limit_and_resize(tmp_path):
    frames = panning_frames(10, 60, 80)
    path = write_video(tmp_path / "clip.avi", frames, "FFV1")  # lossless: frames compare exactly
    out = list(iter_frames(str(path), stride=3, max_frames=3))
    assert len(out) == 3
    np.testing.assert_array_equal(out[1], frames[3])
    np.testing.assert_array_equal(out[2], frames[6])
    small = list(iter_frames(str(path), size=(40, 30)))
    assert len(small) == 10 and small[0].shape == (30, 40, 3) and small[0].dtype == np.uint8
    with pytest.raises(VideoDecodeError):
        list(iter_frames(str(tmp_path / "missing.mp4")))


def test_resolve_frame_size():
    assert resolve_frame_size(320, 240, short_side=128) == (171, 128)
    assert resolve_frame_size(240, 320, short_side=64) == (64, 85)
    assert resolve_frame_size(320, 240, short_side=128, size=(100, 50)) == (100, 50)
    assert resolve_frame_size(320, 240) == (320, 240)
