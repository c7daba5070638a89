"""Cheap digests of what a pipeline stage reads: a dataset's files, a manifest, a flow store's videos.

They are the cache keys of the pipeline's stages: a digest changes when a video is added, removed,
replaced (size or mtime) or relabelled, and stays the same otherwise. They read metadata only
(stat calls, Parquet rows, Zarr attributes), never video or flow data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from im2flow_storage.datasets import DatasetEntry
from im2flow_storage.flow_store import FlowStore, canonical_digest
from im2flow_storage.manifest import ManifestError, read_manifest


def digest(data: Any) -> str:
    """16-hex-digit SHA-256 of the canonical JSON of `data`."""
    return canonical_digest(data, 16)


def dataset_digest(entries: Iterable[DatasetEntry]) -> str:
    """Digest of a scanned dataset: every video's id, label, split, path, size and mtime."""
    rows = []
    for e in entries:
        try:
            stat = os.stat(e.path)
            size, mtime = stat.st_size, round(stat.st_mtime, 3)
        except OSError:
            size, mtime = -1, -1.0
        rows.append((e.video_id, e.label, e.split, list(e.official_splits), str(e.path), size, mtime))
    return digest(rows)


def manifest_digest(work_dir: str) -> str:
    """Digest of the manifest's rows (or of its absence)."""
    try:
        rows = read_manifest(work_dir)
    except ManifestError:
        return digest("no manifest")
    return digest(sorted((r["video_id"], r["label"], r["split"], r["status"], r["size_bytes"], round(r["mtime"], 3))
                         for r in rows))


def store_digest(store: FlowStore) -> str:
    """Digest of a flow store's complete videos: id, label, split, frame count and source file."""
    return digest([store.fingerprint, *[(r.video_id, r.label, r.split, r.n_frames, r.source_size,
                                         round(r.source_mtime, 3)) for r in store.records(complete_only=True)]])


def file_digest(url: str) -> str:
    """Digest of a file's URL, size and modification time (or of its absence)."""
    from im2flow_storage.paths import filesystem

    fs, path = filesystem(url)
    try:
        info = fs.info(path)
    except (FileNotFoundError, OSError):
        return digest([url, "missing"])
    return digest([url, info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("created"))])
