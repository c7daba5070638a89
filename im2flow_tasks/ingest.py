"""Probe a batch of videos and turn each into a manifest row."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
from prefect import task

from im2flow_core.video import probe_video
from im2flow_storage.datasets import DatasetError, printable


def probe_entry(entry: dict[str, Any], min_frames: int, max_frame_pixels: int | None = None,
                max_frames: int | None = None) -> dict[str, Any]:
    """Manifest row (see im2flow_storage.manifest.MANIFEST_SCHEMA) for one dataset entry dict.

    A path that is not valid UTF-8 (kept by Python as surrogate escapes) cannot be stored in the
    manifest or opened by FFmpeg reliably: its row says `unreadable` and asks for a rename.
    """
    if printable(entry["path"]) != entry["path"]:
        return {**{k: printable(v) if isinstance(v, str) else v for k, v in entry.items()},
                "status": "unreadable", "error": "the file name is not valid UTF-8: rename it", "warning": "",
                "n_frames": 0, "container_frames": 0, "fps": 0.0, "width": 0, "height": 0, "duration_s": 0.0,
                "codec": "", "size_bytes": -1, "mtime": -1.0}
    probe = probe_video(entry["path"], min_frames=min_frames, max_frame_pixels=max_frame_pixels,
                        max_frames=max_frames)
    try:
        stat = os.stat(entry["path"])
        size, mtime = int(stat.st_size), float(stat.st_mtime)
    except OSError:
        size, mtime = -1, -1.0
    return {**entry, "status": probe.status.value, "error": probe.error, "warning": probe.warning,
            "n_frames": probe.n_frames, "container_frames": probe.container_frames, "fps": probe.fps,
            "width": probe.width, "height": probe.height, "duration_s": probe.duration_s, "codec": probe.codec,
            "size_bytes": size, "mtime": mtime}


def check_shrink(previous: Iterable[Mapping[str, Any]], found: set[str], allow: bool, limit: float) -> None:
    """DatasetError when a re-ingest would drop more than `limit` (a share) of the last manifest's ok videos.

    An unmounted share, a wrong root or an emptied folder looks like a dataset of no (or fewer)
    videos; replacing a good manifest with it silently would orphan every later stage. `allow`
    (`--allow-shrink`) accepts the drop.
    """
    ok = [r["video_id"] for r in previous if r.get("status") == "ok"]
    dropped = [v for v in ok if v not in found]
    if ok and not allow and len(dropped) > limit * len(ok):
        raise DatasetError(f"the dataset now lacks {len(dropped)} of the {len(ok)} ok videos of the last manifest "
                           f"(e.g. {dropped[0]}): is the right folder given and mounted? Pass --allow-shrink to "
                           "drop them from the manifest")


@task(name="probe-videos", task_run_name="probe-{batch_name}", retries=1, persist_result=False)
def probe_videos(entries: list[dict[str, Any]], min_frames: int, batch_name: str, max_frame_pixels: int | None = None,
                 max_frames: int | None = None) -> list[dict[str, Any]]:
    """Probe every entry of a batch (decoding all frames); bad videos give rows, never exceptions."""
    cv2.setNumThreads(1)
    return [probe_entry(e, min_frames, max_frame_pixels, max_frames) for e in entries]
