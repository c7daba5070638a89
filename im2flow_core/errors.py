"""Typed errors raised by the science layer; each carries the offending path and a reason."""

from __future__ import annotations


class VideoError(Exception):
    """A video that cannot be used, with the path and a human-readable reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class VideoDecodeError(VideoError):
    """The container or the codec failed while decoding frames."""
