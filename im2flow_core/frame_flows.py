"""Pair a stream of frames with the flow that starts at each: the extraction invariant in one place.

For frames f_0 … f_{T-1} and a step K ≥ 1, flow_t is the optical flow from f_t to f_{t+K}, for
t = 0 … T-K-1. So there are exactly T − K flows, flow index t belongs to frame index t, and the last
K frames have none. (Frame stride is applied before this: f_t is the t-th *sampled* frame.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from im2flow_core.optical_flow import FlowEstimator


@dataclass(frozen=True)
class FrameFlow:
    """Frame `index` `(H, W, 3) uint8` RGB and its flow `(H, W, 2) float32` px, or None for the last K."""

    index: int
    rgb: np.ndarray
    flow: np.ndarray | None


def iter_frame_flows(frames: Iterable[np.ndarray], estimator: FlowEstimator, step: int = 1) -> Iterator[FrameFlow]:
    """Yield every frame in order with its flow to the frame `step` later (None for the last `step`).

    Holds at most `step + 1` frames in memory; an estimator with `calc_batch` (the torch TV-L1) gets
    its pairs `batch_size` at a time, holding `batch_size + step` frames.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if hasattr(estimator, "calc_batch"):
        yield from _iter_batched(frames, estimator, step, max(1, int(getattr(estimator, "batch_size", 16))))
        return
    window: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
    for index, rgb in enumerate(frames):
        window.append((index, rgb, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        if len(window) > step:
            first_index, first_rgb, first_gray = window.popleft()
            yield FrameFlow(first_index, first_rgb, estimator.calc(first_gray, window[-1][2]))
    for index, rgb, _ in window:
        yield FrameFlow(index, rgb, None)


def _iter_batched(frames: Iterable[np.ndarray], estimator: FlowEstimator, step: int,
                  batch_size: int) -> Iterator[FrameFlow]:
    """`iter_frame_flows` for estimators that compute many pairs at once (same order and output)."""
    window: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
    pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # (index, rgb, gray0, gray1)

    def flush() -> Iterator[FrameFlow]:
        flows = estimator.calc_batch([p[2] for p in pending], [p[3] for p in pending])  # type: ignore[attr-defined]
        for (index, rgb, _, _), flow in zip(pending, flows):
            yield FrameFlow(index, rgb, flow)
        pending.clear()

    for index, rgb in enumerate(frames):
        window.append((index, rgb, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)))
        if len(window) > step:
            first_index, first_rgb, first_gray = window.popleft()
            pending.append((first_index, first_rgb, first_gray, window[-1][2]))
            if len(pending) == batch_size:
                yield from flush()
    if pending:
        yield from flush()
    for index, rgb, _ in window:
        yield FrameFlow(index, rgb, None)
