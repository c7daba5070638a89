"""Ingest's checks: a re-ingest does not silently shrink the manifest; bad file names and huge videos get rows."""

import os

import pytest

from im2flow_storage.datasets import DatasetError
from im2flow_tasks.ingest import check_shrink, probe_entry
from tests.conftest import panning_frames, write_video


def test_a_reingest_may_not_silently_drop_the_manifests_videos():
    previous = [{"video_id": f"v{i}", "status": "ok"} for i in range(100)] + [{"video_id": "bad", "status": "corrupt"}]
    check_shrink(previous, {f"v{i}" for i in range(96)}, allow=False, limit=0.05)  # 4 % gone: fine
    with pytest.raises(DatasetError, match="lacks 6 of the 100 ok videos.*--allow-shrink"):
        check_shrink(previous, {f"v{i}" for i in range(94)}, allow=False, limit=0.05)
    check_shrink(previous, set(), allow=True, limit=0.05)
    check_shrink([], set(), allow=False, limit=0.05)  # a first ingest


def test_a_file_name_that_is_not_utf8_gets_an_unreadable_row(tmp_path):
    name = os.fsdecode(b"v_Run_\xff.avi")  # Linux keeps any bytes; Python gives surrogate escapes
    path = write_video(tmp_path / "clip.avi", panning_frames(4, 32, 32), "MJPG")
    os.rename(path, tmp_path / name)
    row = probe_entry({"video_id": f"Run/{name[:-4]}", "path": str(tmp_path / name), "label": "Run", "split": "train"},
                      min_frames=2)
    assert row["status"] == "unreadable" and "not valid UTF-8" in row["error"]
    assert row["video_id"] == "Run/v_Run_\\xff" and row["path"].encode("utf-8")  # storable and printable


def test_videos_over_the_frame_size_or_count_limit_are_recorded_with_a_reason(tmp_path):
    path = str(write_video(tmp_path / "clip.avi", panning_frames(12, 48, 64), "MJPG"))
    entry = {"video_id": "Run/clip", "path": path, "label": "Run", "split": "train"}
    assert probe_entry(entry, 2, max_frame_pixels=64 * 48, max_frames=12)["status"] == "ok"
    large = probe_entry(entry, 2, max_frame_pixels=64 * 48 - 1)
    assert large["status"] == "too_large" and "64×48 = 3,072 pixels" in large["error"]
    long = probe_entry(entry, 2, max_frames=10)
    assert long["status"] == "too_long" and "more than 10 frames" in long["error"]
