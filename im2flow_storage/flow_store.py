"""Flow stores: Zarr v3 groups holding RGB frames and encoded flow images per video.

Layout of one store (`<work_dir>/flows/<algorithm>-<fingerprint>.zarr`):
- attrs["im2flow"]: format version, fingerprint, the extraction configuration, the encoding and
  the library versions. A different configuration has a different fingerprint, hence its own store.
- `videos/<key>/rgb`:  `(T, H, W, 3) uint8` RGB frames, codec `im2flow.image`.
- `videos/<key>/flow`: `(T - K, H, W, 3) float32` flow images (sin θ, cos θ, M px), codec
  `im2flow.flow_image`. flow[t] is the flow from rgb[t] to rgb[t + K] (K = the store's step).
- attrs of `videos/<key>`: video_id, n_frames, n_flows, the source file's size and mtime, and
  `complete`, which becomes true only after every byte of the video is written; also the label and
  split as they were at extraction, which readers use only for a store with no manifest beside it:
  the work dir's manifest is the one source of labels and splits (`records` reads them from it), so
  a re-ingest with other splits never needs a re-extraction and never trains on a stale partition.
- `index/<key>@<size>@<mtime>`: the completion index (`im2flow_storage.completion_index`), so
  planning lists what is complete instead of reading every video's attributes.

Both arrays are chunked one frame per chunk (O(1) random access to one pair) and sharded
`shard_frames` frames per file, so a million frames are ~2·10⁶ / shard_frames files, not millions.
Every frame carries a CRC32C (zarr's `crc32c` codec after ours), as does each shard's index: a
corrupted byte fails the read, naming the frame, instead of decoding to wrong pixels.
Each video is written by exactly one worker, which owns its group: no two processes write a shard.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal, cast

import numpy as np
import zarr
import zarr.errors

from im2flow_core.flow_encoding import decode_flow
from im2flow_storage.codecs import FlowImageCodec, ImageCodec
from im2flow_storage.completion_index import (
    INDEX_GROUP,
    delete_marker,
    ensure_index,
    group_json,
    list_names,
    marker_name,
    read_group_attrs,
    read_markers,
    write_marker,
)
from im2flow_storage.frame_reader import FrameReader, UnsupportedLayout
from im2flow_storage.manifest import read_manifest, split_labels
from im2flow_storage.paths import FLOWS_DIR, exists, filesystem, flows_url, join, manifest_url
from im2flow_storage.store_members import FlowStoreError as FlowStoreError
from im2flow_storage.store_members import member_array as member_array
from im2flow_storage.store_members import member_group as member_group
from im2flow_storage.video_writer import VideoRecord, VideoWriter, record_from_attrs

STORE_FORMAT_VERSION = 1
_KEY_SAFE = re.compile(r"[A-Za-z0-9._-]")

OpenMode = Literal["r", "r+", "a", "w", "w-"]
"""How zarr opens a store's group: read only, read-write, create if needed, overwrite, create new."""


