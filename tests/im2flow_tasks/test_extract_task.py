import cv2
import numpy as np

from im2flow_core.optical_flow import create_estimator
from im2flow_storage import open_flow_store
from im2flow_storage.flow_store import create_flow_store
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.extract import extract_one, library_versions
from im2flow_tasks.ingest import probe_entry
from tests.conftest import panning_frames, write_video


def _row(path, video_id="A/clip"):
    return probe_entry({"video_id": video_id, "path": str(path), "label": "A", "split": "train"}, 2)


def test_extract_one_writes_aligned_flow_equal_to_direct_tvl1(tmp_path):
    frames = panning_frames(9, 48, 64, dx=1)
    path = write_video(tmp_path / "clip.avi", frames, "FFV1")  # lossless, so we can recompute exactly
    config = ExtractConfig(short_side=None, step=2, frame_stride=2)
    store = create_flow_store(str(tmp_path / "w"), config.store_config(), library_versions())
    outcome = extract_one(store.url, _row(path), config.store_config(), shard_frames=2)
    assert outcome["status"] == "complete", outcome
    assert (outcome["n_frames"], outcome["n_flows"]) == (5, 3)  # frames 0,2,4,6,8; flows = 5 - 2
    reader = open_flow_store(str(tmp_path / "w"))
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames[::2]]
    estimator = create_estimator("tvl1")
    for t in range(3):
        rgb, flow = reader.read_pair("A/clip", t)
        np.testing.assert_array_equal(rgb.shape, (48, 64, 3))
        direct = estimator.calc(gray[t], gray[t + 2])  # from sampled frame t to t + K
        assert np.linalg.norm(flow - direct, axis=-1).max() <= 0.085 + 1e-4  # the store's error bound
        assert -4.6 < np.median(flow[8:-8, 8:-8, 0]) < -3.4  # 1 px/frame to the left × stride 2 × step 2


def test_bad_video_returns_failure_and_stays_incomplete(tmp_path):
    path = write_video(tmp_path / "clip.avi", panning_frames(4, 32, 48), "MJPG")
    row = _row(path)
    path.write_bytes(b"garbage" * 100)  # the file broke after ingest
    config = ExtractConfig(short_side=32)
    store = create_flow_store(str(tmp_path / "w"), config.store_config(), {})
    outcome = extract_one(store.url, row, config.store_config(), shard_frames=8)
    assert outcome["status"] == "failed" and "cannot open" in outcome["error"]
    assert not open_flow_store(store.url).is_complete("A/clip")


def test_torch_tvl1_extraction_is_its_own_store_and_matches_the_estimator(tmp_path):
    import torch

    from im2flow_core.tvl1_torch import tvl1_flow
    frames = panning_frames(4, 40, 48, dx=1)
    path = write_video(tmp_path / "clip.avi", frames, "FFV1")
    fast = {"nscales": 2, "warps": 2, "outer_iterations": 3}
    config = ExtractConfig(algorithm="tvl1-torch", tvl1=fast, short_side=None, device="cpu", batch_size=2)
    assert config.compile  # the compiled kernels are the default
    opencv = ExtractConfig(tvl1=fast, short_side=None)
    assert config.store_config()["implementation"] != opencv.store_config()["implementation"]
    store = create_flow_store(str(tmp_path / "w"), config.store_config(), library_versions())
    assert store.fingerprint != create_flow_store(str(tmp_path / "w"), opencv.store_config(), {}).fingerprint
    outcome = extract_one(store.url, _row(path), config.store_config(), shard_frames=2,
                          compute=config.compute_options())
    assert outcome["status"] == "complete" and outcome["n_flows"] == 3, outcome
    reader = open_flow_store(store.url)
    assert reader.config["algorithm"] == "tvl1-torch" and "PyTorch" in reader.config["implementation"]
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    for t in range(3):
        direct = tvl1_flow(torch.from_numpy(gray[t][None]), torch.from_numpy(gray[t + 1][None]),
                           config.algorithm_params(), compile=config.compile)[0].numpy()
        assert np.linalg.norm(reader.read_pair("A/clip", t)[1] - direct, axis=-1).max() <= 0.085 + 1e-4


def test_prefetch_keeps_order_and_hands_over_the_producers_error():
    import pytest

    from im2flow_tasks.extract import prefetched

    assert list(prefetched(iter(range(50)), 3)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("cannot decode frame 2")

    seen = []
    with pytest.raises(ValueError, match="frame 2"):
        for item in prefetched(broken(), 2):
            seen.append(item)
    assert seen == [1]


def test_torch_tvl1_extraction_of_a_broken_video_fails_cleanly(tmp_path):
    path = write_video(tmp_path / "clip.avi", panning_frames(4, 32, 48), "MJPG")
    row = _row(path)
    path.write_bytes(b"garbage" * 100)  # broke after ingest: the decode thread's error reaches the task
    config = ExtractConfig(algorithm="tvl1-torch", tvl1={"nscales": 1, "warps": 1, "outer_iterations": 1},
                           short_side=None, device="cpu")
    store = create_flow_store(str(tmp_path / "w"), config.store_config(), {})
    outcome = extract_one(store.url, row, config.store_config(), shard_frames=8, compute=config.compute_options())
    assert outcome["status"] == "failed" and "cannot open" in outcome["error"]
    assert not open_flow_store(store.url).is_complete("A/clip")
