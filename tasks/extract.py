"""Extract one video: decode, compute flow, encode and write it to the flow store."""

from __future__ import annotations

import time
from typing import Any

import cv2
from prefect import task

from im2flow_core.errors import VideoError
from im2flow_core.flow_encoding import encode_flow
from im2flow_core.frame_flows import iter_frame_flows
from im2flow_core.optical_flow import DISParams, FarnebackParams, FlowAlgorithm, TVL1Params, create_estimator
from im2flow_core.video import iter_frames, resolve_frame_size
from storage import open_flow_store

_PARAMS = {FlowAlgorithm.tvl1: TVL1Params, FlowAlgorithm.tvl1_torch: TVL1Params, FlowAlgorithm.dis: DISParams,
           FlowAlgorithm.farneback: FarnebackParams}


def extract_one(store_url: str, video: dict[str, Any], store_config: dict[str, Any],
                shard_frames: int, compute: dict[str, Any] | None = None) -> dict[str, Any]:
    """Extract `video` (a manifest row) into the store; returns an outcome dict.

    A bad video returns status "failed" with the reason (and stays incomplete in the store);
    anything else unexpected raises, so the task is retried.
    """
    cv2.setNumThreads(1)  # one OpenCV thread per Dask worker: TV-L1 would oversubscribe the cores
    started = time.perf_counter()
    compute = compute or {}
    algorithm = FlowAlgorithm(store_config["algorithm"])
    if algorithm is FlowAlgorithm.tvl1_torch:
        import torch
        torch.set_num_threads(1)  # likewise on CPU; on CUDA the GPU does the work
    estimator = create_estimator(algorithm, _PARAMS[algorithm].model_validate(store_config["params"]),
                                 device=compute.get("device", "auto"), batch_size=compute.get("batch_size", 16))
    resize = store_config["resize"]
    size = resolve_frame_size(video["width"], video["height"], resize["short_side"],
                              tuple(resize["size"]) if resize["size"] else None)
    store = open_flow_store(store_url, mode="r+")
    writer = store.begin_video(video["video_id"], label=video["label"], split=video["split"],
                               source_size=video["size_bytes"], source_mtime=video["mtime"],
                               shard_frames=shard_frames)
    outcome = {"video_id": video["video_id"], "status": "failed", "error": "", "n_frames": 0, "n_flows": 0}
    try:
        frames = iter_frames(video["path"], stride=store_config["frame_stride"],
                             max_frames=store_config["max_frames"], size=size)
        for item in iter_frame_flows(frames, estimator, store_config["step"]):
            writer.append(item.rgb, None if item.flow is None else encode_flow(item.flow))
        record = writer.finish()
        outcome.update(status="complete", n_frames=record.n_frames, n_flows=record.n_flows)
    except (VideoError, ValueError) as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    outcome["seconds"] = time.perf_counter() - started
    return outcome


@task(name="extract-video", task_run_name="extract-{video_id}")
def extract_video(store_url: str, video: dict[str, Any], store_config: dict[str, Any], shard_frames: int,
                  video_id: str, compute: dict[str, Any] | None = None) -> dict[str, Any]:
    """Prefect task around `extract_one` (video_id is passed for the task-run name)."""
    return extract_one(store_url, video, store_config, shard_frames, compute)
