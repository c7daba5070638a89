"""Fast random access to one frame of a flow-store array, without zarr's per-call machinery.

zarr-python's asynchronous read path costs about a millisecond per call, more than decoding a
small frame. The flow store's arrays have a fixed, simple layout (one frame per chunk, shards of
S frames, the shard index at the end of each shard file, default "/" chunk keys), so a frame is one
cached index lookup plus one ranged read, decoded by the array's own codec. Arrays of any other
layout raise `UnsupportedLayout`, and callers fall back to zarr.

Checksums are verified as zarr would: the shard index's CRC32C on its first read, and each frame's
CRC32C (stores written since the chunk checksum was added; older arrays have only the index's).
A mismatch raises `CorruptFrame` naming the array (hence the video) and the frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import FsspecStore, LocalStore

from im2flow_storage.codecs import FlowImageCodec, ImageCodec

_MISSING = np.uint64(2**64 - 1)


class UnsupportedLayout(Exception):
    """The array is not laid out as the flow store writes it."""


class CorruptFrame(ValueError):
    """Stored bytes do not match their CRC32C: the message names the array, the frame and the shard file."""


def _intact(data: bytes, size: int) -> bool:
    """Whether `data` has the expected `size` and ends in the CRC32C of the rest (little-endian, as zarr stores it)."""
    return len(data) == size and np.uint32(google_crc32c.value(data[:-4])).tobytes() == data[-4:]


class FrameReader:
    """Reads frame t `(H, W, C)` of a sharded `(T, H, W, C)` flow-store array, checksums verified.

    `name` (e.g. the video id) is put in error messages; it defaults to the array's path.
    """

    def __init__(self, array: zarr.Array[Any], name: str | None = None) -> None:
        meta: Any = array.metadata  # v3 metadata (checked below); v2 has no codecs and is refused
        codecs: tuple[Any, ...] = tuple(getattr(meta, "codecs", ()))
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            raise UnsupportedLayout("not a sharded array")
        sharding = codecs[0]
        inner = sharding.codecs
        checked = len(inner) == 2 and isinstance(inner[1], Crc32cCodec)
        if (len(inner) != 1 + checked or not isinstance(inner[0], (FlowImageCodec, ImageCodec))
                or sharding.index_location.value != "end"
                or [type(c) for c in sharding.index_codecs] != [BytesCodec, Crc32cCodec]
                or not isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding)
                or meta.chunk_key_encoding.separator != "/" or sharding.chunk_shape[0] != 1
                or tuple(sharding.chunk_shape[1:]) != tuple(array.shape[1:])):
            raise UnsupportedLayout("unexpected codecs, chunking or key encoding")
        self._codec = inner[0]
        self._checked = checked
        self._name = f"{name} ({array.path})" if name else array.path
        self._frame_shape = tuple(array.shape[1:])
        self._shard_frames = int(meta.chunk_grid.chunk_shape[0])
        self._length = int(array.shape[0])
        self._dtype = array.dtype
        store = array.store
        prefix = f"{array.path}/c" if array.path else "c"
        tail = "/0" * (len(array.shape) - 1)
        self._read: Callable[[int, int, int], bytes]
        if isinstance(store, LocalStore):
            root = str(store.root)
            self._read = lambda shard, start, size: _read_local(os.path.join(root, f"{prefix}/{shard}{tail}"), start,
                                                                size)
        elif isinstance(store, FsspecStore):
            fs, base = _sync_filesystem(store.fs), store.path.rstrip("/")
            self._read = lambda shard, start, size: _read_fsspec(fs, f"{base}/{prefix}/{shard}{tail}", start, size)
        else:
            raise UnsupportedLayout(f"store type {type(store).__name__}")
        self._indexes: dict[int, np.ndarray] = {}

    def _index(self, shard: int) -> np.ndarray:
        if shard not in self._indexes:
            size = 16 * self._shard_frames + 4  # (offset, nbytes) uint64 pairs, then a CRC32C
            raw = self._read(shard, -size, size)
            if not _intact(raw, size):
                raise CorruptFrame(f"{self._name}: the index of shard {shard} (frames {shard * self._shard_frames}–"
                                   f"{(shard + 1) * self._shard_frames - 1}) fails its CRC32C check")
            self._indexes[shard] = np.frombuffer(raw[:-4], "<u8").reshape(self._shard_frames, 2)
        return self._indexes[shard]

    def _blob(self, t: int) -> bytes | None:
        if not 0 <= t < self._length:
            raise IndexError(f"frame {t} out of range for an array of {self._length} frames")
        shard, slot = divmod(t, self._shard_frames)
        offset, size = self._index(shard)[slot]
        if offset == _MISSING:
            return None
        blob = self._read(shard, int(offset), int(size))
        if self._checked:
            if not _intact(blob, int(size)):
                raise CorruptFrame(f"{self._name}: frame {t} (shard {shard}) fails its CRC32C check: the stored bytes "
                                   "are corrupted; re-extract this video")
            blob = blob[:-4]
        return blob

    def read(self, t: int) -> np.ndarray:
        """Frame `t` (0 ≤ t < T), decoded as zarr would: `(H, W, C)`."""
        blob = self._blob(t)
        if blob is None:  # never written: the fill value
            return np.zeros(self._frame_shape, self._dtype)
        return self._codec.decode_frames(blob, (1, *self._frame_shape))[0]

    def read_flow(self, t: int) -> np.ndarray:
        """Flow t of a flow array as `(H, W, 2) float32` px (u, v), without the sin/cos/M detour."""
        if not isinstance(self._codec, FlowImageCodec):
            raise TypeError("read_flow needs a flow array")
        blob = self._blob(t)
        if blob is None:
            return np.zeros(self._frame_shape[:-1] + (2,), np.float32)
        return self._codec.decode_uv(blob, (*self._frame_shape[:-1], 2))


def _read_local(path: str, start: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(start, os.SEEK_END if start < 0 else os.SEEK_SET)
        return handle.read(size)


def _sync_filesystem(fs: Any) -> Any:  # any fsspec filesystem
    """A blocking twin of zarr's asynchronous filesystem (its event loop is zarr's own, not ours)."""
    if not getattr(fs, "asynchronous", False):
        return fs
    import fsspec

    protocol = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    return fsspec.filesystem(protocol, **{k: v for k, v in fs.storage_options.items() if k != "asynchronous"})


def _read_fsspec(fs: Any, path: str, start: int, size: int) -> bytes:  # any fsspec filesystem
    if start < 0:
        return fs.tail(path, size)
    return fs.cat_file(path, start=start, end=start + size)
