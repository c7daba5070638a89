"""Extract one video: decode, compute flow, encode and write it to the flow store."""

from __future__ import annotations

import collections
import importlib.metadata
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import cv2
import numpy as np
import zarr
from prefect import task

from im2flow_core.errors import VideoError
from im2flow_core.flow_encoding import encode_flow
from im2flow_core.frame_flows import iter_frame_flows
from im2flow_core.optical_flow import DISParams, FarnebackParams, FlowAlgorithm, TVL1Params, create_estimator
from im2flow_core.video import iter_frames, resolve_frame_size
from im2flow_storage import open_flow_store
from im2flow_storage.flow_store import FlowStore

T = TypeVar("T")

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
                                 device=compute.get("device", "auto"), batch_size=compute.get("batch_size", 16),
                                 compile=compute.get("compile", True))
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
        if hasattr(estimator, "calc_batch"):
            # Batched (GPU) flow: decode ahead in one thread and encode/write behind in another, so the
            # device computes one batch while the next is decoded and the last is written.
            depth = 2 * int(getattr(estimator, "batch_size", 16))
            _write_behind(iter_frame_flows(prefetched(frames, depth), estimator, store_config["step"]), writer, depth)
        else:
            for item in iter_frame_flows(frames, estimator, store_config["step"]):
                writer.append(item.rgb, None if item.flow is None else encode_flow(item.flow))
        record = writer.finish()
        outcome.update(status="complete", n_frames=record.n_frames, n_flows=record.n_flows)
    except (VideoError, ValueError) as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    outcome["seconds"] = time.perf_counter() - started
    return outcome


_END = object()


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """`items`, produced by a background thread up to `depth` ahead; its exceptions re-raise here.

    Stopping early (an exception in the consumer) stops the producer at its next item.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            buffer.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _write_behind(items: Iterable[Any], writer: Any, depth: int) -> None:
    """Encode and append `items` (FrameFlow) in one background thread, in order, at most `depth` pending."""
    pending: collections.deque[Future] = collections.deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write") as pool:
        try:
            for item in items:
                pending.append(pool.submit(
                    lambda it: writer.append(it.rgb, None if it.flow is None else encode_flow(it.flow)), item))
                while len(pending) > depth:
                    pending.popleft().result()  # re-raises a write error
        finally:
            while pending:  # finish (or surface the error of) what was handed over, in order
                pending.popleft().result()


@task(name="extract-videos", task_run_name="extract-{name}", persist_result=False)
def extract_videos(store_url: str, videos: list[dict[str, Any]], store_config: dict[str, Any], shard_frames: int,
                   name: str, compute: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Extract `videos` (manifest rows) one after another; returns one outcome each.

    `name` (the video id, or the first id and how many more) names the task run. A retried task
    skips the videos it already completed.
    """
    store = open_flow_store(store_url)
    outcomes = []
    for video in videos:
        if store.is_complete(video["video_id"], video["size_bytes"], video["mtime"]):
            record = store.record(video["video_id"])
            outcomes.append({"video_id": video["video_id"], "status": "complete", "error": "", "seconds": 0.0,
                             "n_frames": record.n_frames, "n_flows": record.n_flows})  # type: ignore[union-attr]
            continue
        outcomes.append(extract_one(store_url, video, store_config, shard_frames, compute))
    return outcomes


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a store's content, recorded in its metadata."""
    versions = {"opencv": cv2.__version__, "numpy": np.__version__, "zarr": zarr.__version__}
    for name in ("imagecodecs", "im2flow"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def crashed_outcomes(store: FlowStore, batch: list[dict[str, Any]], exc: Exception) -> list[dict[str, Any]]:
    """Outcomes of a batch whose task crashed after its retries: what the store holds complete is kept."""
    out = []
    for video in batch:
        record = store.record(video["video_id"])
        if record is not None and store.is_complete(video["video_id"], video["size_bytes"], video["mtime"]):
            out.append({"video_id": video["video_id"], "status": "complete", "error": "", "seconds": 0.0,
                        "n_frames": record.n_frames, "n_flows": record.n_flows})
        else:
            out.append({"video_id": video["video_id"], "status": "failed", "error": f"task crashed: {exc!r}",
                        "n_frames": 0, "n_flows": 0, "seconds": 0.0})
    return out
