"""Scan a dataset once, keep the manifest rows of unchanged videos, probe a batch of videos into manifest rows."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
from prefect import task
from pydantic import BaseModel, ConfigDict, Field

from im2flow_core.video import probe_video
from im2flow_storage.datasets import (
    DatasetError,
    check_official_splits,
    printable,
    scan_dataset_with_evidence,
)
from im2flow_storage.digests import dataset_digest
from im2flow_tasks.config import IngestConfig


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


class DatasetScan(BaseModel):
    """A dataset scanned once: its root, layout (and why), video count and digest (what the Prefect UI shows of
    it as a parameter), and its entries, handed on in process only: they stay out of serialized parameters,
    so a subflow given a scan never scans again, and a run started from the API without them scans itself."""

    model_config = ConfigDict(frozen=True)
    root: str
    layout: str
    videos: int
    digest: str
    entries: list[Any] | None = Field(default=None, exclude=True, repr=False)


@task(name="scan-dataset", task_run_name="scan-dataset", persist_result=False)
def scan_dataset_once(dataset_root: str, config: IngestConfig, official_splits: Sequence[int] = ()) -> DatasetScan:
    """Every video of the dataset at `dataset_root` with its label and split (`config`'s layout and split), and
    the digest of their ids, labels, splits, sizes and mtimes. DatasetError for a bad root or, with
    `official_splits`, a dataset that lacks one of those official splits."""
    entries, layout = scan_dataset_with_evidence(dataset_root, config.layout, config.split_index,
                                                 config.test_fraction, config.seed)
    check_official_splits(entries, tuple(official_splits))
    return DatasetScan(root=dataset_root, layout=layout, videos=len(entries), digest=dataset_digest(entries),
                       entries=entries)


def reuse_unchanged(entries: Iterable[Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(manifest rows kept from `previous` for entries whose file is unchanged, with the entry's current label
    and splits; the entries to probe). Unchanged: same path, size and mtime (to 1 ms)."""
    rows, todo = [], []
    for entry in entries:
        old = previous.get(entry["video_id"])
        if _unchanged(entry, old):
            rows.append({**old, "label": entry["label"], "split": entry["split"],
                         "official_splits": entry["official_splits"]})
        else:
            todo.append(dict(entry))
    return rows, todo


def _unchanged(entry: Mapping[str, Any], previous: Mapping[str, Any] | None) -> bool:
    if previous is None or previous["path"] != entry["path"]:
        return False
    try:
        stat = os.stat(entry["path"])
    except OSError:
        return False
    return previous["size_bytes"] == stat.st_size and abs(previous["mtime"] - stat.st_mtime) < 1e-3
