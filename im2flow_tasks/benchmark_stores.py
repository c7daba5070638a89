"""Flow stores of synthetic action clips written without videos, for the benchmarks (`benchmarks/`) and the
tests that check them: `write_synthetic_store` (real frames and flow), `write_planning_store` (metadata only)."""

from __future__ import annotations

from pathlib import Path

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.frame_flows import iter_frame_flows
from im2flow_core.optical_flow import create_estimator
from im2flow_core.synthetic_actions import make_scene_style, render_clip
from im2flow_storage.flow_store import create_flow_store
from im2flow_tasks.config import ExtractConfig


def write_synthetic_store(work_dir: str | Path, actions: tuple[str, ...] = ("swim_left", "spin_cw"), groups: int = 3,
                          size: int = 32, n_frames: int = 6) -> str:
    """A flow store of synthetic clips (DIS flow) under `work_dir`, written through the storage API; returns its URL.

    Each action has `groups` training groups and one test group of `n_frames`-frame clips at `size` px:
    a small, realistic store for tests and benchmarks (no videos, no Prefect, no Dask).
    """
    config = ExtractConfig(algorithm="dis", short_side=size)
    store = create_flow_store(str(work_dir), config.store_config(), {})
    estimator = create_estimator("dis")
    for a, action in enumerate(actions):
        for g in range(1, groups + 2):  # the last group of each action is the test split
            clip = render_clip(action, 10 * a + g, make_scene_style(100 * a + g, size), n_frames)
            video_id = f"{action}/v_{action}_g{g:02d}_c01"
            writer = store.begin_video(video_id, label=action, split="test" if g > groups else "train",
                                       source_size=1, source_mtime=0.0, shard_frames=4)
            for item in iter_frame_flows(clip, estimator, 1):
                writer.append(item.rgb, None if item.flow is None else encode_flow(item.flow))
            writer.finish()
    return store.url


def write_planning_store(work_dir: str, n_videos: int, indexed: bool = True) -> tuple[str, dict[str, tuple[int,
                                                                                                           float]]]:
    """A flow store of `n_videos` complete videos that hold metadata only (no frames), at any fsspec URL.

    Written in one concurrent batch (`FlowStore.add_metadata_only_videos`), for measuring how planning
    scales on object stores. With `indexed` False the completion index is left empty (a store written
    before it existed). Returns the store URL and each video's source (size, mtime), as a manifest gives them.
    """
    store = create_flow_store(work_dir, ExtractConfig(algorithm="dis", short_side=16).store_config(), {})
    sources = {f"class{i % 101:03d}/v_{i:06d}": (1000 + i, 1.7e9 + i / 7) for i in range(n_videos)}
    store.add_metadata_only_videos({
        video_id: {"label": video_id.split("/")[0], "split": "train", "source_size": size, "source_mtime": mtime,
                   "n_frames": 2, "n_flows": 1, "height": 16, "width": 16, "complete": True}
        for video_id, (size, mtime) in sources.items()}, indexed=indexed)
    return store.url, sources
