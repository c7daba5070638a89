"""Zarr v3 codecs for im2flow's arrays: compact, documented, and registered on import.

`im2flow.flow_image` stores the 3-channel flow image (sin θ, cos θ, M) of one frame as its flow
(u, v), compressed by `im2flow_storage.flow_compression` (by default with a guaranteed end-point error
≤ 0.085 px). M is not stored twice: it is recomputed on decode, so the array still reads back as
the full 3-channel image. See docs/storage.md for the measurements behind the choice.

`im2flow.image` stores RGB frames as JPEG (quality 95 by default) or losslessly as PNG.

Each encoded chunk is a small container: magic, plane count, then each plane's byte length and
bytes, so a chunk of several frames is still one blob.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import imagecodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import JSON, parse_named_configuration
from zarr.registry import register_codec

from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_storage.flow_compression import flow_compression

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec

_MAGIC = b"I2F1"


def _pack(planes: list[bytes]) -> bytes:
    header = _MAGIC + struct.pack("<I", len(planes)) + b"".join(struct.pack("<I", len(p)) for p in planes)
    return header + b"".join(planes)


def _unpack(blob: bytes) -> list[bytes]:
    if blob[:4] != _MAGIC:
        raise ValueError("not an im2flow chunk (bad magic)")
    (count,) = struct.unpack_from("<I", blob, 4)
    lengths = struct.unpack_from(f"<{count}I", blob, 8)
    planes, offset = [], 8 + 4 * count
    for length in lengths:
        planes.append(blob[offset : offset + length])
        offset += length
    return planes


@dataclass(frozen=True)
class FlowImageCodec(ArrayBytesCodec):
    """Array→bytes codec for `(..., H, W, 3) float32` flow images; `compression` says how."""

    is_fixed_size = False
    compression: tuple[tuple[str, Any], ...]  # sorted (key, value) pairs: hashable, like every zarr codec

    def __init__(self, **compression: Any) -> None:
        impl = flow_compression(compression)  # validates
        object.__setattr__(self, "compression", tuple(sorted(impl.config().items())))
        object.__setattr__(self, "_impl", impl)

    @property
    def bound_px(self) -> float:
        """Largest |u| or |v| (px) stored without clipping."""
        return self._impl.bound_px  # type: ignore[attr-defined]  # every implementation has it; the protocol does not say

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        """Build from zarr metadata."""
        _, config = parse_named_configuration(data, "im2flow.flow_image")
        return cls(**config)

    def to_dict(self) -> dict[str, JSON]:
        """Zarr metadata for this codec."""
        return {"name": "im2flow.flow_image", "configuration": dict(self.compression)}

    def encode_frames(self, images: np.ndarray) -> bytes:
        """Encode flow images `(..., H, W, 3)` into one blob."""
        images = np.asarray(images, dtype=np.float32)
        planes: list[bytes] = []
        for image in images.reshape((-1,) + images.shape[-3:]):
            frame_planes = self._impl.encode(decode_flow(image))  # type: ignore[attr-defined]
            planes.append(_pack(frame_planes))
        return _pack(planes)

    def decode_frames(self, blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Decode a blob back into flow images of `shape` `(..., H, W, 3)` float32."""
        return encode_flow(self.decode_uv(blob, shape[:-1] + (2,)))

    def decode_uv(self, blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Decode a blob straight to flow `(..., H, W, 2)` float32 px (u, v), skipping the image."""
        frames = _unpack(blob)
        out = np.empty((len(frames),) + tuple(shape[-3:]), np.float32)
        for k, frame in enumerate(frames):
            out[k] = self._impl.decode(_unpack(frame))  # type: ignore[attr-defined]
        return out.reshape(shape)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        data = self.decode_frames(chunk_bytes.to_bytes(), tuple(chunk_spec.shape))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(data)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        blob = self.encode_frames(chunk_array.as_numpy_array())
        return chunk_spec.prototype.buffer.from_bytes(blob)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        """Variable-size codec: the size is not known in advance."""
        raise NotImplementedError


@dataclass(frozen=True)
class ImageCodec(ArrayBytesCodec):
    """Array→bytes codec for `(..., H, W, 3) uint8` RGB frames: JPEG (lossy) or PNG (lossless)."""

    is_fixed_size = False
    format: Literal["jpeg", "png"] = "jpeg"
    quality: int = 95

    def __init__(self, *, format: Literal["jpeg", "png"] = "jpeg", quality: int = 95) -> None:
        if format not in ("jpeg", "png"):
            raise ValueError(f"image format must be 'jpeg' or 'png', got {format!r}")
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "quality", int(quality))

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        """Build from zarr metadata."""
        _, config = parse_named_configuration(data, "im2flow.image")
        return cls(**config)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, JSON]:
        """Zarr metadata for this codec."""
        return {"name": "im2flow.image", "configuration": {"format": self.format, "quality": self.quality}}

    def _encode_one(self, frame: np.ndarray) -> bytes:
        if self.format == "png":
            return cast(bytes, imagecodecs.png_encode(frame))
        return cast(bytes, imagecodecs.jpeg8_encode(frame, level=self.quality))

    def decode_frames(self, blob: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Decode a blob back into RGB frames of `shape` `(..., H, W, 3)` uint8."""
        decode = imagecodecs.png_decode if self.format == "png" else imagecodecs.jpeg8_decode
        frames = [decode(p) for p in _unpack(blob)]
        return np.stack(frames).reshape(shape).astype(np.uint8, copy=False)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        data = self.decode_frames(chunk_bytes.to_bytes(), tuple(chunk_spec.shape))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(data)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        array = np.ascontiguousarray(chunk_array.as_numpy_array(), dtype=np.uint8)
        frames = array.reshape((-1,) + array.shape[-3:])
        return chunk_spec.prototype.buffer.from_bytes(_pack([self._encode_one(f) for f in frames]))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        """Variable-size codec: the size is not known in advance."""
        raise NotImplementedError


register_codec("im2flow.flow_image", FlowImageCodec)
register_codec("im2flow.image", ImageCodec)
