"""Video probing and streaming decode with OpenCV's FFmpeg backend.

Frames are `(H, W, 3) uint8` RGB. Decoding streams: no function here holds a whole video in memory.
Frame counts are what actually decodes, never the container's claim (which lies for truncated or
badly muxed files).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from im2flow_core.errors import VideoDecodeError, VideoError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv")


class VideoStatus(str, Enum):
    """Outcome of probing one video; only `ok` videos are extracted."""

    ok = "ok"
    corrupt = "corrupt"  # the container or codec cannot be decoded
    unreadable = "unreadable"  # missing, not a file, or no permission
    empty = "empty"  # zero bytes
    too_short = "too_short"  # decodes, but fewer frames than a flow needs
    too_large = "too_large"  # frames of more pixels than the configured limit
    too_long = "too_long"  # more frames than the configured limit


@dataclass(frozen=True)
class VideoProbe:
    """What probing a video found. Counts are decoded frames; sizes are of the decoded frames."""

    status: VideoStatus
    error: str = ""
    warning: str = ""
    n_frames: int = 0
    container_frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    codec: str = ""

    @property
    def duration_s(self) -> float:
        """Duration in seconds from decoded frames and fps (0 when fps is unknown)."""
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def _open_capture(path: str) -> cv2.VideoCapture:
    # Force the FFmpeg backend: the default chain would treat names with '%' as image sequences.
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoDecodeError(path, "cannot open: not a video container OpenCV/FFmpeg can read, or truncated")
    return capture


def _check_readable(path: str) -> VideoProbe | None:
    """Return a failing probe for missing/unreadable/empty paths, None if the file can be read."""
    try:
        if not os.path.isfile(path):
            reason = "not a regular file" if os.path.exists(path) else "file does not exist"
            return VideoProbe(VideoStatus.unreadable, error=reason)
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        return VideoProbe(VideoStatus.unreadable, error=f"{type(exc).__name__}: {exc.strerror or exc}")
    if size == 0:
        return VideoProbe(VideoStatus.empty, error="file is empty (0 bytes)")
    return None


def probe_video(path: str, min_frames: int = 2, max_frame_pixels: int | None = None,
                max_frames: int | None = None) -> VideoProbe:
    """Probe a video by decoding every frame; never raises for bad input.

    Returns the status (`ok`, `corrupt`, `unreadable`, `empty`, `too_short`, `too_large`,
    `too_long`), the decoded frame count, the container's claimed count, fps, decoded width/height
    and the codec fourcc. `min_frames` is the fewest decoded frames a usable video needs (step + 1
    for flow). `max_frame_pixels` (width × height) is checked from the container's header before a
    frame is decoded, and again on the first frame; counting stops after `max_frames` + 1 frames.
    """
    failed = _check_readable(path)
    if failed is not None:
        return failed
    try:
        capture = _open_capture(path)
    except VideoError as exc:
        return VideoProbe(VideoStatus.corrupt, error=exc.reason)
    try:
        claimed = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC) or 0)
        codec = "".join(chr((fourcc >> 8 * i) & 0xFF) for i in range(4)).strip("\x00 ") if fourcc else ""
        header_w = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        header_h = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if max_frame_pixels is not None and header_w * header_h > max_frame_pixels:
            return VideoProbe(VideoStatus.too_large, error=_too_large(header_w, header_h, max_frame_pixels),
                              container_frames=claimed, fps=fps, width=header_w, height=header_h, codec=codec)
        ok, first = capture.read()
        if not ok or first is None or first.size == 0:
            return VideoProbe(VideoStatus.corrupt, error="container opens but no frame decodes",
                              container_frames=claimed, fps=fps, codec=codec)
        height, width = first.shape[:2]
        if max_frame_pixels is not None and width * height > max_frame_pixels:
            return VideoProbe(VideoStatus.too_large, error=_too_large(width, height, max_frame_pixels),
                              container_frames=claimed, fps=fps, width=width, height=height, codec=codec)
        n_frames = 1
        # grab() demuxes and decodes without the colour conversion: counts what really decodes.
        while capture.grab():
            n_frames += 1
            if max_frames is not None and n_frames > max_frames:
                return VideoProbe(VideoStatus.too_long, error=f"more than {max_frames:,} frames (the limit, "
                                  "ingest.max_frames)", n_frames=n_frames, container_frames=claimed, fps=fps,
                                  width=width, height=height, codec=codec)
    except cv2.error as exc:
        return VideoProbe(VideoStatus.corrupt, error=f"OpenCV error while decoding: {exc}")
    finally:
        capture.release()
    warning = ""
    if claimed and claimed != n_frames:
        warning = f"container claims {claimed} frames, {n_frames} decode"
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        warning = (warning + "; " if warning else "") + f"implausible fps {fps!r}, recorded as 0"
        fps = 0.0
    status = VideoStatus.ok if n_frames >= min_frames else VideoStatus.too_short
    error = "" if status is VideoStatus.ok else f"{n_frames} decodable frame(s), at least {min_frames} needed"
    return VideoProbe(status, error=error, warning=warning, n_frames=n_frames, container_frames=claimed,
                      fps=fps, width=width, height=height, codec=codec)


def _too_large(width: int, height: int, limit: int) -> str:
    return (f"frames of {width}×{height} = {width * height:,} pixels, over the limit of {limit:,} "
            "(ingest.max_frame_pixels)")


def resolve_frame_size(width: int, height: int, short_side: int | None = None,
                       size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Output `(width, height)` for a `width`×`height` video.

    `size` (W, H) wins; else `short_side` scales the shorter side to that many pixels, keeping the
    aspect ratio (rounded to the nearest pixel); with neither the size is unchanged.
    """
    if size is not None:
        return int(size[0]), int(size[1])
    if short_side is None:
        return int(width), int(height)
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def iter_frames(path: str, *, stride: int = 1, max_frames: int | None = None,
                size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Stream decoded frames `(H, W, 3) uint8` RGB: every `stride`-th frame, at most `max_frames`.

    `size` is the output `(W, H)`; frames are resized with area interpolation when shrinking and
    bilinear when enlarging. Stops at the first frame that fails to decode (truncated files end
    early rather than fail). Raises VideoDecodeError if the file cannot be opened at all.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    capture = _open_capture(path)
    try:
        index = emitted = 0
        while max_frames is None or emitted < max_frames:
            if index % stride == 0:
                ok, bgr = capture.read()
                if not ok or bgr is None:
                    return
                if size is not None and (bgr.shape[1], bgr.shape[0]) != tuple(size):
                    shrinking = size[0] * size[1] < bgr.shape[0] * bgr.shape[1]
                    bgr = cv2.resize(bgr, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
                emitted += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            elif not capture.grab():
                return
            index += 1
    except cv2.error as exc:
        raise VideoDecodeError(path, f"OpenCV error while decoding: {exc}") from exc
    finally:
        capture.release()