def canonical_digest(data: Any, length: int = 12) -> str:
    """The first `length` hex digits of the SHA-256 of `data`'s canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """12-hex-digit SHA-256 of the canonical JSON of an extraction configuration."""
    return canonical_digest(config, 12)


def video_key(video_id: str) -> str:
    """Zarr node name for `video_id`: reversible, and safe on every filesystem and object store."""
    return "v-" + "".join(c if _KEY_SAFE.fullmatch(c) else "".join(f"+{b:02x}" for b in c.encode()) for c in video_id)


class FlowStore:
    """One flow store: its configuration and the videos it holds. Open with `open_flow_store`.

    Labels and splits come from the manifest of the work dir that holds the store (read once, when
    first needed): the split chosen at ingest, or official split `split_index` (1–3) of UCF-101 /
    HMDB-51. A store with no manifest beside it falls back to the labels recorded at extraction.
    """

    def __init__(self, url: str, group: zarr.Group, split_index: int | None = None) -> None:
        self.url = url
        self.split_index = split_index
        self._labels: dict[str, tuple[str, str]] | None = None
        self._labels_read = False
        self._group = group
        meta = dict(group.attrs).get("im2flow")
        if not isinstance(meta, dict) or "fingerprint" not in meta:
            raise FlowStoreError(f"{url} is not an im2flow flow store (no im2flow attributes)")
        self.meta: dict[str, Any] = meta
        self._fs, self._path = filesystem(url)

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the extraction configuration this store holds."""
        return str(self.meta["fingerprint"])

    @property
    def config(self) -> dict[str, Any]:
        """The extraction configuration (algorithm, parameters, resize, step, stride, encoding, ...)."""
        return dict(self.meta["config"])

    @property
    def step(self) -> int:
        """K: flow t goes from frame t to frame t + K."""
        return int(self.meta["config"]["step"])

    def for_split(self, split_index: int | None) -> FlowStore:
        """This store with the labels and splits of official split `split_index` (None: the ingest's split)."""
        return FlowStore(self.url, self._group, split_index)

    def labels(self) -> dict[str, tuple[str, str]] | None:
        """video id → (label, split) from the work dir's manifest, or None when the store has none beside it."""
        if not self._labels_read:
            work_dir = store_work_dir(self.url)
            if work_dir is not None and exists(manifest_url(work_dir)):
                self._labels = split_labels(read_manifest(work_dir), self.split_index)
            elif self.split_index is not None:
                raise FlowStoreError(f"{self.url} has no manifest beside it: official split {self.split_index} "
                                     "is unknown")
            self._labels_read = True
        return self._labels

    def _labelled(self, record: VideoRecord) -> VideoRecord:
        labels = self.labels()
        if labels is None:
            return record
        # A video the manifest no longer lists was removed from the dataset: it takes part in no split.
        label, split = labels.get(record.video_id, (record.label, "unused"))
        return replace(record, label=label, split=split)

    def _video_keys(self) -> list[str]:
        return [name for name in list_names(self._fs, f"{self._path}/videos") if name.startswith("v-")]

    def records(self, complete_only: bool = False) -> list[VideoRecord]:
        """Records of the videos in the store (sorted by id), optionally only complete ones.

        One listing and one concurrent batch of metadata reads, however many videos the store holds.
        """
        attrs = read_group_attrs(self._fs, f"{self._path}/videos", self._video_keys())
        out = [self._labelled(record_from_attrs(a)) for a in attrs.values() if "video_id" in a]
        return sorted((r for r in out if r.complete or not complete_only), key=lambda r: r.video_id)

    def complete_videos(self, sources: Mapping[str, tuple[int, float]]) -> set[str]:
        """Which of `sources` (video id → source size in bytes, mtime in s) are complete from that same source.

        Read from the completion index (two listings); complete videos missing from it (a store written
        before the index, or a crash between marking a video complete and indexing it) are read from
        their groups, concurrently, and indexed now. See `im2flow_storage.completion_index`.
        """
        keys = {video_key(v): v for v in sources}
        listed = set(self._video_keys())
        indexed = {k: src for k, src in read_markers(self._fs, self._path).items() if k in listed}
        for key, attrs in read_group_attrs(self._fs, f"{self._path}/videos", sorted(listed - indexed.keys())).items():
            if attrs.get("complete") and "video_id" in attrs:
                record = record_from_attrs(attrs)
                self._index(record)
                indexed[key] = (record.source_size, record.source_mtime)
        done = set()
        for key, video_id in keys.items():
            size, mtime = sources[video_id]
            found = indexed.get(key)
            if found is not None and found[0] == int(size) and abs(found[1] - float(mtime)) < 1e-3:
                done.add(video_id)
        return done

    def add_metadata_only_videos(self, attributes: Mapping[str, Mapping[str, Any]], indexed: bool = True) -> None:
        """Video groups holding only `attributes` (video id → attrs, as `finish` writes them), in one batch.

        For measuring planning and metadata reads at scale without writing frames; with `indexed` False
        the completion index is left without them (as in a store written before the index existed).
        """
        blobs = {}
        for video_id, attrs in attributes.items():
            key = video_key(video_id)
            blobs[f"{self._path}/videos/{key}/zarr.json"] = group_json({**attrs, "video_id": video_id})
            if indexed and attrs.get("complete"):
                name = marker_name(key, attrs["source_size"], attrs["source_mtime"])
                blobs[f"{self._path}/{INDEX_GROUP}/{name}/zarr.json"] = group_json()
        for folder in {p.rsplit("/", 1)[0] for p in blobs}:
            self._fs.makedirs(folder, exist_ok=True)  # local disks need the folders; a no-op on object stores
        self._fs.pipe(blobs)  # concurrent on object stores

    def _index(self, record: VideoRecord) -> None:
        write_marker(self._fs, self._path, marker_name(video_key(record.video_id), record.source_size,
                                                       record.source_mtime))

    @property
    def video_ids(self) -> list[str]:
        """Ids of the complete videos, sorted."""
        return [r.video_id for r in self.records(complete_only=True)]

    def _video_group(self, video_id: str) -> zarr.Group:
        try:
            return member_group(self._group, "videos", video_key(video_id))
        except KeyError:
            raise KeyError(f"video {video_id!r} is not in flow store {self.url}") from None

    def record(self, video_id: str) -> VideoRecord | None:
        """The record of `video_id`, or None if the store has no group for it."""
        try:
            return self._labelled(record_from_attrs(dict(self._video_group(video_id).attrs)))
        except KeyError:
            return None

    def is_complete(self, video_id: str, source_size: int | None = None, source_mtime: float | None = None) -> bool:
        """Whether `video_id` is complete and, when given, was made from a source of that size/mtime."""
        rec = self.record(video_id)
        if rec is None or not rec.complete:
            return False
        if source_size is not None and rec.source_size != source_size:
            return False
        return source_mtime is None or abs(rec.source_mtime - source_mtime) < 1e-3

    def begin_video(self, video_id: str, *, label: str, split: str, source_size: int, source_mtime: float,
                    shard_frames: int = 32) -> VideoWriter:
        """Start (or restart) writing `video_id`: any earlier partial data is deleted first."""
        videos = self._group.require_group("videos")
        key = video_key(video_id)
        if key in videos:
            old = record_from_attrs(dict(videos[key].attrs)) if "video_id" in videos[key].attrs else None
            if old is not None and old.complete:  # unindex first: the index never names an incomplete video
                delete_marker(self._fs, self._path, marker_name(key, old.source_size, old.source_mtime))
            del videos[key]
        group = videos.create_group(key, attributes={
            "video_id": video_id, "label": label, "split": split, "source_size": int(source_size),
            "source_mtime": float(source_mtime), "complete": False})
        enc = self.meta["config"]["encoding"]
        return VideoWriter(group, self.step, shard_frames,
                           ImageCodec(format=enc["rgb_format"], quality=enc["rgb_quality"]),
                           FlowImageCodec(**enc["flow_codec"]), on_complete=self._index)

    def _complete_group(self, video_id: str) -> zarr.Group:
        group = self._video_group(video_id)
        if not group.attrs.get("complete", False):
            raise FlowStoreError(f"video {video_id!r} in {self.url} is incomplete (extraction did not finish)")
        return group

    def read_rgb(self, video_id: str, t: int) -> np.ndarray:
        """Frame t of `video_id`: `(H, W, 3) uint8` RGB."""
        return np.asarray(member_array(self._complete_group(video_id), "rgb")[t])

    def read_flow_image(self, video_id: str, t: int) -> np.ndarray:
        """Flow image t of `video_id`: `(H, W, 3) float32` (sin θ, cos θ, M px)."""
        return np.asarray(member_array(self._complete_group(video_id), "flow")[t])

    def iter_rgb(self, video_id: str) -> Iterator[np.ndarray]:
        """The frames of `video_id` in order, `(H, W, 3) uint8` RGB, checksums verified (FrameReader)."""
        array = member_array(self._complete_group(video_id), "rgb")
        read = _frame_reader(array, f"video {video_id!r} rgb").read
        for t in range(array.shape[0]):
            yield read(t)

    def iter_flow(self, video_id: str) -> Iterator[np.ndarray]:
        """The flows of `video_id` in order, `(H, W, 2) float32` px (u, v); flow t goes from frame t to t + K."""
        array = member_array(self._complete_group(video_id), "flow")
        reader = _frame_reader(array, f"video {video_id!r} flow")
        for t in range(array.shape[0]):
            yield reader.read_flow(t) if hasattr(reader, "read_flow") else decode_flow(reader.read(t))

    def read_flow(self, video_id: str, t: int) -> np.ndarray:
        """Flow t of `video_id`: `(H, W, 2) float32` px (u, v), from frame t to t + K."""
        return decode_flow(self.read_flow_image(video_id, t))

    def read_pair(self, video_id: str, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame t and its flow: `(rgb (H, W, 3) uint8, flow (H, W, 2) float32 px, u first, v down)`.

        The flow goes from frame t to frame t + K; valid t are 0 … n_flows − 1 (IndexError otherwise).
        """
        group = self._complete_group(video_id)
        n_flows = int(cast(int, group.attrs["n_flows"]))
        if not -n_flows <= t < n_flows:
            raise IndexError(f"flow index {t} out of range for {video_id!r} ({n_flows} flows)")
        t = t % n_flows
        return np.asarray(member_array(group, "rgb")[t]), decode_flow(np.asarray(member_array(group, "flow")[t]))


class _ZarrFrames:
    """The FrameReader interface over plain zarr, for arrays of another layout."""

    def __init__(self, array: zarr.Array[Any]) -> None:
        self._array = array

    def read(self, t: int) -> np.ndarray:
        return np.asarray(self._array[t])


def _frame_reader(array: Any, name: str) -> Any:
    try:
        return FrameReader(array, name)
    except UnsupportedLayout:
        return _ZarrFrames(array)


def create_flow_store(work_dir: str, config: Mapping[str, Any], versions: Mapping[str, str]) -> FlowStore:
    """Open the store of `config` under `work_dir`, creating it (with its metadata) if needed.

    Called once by the driver before workers write; an existing store's configuration must match.
    A store is created only where nothing exists: a store whose root metadata is missing but whose
    videos are there gets its root metadata back (from `config`, which its name fingerprints).
    """
    fingerprint = config_fingerprint(config)
    url = join(flows_url(work_dir), f"{config['algorithm']}-{fingerprint}.zarr")
    if exists(join(url, "zarr.json")):
        store = FlowStore(url, zarr.open_group(url, mode="r+"))
        if store.fingerprint != fingerprint:
            raise FlowStoreError(f"{url} holds fingerprint {store.fingerprint}, expected {fingerprint}")
        ensure_index(*filesystem(url))  # a store written before the completion index gets one
        return store
    meta = {"format_version": STORE_FORMAT_VERSION, "fingerprint": fingerprint, "config": dict(config),
            "versions": dict(versions)}
    attributes = {"im2flow": json.loads(json.dumps(meta, default=str))}
    try:
        # "w-" creates only where nothing exists; never "w", which deletes what is there first: an
        # `exists` that answered False on a transient object-store error must not cost every video.
        group = zarr.open_group(url, mode="w-", attributes=attributes)
    except FileExistsError:
        # Something is there. Either the root metadata is readable after all (then "a" opens it), or it
        # was lost while the videos remain: the folder's name carries the fingerprint of `config`, so
        # writing the root metadata back from `config` restores exactly what it said. Nothing is deleted.
        group = zarr.open_group(url, mode="a", attributes=attributes)
        store = FlowStore(url, group)
        if store.fingerprint != fingerprint:
            raise FlowStoreError(f"{url} holds fingerprint {store.fingerprint}, expected {fingerprint}") from None
    group.require_group("videos")
    ensure_index(*filesystem(url))
    return FlowStore(url, group)


def list_flow_stores(work_dir: str) -> list[FlowStore]:
    """All flow stores under `work_dir`/flows, sorted by name."""
    root = flows_url(work_dir)
    if not exists(root):
        return []
    fs, path = filesystem(root)
    stores = []
    for entry in sorted(fs.ls(path, detail=False)):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".zarr"):
            url = join(root, name)
            try:
                stores.append(FlowStore(url, zarr.open_group(url, mode="r")))
            except (FlowStoreError, FileNotFoundError, zarr.errors.GroupNotFoundError):
                continue
    return stores


def store_work_dir(store_url: str) -> str | None:
    """The work dir holding the store at `store_url` (`<work_dir>/flows/<name>.zarr`), None for a store elsewhere."""
    parent, _, name = store_url.rstrip("/").rpartition("/")
    work_dir, _, folder = parent.rpartition("/")
    return work_dir if folder == FLOWS_DIR and name.endswith(".zarr") and work_dir else None


def open_flow_store(work_dir_or_url: str, fingerprint: str | None = None, mode: OpenMode = "r",
                    split_index: int | None = None) -> FlowStore:
    """Open a flow store for reading: a store URL, or a work directory holding one.

    In a work directory with several stores, `fingerprint` (or a unique prefix of it) chooses one;
    the error lists them otherwise. Use `store.video_ids` and `store.read_pair(video_id, t)`.
    Labels and splits are the manifest's: its ingest split, or official split `split_index`.
    """
    return _open_flow_store(work_dir_or_url, fingerprint, mode).for_split(split_index)


def _open_flow_store(work_dir_or_url: str, fingerprint: str | None, mode: OpenMode) -> FlowStore:
    if work_dir_or_url.rstrip("/").endswith(".zarr"):
        try:
            return FlowStore(work_dir_or_url, zarr.open_group(work_dir_or_url, mode=mode))
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise FlowStoreError(f"no flow store at {work_dir_or_url}") from exc
    stores = list_flow_stores(work_dir_or_url)
    if fingerprint is not None:
        stores = [s for s in stores if s.fingerprint.startswith(fingerprint)]
    if not stores:
        raise FlowStoreError(f"no flow store under {flows_url(work_dir_or_url)}"
                             + (f" with fingerprint {fingerprint}" if fingerprint else "; run `im2flow extract` first"))
    if len(stores) > 1:
        names = ", ".join(f"{s.fingerprint} ({s.config.get('algorithm')})" for s in stores)
        raise FlowStoreError(f"{len(stores)} flow stores under {flows_url(work_dir_or_url)}: {names}; "
                             "pass a fingerprint")
    if mode != "r":
        return FlowStore(stores[0].url, zarr.open_group(stores[0].url, mode=mode))
    return stores[0]
