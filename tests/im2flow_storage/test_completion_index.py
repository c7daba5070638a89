import numpy as np
import pytest

from im2flow_core.flow_encoding import encode_flow
from im2flow_storage.completion_index import INDEX_GROUP, marker_name, parse_marker, read_markers
from im2flow_storage.flow_store import create_flow_store, video_key
from im2flow_storage.paths import filesystem

CONFIG = {"algorithm": "dis", "params": {}, "step": 1, "frame_stride": 1, "max_frames": None,
          "resize": {"short_side": 16, "size": None},
          "encoding": {"flow_codec": {"mode": "quantized", "effort": 1}, "rgb_format": "png", "rgb_quality": 95}}


def _write(store, video_id, size=100, mtime=1.5, finish=True):
    writer = store.begin_video(video_id, label="a", split="train", source_size=size, source_mtime=mtime)
    for t in range(3):
        flow = None if t == 2 else encode_flow(np.full((8, 8, 2), t, np.float32))
        writer.append(np.full((8, 8, 3), t, np.uint8), flow)
    if finish:
        writer.finish()


def test_marker_names_round_trip():
    key = video_key("class/clip 01@x")
    assert "@" not in key
    assert parse_marker(marker_name(key, 123, 1712345678.123456)) == (key, 123, pytest.approx(1712345678.123456))
    assert parse_marker("zarr.json") is None and parse_marker("a@b@c") is None


def test_complete_videos_follow_the_groups_through_crashes_and_changed_sources(tmp_path):
    store = create_flow_store(str(tmp_path), CONFIG, {})
    for name in ("a", "b", "c", "d"):
        _write(store, name)
    _write(store, "partial", finish=False)  # a crash mid-video: no marker
    sources = {v: (100, 1.5) for v in ("a", "b", "c", "d", "partial", "never")}
    fs, path = filesystem(store.url)
    assert set(read_markers(fs, path)) == {video_key(v) for v in "abcd"}
    assert store.complete_videos(sources) == {"a", "b", "c", "d"}

    # A crash between marking "b" complete and indexing it: found by reading its group, and indexed again.
    fs.rm(f"{path}/{INDEX_GROUP}/{marker_name(video_key('b'), 100, 1.5)}", recursive=True)
    assert store.complete_videos(sources) == {"a", "b", "c", "d"}
    assert video_key("b") in read_markers(fs, path)

    # Rewriting "c" unindexes it before anything else: a crash right after leaves it out, never partial inside.
    _write(store, "c", size=200, mtime=2.5, finish=False)
    assert video_key("c") not in read_markers(fs, path)
    assert store.complete_videos(sources) == {"a", "b", "d"}

    # A source that changed since "d" was extracted is not complete for the new source; the old one still is.
    assert store.complete_videos({"d": (101, 1.5)}) == set()
    assert store.complete_videos({"d": (100, 1.5005)}) == {"d"}  # mtime compared to the millisecond
    _write(store, "c", size=200, mtime=2.5)
    assert store.complete_videos({"c": (200, 2.5)}) == {"c"}
    assert store.complete_videos({"c": (100, 1.5)}) == set()

    # A marker whose group was deleted by hand does not count: the listing of groups is checked too.
    del store._group["videos"][video_key("a")]
    assert store.complete_videos(sources) == {"b", "d"}  # "c" is complete from its new source only
    assert [r.video_id for r in store.records(complete_only=True)] == ["b", "c", "d"]
    assert sorted(r.video_id for r in store.records()) == ["b", "c", "d", "partial"]


def _requests(log):
    return log.read_text().count(" HTTP/1.1")


@pytest.mark.external
@pytest.mark.services
def test_planning_on_an_s3_api_server_takes_a_bounded_number_of_requests(tmp_path, monkeypatch):
    import s3fs

    from im2flow_storage import open_flow_store
    from im2flow_tasks.benchmark_stores import write_planning_store
    from tests.external import start_s3

    s3, env = start_s3(tmp_path, "plan-test")
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        s3fs.S3FileSystem.clear_instance_cache()  # an instance cached by an earlier test points at its server
        counts = {}
        for n in (40, 1100):  # 1100 videos: S3 lists 1000 keys a page
            url, sources = write_planning_store(f"s3://plan-test/n{n}", n)
            store = open_flow_store(url)
            before = _requests(s3.log)
            assert store.complete_videos(sources) == set(sources)
            counts[n] = _requests(s3.log) - before
        # Two listings (a page per 1000 videos each), no read per video.
        assert 2 <= counts[40] <= 4 and counts[1100] <= counts[40] + 2, counts

        # A store from before the index: the first plan reads the groups (and indexes them), later ones list.
        url, sources = write_planning_store("s3://plan-test/old", 30, indexed=False)
        store = open_flow_store(url)
        before = _requests(s3.log)
        assert store.complete_videos(sources) == set(sources)
        assert _requests(s3.log) - before >= 60  # a read and an index write per video, this once
        before = _requests(s3.log)
        assert store.complete_videos(sources) == set(sources)
        assert _requests(s3.log) - before <= 4
        assert len(store.records(complete_only=True)) == 30
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        s3.stop()
