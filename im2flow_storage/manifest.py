"""The ingest manifest: one Parquet row per video found in the dataset, good or bad.

Written atomically (a temporary file, then a rename on local disk), so a crash never leaves a
half-written manifest. Columns are `MANIFEST_SCHEMA`; see docs/storage.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from im2flow_storage.paths import ensure_dir, exists, filesystem, manifest_url

MANIFEST_SCHEMA = pa.schema([
    ("video_id", pa.string()),  # the path relative to the dataset root, without extension
    ("path", pa.string()),  # absolute path of the video file
    ("label", pa.string()),
    ("split", pa.string()),  # train / test / unused
    ("status", pa.string()),  # ok / corrupt / unreadable / empty / too_short / too_large / too_long
    ("error", pa.string()),  # why the status is not ok ("" when ok)
    ("warning", pa.string()),  # e.g. the container's frame count disagrees with the decoded one
    ("n_frames", pa.int64()),  # frames that actually decode
    ("container_frames", pa.int64()),  # the container's claim
    ("fps", pa.float64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("duration_s", pa.float64()),
    ("codec", pa.string()),
    ("size_bytes", pa.int64()),
    ("mtime", pa.float64()),  # seconds since the epoch
    ("official_splits", pa.string()),  # UCF-101/HMDB-51: the part in splits 1,2,3, e.g. "train,test,train"; else ""
])
OPTIONAL_COLUMNS = {"official_splits": ""}
"""Columns added after the first manifests: an older manifest reads with these defaults."""


class ManifestError(Exception):
    """The manifest is missing or unusable; the message says where and why."""


def write_manifest(rows: Iterable[Mapping[str, Any]], work_dir: str) -> str:
    """Write `rows` (dicts with MANIFEST_SCHEMA's columns) to `work_dir`/manifest.parquet; returns its URL."""
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=MANIFEST_SCHEMA)
    table = table.sort_by("video_id")
    url = manifest_url(work_dir)
    ensure_dir(work_dir)
    fs, path = filesystem(url)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp, filesystem=fs)
    fs.mv(tmp, path)
    return url


def read_manifest(work_dir: str) -> list[dict[str, Any]]:
    """Rows of `work_dir`/manifest.parquet as dicts; raises ManifestError if there is none."""
    url = manifest_url(work_dir)
    if not exists(url):
        raise ManifestError(f"no manifest at {url}: run `im2flow ingest DATASET --work-dir {work_dir}` first")
    fs, path = filesystem(url)
    try:
        table = pq.read_table(path, filesystem=fs)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ManifestError(f"cannot read manifest {url}: {exc}") from exc
    missing = set(MANIFEST_SCHEMA.names) - set(table.column_names) - set(OPTIONAL_COLUMNS)
    if missing:
        raise ManifestError(f"manifest {url} lacks columns {sorted(missing)}; re-run ingest")
    rows = table.to_pylist()
    for row in rows:
        for column, default in OPTIONAL_COLUMNS.items():
            if row.get(column) is None:
                row[column] = default
    return rows


def split_labels(rows: Iterable[Mapping[str, Any]], split_index: int | None = None) -> dict[str, tuple[str, str]]:
    """video id → (label, split) of every row: the manifest is the one source of labels and splits.

    `split_index` None: the split chosen at ingest (the `split` column); k: official split k of
    UCF-101/HMDB-51 (ManifestError when the dataset has no such split). Rows that are not usable
    (status other than ok / imported) are `unused`.
    """
    out = {}
    for row in rows:
        split = str(row["split"])
        if split_index is not None:
            official = [s for s in str(row.get("official_splits") or "").split(",")]
            if len(official) < split_index or not official[split_index - 1]:
                raise ManifestError(f"video {row['video_id']} has no official split {split_index}: only UCF-101 and "
                                    "HMDB-51 layouts (with their split files) define splits 1-3")
            split = official[split_index - 1]
        if row.get("status") not in ("ok", "imported"):
            split = "unused"
        out[str(row["video_id"])] = (str(row["label"]), split)
    return out
