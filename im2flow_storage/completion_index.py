"""The completion index of a flow store: what is complete, in one listing instead of one read per video.

Each video's group attribute `complete` is the source of truth. Beside it, the store keeps
`index/<key>@<source size>@<source mtime in µs>`, an empty Zarr group per complete video, written
*after* the group is marked complete and deleted *before* a video is rewritten. So the index never
names a video that is not complete: a crash between the two steps leaves a complete video out of the
index, which planning notices (a listed group without a marker), reads, and indexes again.

Planning 13,320 videos on an object store thus costs two listings (14 pages each on S3), not
13,320 metadata reads. Reading every video's attributes (`read_group_attrs`) fetches the
`zarr.json` files in one concurrent batch (fsspec `cat`), not one round trip after another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import fsspec

INDEX_GROUP = "index"


def group_json(attributes: Mapping[str, Any] | None = None) -> bytes:
    """The `zarr.json` of a Zarr v3 group with `attributes` (JSON-able)."""
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": dict(attributes or {})}).encode()


_GROUP_JSON = group_json()


def marker_name(key: str, source_size: int, source_mtime: float) -> str:
    """`<key>@<size>@<mtime µs>`: a video key (no '@' in it) and its source file's size (bytes) and mtime (s)."""
    return f"{key}@{int(source_size)}@{round(float(source_mtime) * 1e6)}"


def parse_marker(name: str) -> tuple[str, int, float] | None:
    """`(key, source size, source mtime s)` of a marker name, or None for anything else."""
    parts = name.rsplit("@", 2)
    if len(parts) != 3:
        return None
    try:
        return parts[0], int(parts[1]), int(parts[2]) / 1e6
    except ValueError:
        return None


def list_names(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    """Names of the entries directly under `folder` (none if it is missing), listed afresh (no cached listing)."""
    fs.invalidate_cache(folder)
    try:
        entries = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries]


def read_markers(fs: fsspec.AbstractFileSystem, store_path: str) -> dict[str, tuple[int, float]]:
    """Video key → (source size, mtime) of every marker in the store's index (one listing)."""
    out = {}
    for name in list_names(fs, f"{store_path}/{INDEX_GROUP}"):
        parsed = parse_marker(name)
        if parsed is not None:
            out[parsed[0]] = parsed[1:]
    return out


def ensure_index(fs: fsspec.AbstractFileSystem, store_path: str) -> None:
    """Create the index group of the store at `store_path` if it has none (once, by the driver)."""
    index = f"{store_path}/{INDEX_GROUP}"
    if not fs.exists(f"{index}/zarr.json"):
        fs.makedirs(index, exist_ok=True)  # local disks need the folder; a no-op on object stores
        fs.pipe_file(f"{index}/zarr.json", _GROUP_JSON)


def write_marker(fs: fsspec.AbstractFileSystem, store_path: str, name: str) -> None:
    """Create the marker group `name` in the index (one write on an object store)."""
    fs.makedirs(f"{store_path}/{INDEX_GROUP}/{name}", exist_ok=True)
    fs.pipe_file(f"{store_path}/{INDEX_GROUP}/{name}/zarr.json", _GROUP_JSON)


def delete_marker(fs: fsspec.AbstractFileSystem, store_path: str, name: str) -> None:
    """Remove the marker group `name` if it exists (errors other than absence raise)."""
    path = f"{store_path}/{INDEX_GROUP}/{name}"
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def read_group_attrs(fs: fsspec.AbstractFileSystem, folder: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Key → attributes of the Zarr groups `folder/<key>`, fetched concurrently; unreadable ones are left out."""
    keys = list(keys)
    if not keys:
        return {}
    # cat_ranges fetches the files concurrently on object stores, one GET each: `cat` of a list would
    # check each path first, and a range without a start (None) makes s3fs ask each file's size first.
    blobs = fs.cat_ranges([f"{folder}/{key}/zarr.json" for key in keys], 0, None, on_error="return")
    out = {}
    for key, blob in zip(keys, blobs):
        if isinstance(blob, BaseException):
            continue
        try:
            meta = json.loads(blob)
        except ValueError:
            continue
        if isinstance(meta, Mapping) and isinstance(meta.get("attributes"), Mapping):
            out[key] = dict(meta["attributes"])
    return out
