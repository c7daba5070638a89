import tracemalloc

from im2flow_storage.flow_store import create_flow_store
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.extract import extract_one
from im2flow_tasks.ingest import probe_entry
from tests.conftest import panning_frames, write_video


def test_extraction_streams_a_long_video_in_bounded_memory(tmp_path):
    frames = panning_frames(12, 64, 96, dx=1)
    long_video = write_video(tmp_path / "long.avi", frames * 25, "MJPG")  # 300 frames
    row = probe_entry({"video_id": "long", "path": str(long_video), "label": "x", "split": "train"}, 2)
    assert row["n_frames"] == 300
    config = ExtractConfig(algorithm="farneback", short_side=None, shard_frames=8)
    store = create_flow_store(str(tmp_path / "w"), config.store_config(), {})
    tracemalloc.start()
    outcome = extract_one(store.url, row, config.store_config(), shard_frames=8)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome["status"] == "complete" and outcome["n_flows"] == 299
    whole_video = 300 * 64 * 96 * (3 + 3 * 4)  # RGB + float32 flow images of every frame
    assert peak < whole_video / 5, (peak, whole_video)  # holds a few shards, never the whole video
