"""Probe a batch of videos and turn each into a manifest row."""

from __future__ import annotations

import os
from typing import Any

import cv2
from prefect import task

from im2flow_core.video import probe_video


def probe_entry(entry: dict[str, Any], min_frames: int) -> dict[str, Any]:
    """Manifest row (see im2flow_storage.manifest.MANIFEST_SCHEMA) for one dataset entry dict."""
    probe = probe_video(entry["path"], min_frames=min_frames)
    try:
        stat = os.stat(entry["path"])
        size, mtime = int(stat.st_size), float(stat.st_mtime)
    except OSError:
        size, mtime = -1, -1.0
    return {**entry, "status": probe.status.value, "error": probe.error, "warning": probe.warning,
            "n_frames": probe.n_frames, "container_frames": probe.container_frames, "fps": probe.fps,
            "width": probe.width, "height": probe.height, "duration_s": probe.duration_s, "codec": probe.codec,
            "size_bytes": size, "mtime": mtime}


@task(name="probe-videos", task_run_name="probe-{batch_name}", retries=1, persist_result=False)
def probe_videos(entries: list[dict[str, Any]], min_frames: int, batch_name: str) -> list[dict[str, Any]]:
    """Probe every entry of a batch (decoding all frames); bad videos give rows, never exceptions."""
    cv2.setNumThreads(1)
    return [probe_entry(e, min_frames) for e in entries]
