"""One video of a flow store: its record (the attrs of its group) and the writer that streams it in.

The writer buffers a shard of frames at a time (`shard_frames`) and marks the video complete only
after every frame and flow is written and the count invariant (flows = frames − K) holds; see
`im2flow_storage.flow_store` for the store's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from im2flow_core.flow_encoding import decode_flow
from im2flow_storage.codecs import FlowImageCodec, ImageCodec


@dataclass(frozen=True)
class VideoRecord:
    """What a store knows about one video (the attrs of its group)."""

    video_id: str
    label: str
    split: str
    n_frames: int
    n_flows: int
    complete: bool
    height: int
    width: int
    source_size: int
    source_mtime: float
    n_clipped: int = 0


class VideoWriter:
    """Streams one video's frames and flow images into its group, a shard at a time.

    Call `append(rgb, flow_image)` per frame in order (flow_image None for the last K frames),
    then `finish()`, which checks flow count = frame count − K and only then marks it complete.
    """

    def __init__(self, group: zarr.Group, step: int, shard_frames: int,
                 rgb_codec: ImageCodec, flow_codec: FlowImageCodec,
                 on_complete: Callable[[VideoRecord], None] | None = None) -> None:
        self._group, self._step, self._shard = group, step, shard_frames
        self._on_complete = on_complete
        self._codecs = {"rgb": rgb_codec, "flow": flow_codec}
        self._buffers: dict[str, list[np.ndarray]] = {"rgb": [], "flow": []}
        self._written = {"rgb": 0, "flow": 0}
        self._frame_shape: tuple[int, int] | None = None
        self._n_clipped = 0
        self._bound = flow_codec.bound_px

    def append(self, rgb: np.ndarray, flow_image: np.ndarray | None) -> None:
        """Add frame t `(H, W, 3) uint8` and its flow image `(H, W, 3) float32`, or None past the end."""
        if self._frame_shape is None:
            self._frame_shape = rgb.shape[:2]
        if rgb.shape[:2] != self._frame_shape:
            raise ValueError(f"frame size changed from {self._frame_shape} to {rgb.shape[:2]}")
        self._push("rgb", rgb)
        if flow_image is not None:
            frames = len(self._buffers["rgb"]) + self._written["rgb"]
            if frames - 1 != len(self._buffers["flow"]) + self._written["flow"]:
                raise ValueError("flows must be appended with their frames, in order, before the tail")
            self._n_clipped += int(np.count_nonzero(np.abs(decode_flow(flow_image)) > self._bound))
            self._push("flow", flow_image)

    def _push(self, name: str, item: np.ndarray) -> None:
        self._buffers[name].append(item)
        if len(self._buffers[name]) == self._shard:
            self._flush(name)

    def _flush(self, name: str) -> None:
        items = self._buffers[name]
        if not items:
            return
        block = np.stack(items)
        start = self._written[name]
        array = self._array(name, block.shape[1:])
        array.resize((start + len(block),) + block.shape[1:])
        array[start:] = block
        self._written[name] += len(block)
        self._buffers[name] = []

    def _array(self, name: str, frame_shape: tuple[int, ...]) -> zarr.Array[Any]:
        if name in self._group:
            member = self._group[name]
            if isinstance(member, zarr.Array):
                return member
        dtype = "uint8" if name == "rgb" else "float32"
        return self._group.create_array(
            name, shape=(0,) + frame_shape, dtype=dtype, chunks=(1,) + frame_shape,
            shards=(self._shard,) + frame_shape, serializer=self._codecs[name], compressors=[Crc32cCodec()],
            filters=None, fill_value=0)

    def finish(self, attrs: Mapping[str, Any] | None = None) -> VideoRecord:
        """Flush, check the count invariant, then mark the video complete; returns its record.

        `attrs` (JSON-able) are recorded with the video, e.g. an import's provenance.
        """
        self._flush("rgb")
        self._flush("flow")
        n_frames, n_flows = self._written["rgb"], self._written["flow"]
        if n_frames <= self._step:
            raise ValueError(f"{n_frames} frame(s) decoded, at least {self._step + 1} needed for step {self._step}")
        if n_flows != n_frames - self._step:
            raise ValueError(f"{n_flows} flows for {n_frames} frames; expected {n_frames - self._step}")
        height, width = self._frame_shape or (0, 0)
        self._group.attrs.update({**dict(attrs or {}), "n_frames": n_frames, "n_flows": n_flows, "height": height,
                                  "width": width, "n_clipped": self._n_clipped, "complete": True})
        record = record_from_attrs(dict(self._group.attrs))
        if self._on_complete is not None:
            self._on_complete(record)
        return record


def record_from_attrs(attrs: Mapping[str, Any]) -> VideoRecord:
    """The VideoRecord of a video group's attrs (defaults for fields an older store lacks)."""
    return VideoRecord(video_id=attrs["video_id"], label=attrs.get("label", ""), split=attrs.get("split", ""),
                       n_frames=int(attrs.get("n_frames", 0)), n_flows=int(attrs.get("n_flows", 0)),
                       complete=bool(attrs.get("complete", False)), height=int(attrs.get("height", 0)),
                       width=int(attrs.get("width", 0)), source_size=int(attrs.get("source_size", -1)),
                       source_mtime=float(attrs.get("source_mtime", -1.0)), n_clipped=int(attrs.get("n_clipped", 0)))
