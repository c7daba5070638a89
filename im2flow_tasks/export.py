"""Export videos of a flow store (or G's hallucinated flow) as rawframes folders (im2flow_storage.rawframes)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from prefect import task

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.inference import predict_flow_images
from im2flow_core.rawframe_flow import flow_to_gray
from im2flow_core.unet import UNetGenerator
from im2flow_storage import FlowStore, open_flow_store
from im2flow_storage.frame_reader import CorruptFrame
from im2flow_storage.paths import UnsafePathError, collision_key
from im2flow_storage.rawframes import START_INDEX, RawframesError, RawframeVideoWriter, frame_dir_of


def with_frame_dirs(videos: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(videos with their `<class>/<video>` folder, failed outcomes of videos whose label or id makes no safe
    folder name). RawframesError if two would share one folder (also when they differ only by case or
    Unicode normalisation, which macOS and Windows disks merge)."""
    owner: dict[str, str] = {}
    good, bad = [], []
    for video in videos:
        try:
            video["frame_dir"] = frame_dir_of(video["video_id"], video["label"])
        except UnsafePathError as exc:
            bad.append({**video, "frame_dir": "", "status": "failed", "error": str(exc), "n_frames": 0, "n_flows": 0,
                        "n_clipped": 0})
            continue
        key = collision_key(video["frame_dir"])
        if key in owner:
            raise RawframesError(f"videos {owner[key]!r} and {video['video_id']!r} would both be "
                                 f"exported to {video['frame_dir']} (names equal but for case or normalisation)")
        owner[key] = video["video_id"]
        good.append(video)
    return good, bad


def write_rawframe_video(root: Path, frame_dir: str, frames: Iterable[np.ndarray], flows: Iterable[np.ndarray],
                         bound_px: float, quality: int, record: dict[str, Any],
                         overwrite: bool = False) -> dict[str, Any]:
    """Write one video folder: RGB `(H, W, 3) uint8` frames and flows `(H, W, 2) float32` px, numbered from 1.

    Flow k is written beside frame k (the flow from frame k onwards). Returns the finished record
    (`record` plus n_frames, n_flows, n_clipped); the folder only appears under its name when complete.
    An existing folder of that name is replaced only if this export wrote it (or `overwrite`).
    """
    n_frames = n_flows = n_clipped = 0
    with RawframeVideoWriter(root, frame_dir, quality, overwrite) as writer:
        for n_frames, rgb in enumerate(frames, start=START_INDEX):
            writer.write_rgb(n_frames, rgb)
        for n_flows, flow in enumerate(flows, start=START_INDEX):
            x, y, clipped = flow_to_gray(flow, bound_px)
            writer.write_flow(n_flows, x, y)
            n_clipped += clipped
        finished = {**record, "n_frames": n_frames, "n_flows": n_flows, "n_clipped": n_clipped}
        writer.commit(finished)
    return finished


def export_store_video(store: FlowStore, video: dict[str, Any], root: str, bound_px: float,
                       quality: int, overwrite: bool = False) -> dict[str, Any]:
    """Export one complete video of `store` (`video`: video_id, label, split, frame_dir); returns its outcome.

    A video that cannot be read (a checksum failure) is returned as failed with the reason.
    """
    started = time.perf_counter()
    base = {key: video[key] for key in ("video_id", "label", "split", "frame_dir", "source_size", "source_mtime")
            if key in video}
    try:
        record = write_rawframe_video(Path(root), video["frame_dir"], store.iter_rgb(video["video_id"]),
                                      store.iter_flow(video["video_id"]), bound_px, quality, base, overwrite)
    except (CorruptFrame, RawframesError, UnsafePathError, KeyError) as exc:
        return {**base, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "n_frames": 0, "n_flows": 0,
                "n_clipped": 0, "seconds": time.perf_counter() - started}
    return {**record, "status": "exported", "error": "", "seconds": time.perf_counter() - started}


@task(name="export-videos", task_run_name="export-{name}", persist_result=False)
def export_videos(store_url: str, videos: list[dict[str, Any]], root: str, bound_px: float, quality: int,
                  name: str, overwrite: bool = False) -> list[dict[str, Any]]:
    """Export `videos` of the store one after another (see export_store_video); one outcome each."""
    store = open_flow_store(store_url)
    return [export_store_video(store, video, root, bound_px, quality, overwrite) for video in videos]


def _predicted_flows(generator: UNetGenerator, frames: list[np.ndarray], device: Any,
                     batch_size: int) -> Iterator[np.ndarray]:
    """G's flow `(H, W, 2) float32` px for each frame, predicted `batch_size` frames at a time."""
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size]
        for image in predict_flow_images(generator, batch, generator.config.input_size, device):
            yield decode_flow(image)


def export_hallucinated_video(generator: UNetGenerator, frames: list[np.ndarray], root: str, record: dict[str, Any],
                              bound_px: float, quality: int, device: Any, batch_size: int,
                              overwrite: bool = False) -> dict[str, Any]:
    """Export RGB frames `(H, W, 3) uint8` with G's flow for each (T frames → T flows); returns the outcome."""
    started = time.perf_counter()
    try:
        finished = write_rawframe_video(Path(root), record["frame_dir"], frames,
                                        _predicted_flows(generator, frames, device, batch_size), bound_px, quality,
                                        record, overwrite)
    except (RawframesError, cv2.error, ValueError) as exc:
        return {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "n_frames": 0, "n_flows": 0,
                "n_clipped": 0, "seconds": time.perf_counter() - started}
    return {**finished, "status": "exported", "error": "", "seconds": time.perf_counter() - started}
