"""Im2Flow's motion encoding: optical flow (u, v) <-> the 3-channel flow image (sin θ, cos θ, M).

Conventions (used everywhere in im2flow):
- flow: `(..., 2) float32` in pixels, u first (to the right), v second (pointing down, image rows).
- flow image: `(..., 3) float32`, channels F1 = sin θ = v / M, F2 = cos θ = u / M, F3 = M = ‖(u, v)‖₂
  in pixels (Gao, Xiong & Grauman, CVPR 2018, Sec. 3.1).
- Where M < ZERO_MAGNITUDE_PX the direction is undefined; we set F1 = F2 = 0 there (and M keeps its
  tiny value), so decoding gives (≈0, ≈0) and a network is not asked to predict a random angle.
"""

from __future__ import annotations

import numpy as np

ZERO_MAGNITUDE_PX = 1e-6
"""Magnitudes below this (pixels) have no direction: F1 = F2 = 0."""

CHANNEL_NAMES = ("sin_theta", "cos_theta", "magnitude")


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """Encode flow `(..., 2)` (u, v) in px into the flow image `(..., 3)` float32 (sin θ, cos θ, M)."""
    flow = np.asarray(flow, dtype=np.float32)
    if flow.shape[-1] != 2:
        raise ValueError(f"flow must have 2 channels (u, v) in its last axis, got shape {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(u, v)
    moving = magnitude >= ZERO_MAGNITUDE_PX
    safe = np.where(moving, magnitude, 1.0)
    sin_theta = np.where(moving, v / safe, 0.0)
    cos_theta = np.where(moving, u / safe, 0.0)
    return np.stack([sin_theta, cos_theta, magnitude], axis=-1).astype(np.float32)


def decode_flow(flow_image: np.ndarray) -> np.ndarray:
    """Decode a flow image `(..., 3)` (sin θ, cos θ, M) into flow `(..., 2)` float32 (u, v) in px.

    u = cos θ · M, v = sin θ · M, as in the paper. The direction channels are deliberately not
    renormalised: where a network is unsure of the direction its (sin, cos) shrinks towards 0, and
    the decoded vector shrinks with it instead of pointing confidently the wrong way.
    """
    flow_image = np.asarray(flow_image, dtype=np.float32)
    if flow_image.shape[-1] != 3:
        raise ValueError(f"flow image must have 3 channels, got shape {flow_image.shape}")
    sin_theta, cos_theta, magnitude = flow_image[..., 0], flow_image[..., 1], flow_image[..., 2]
    return np.stack([cos_theta * magnitude, sin_theta * magnitude], axis=-1).astype(np.float32)


def quantize_flow(flow: np.ndarray, step_px: float) -> np.ndarray:
    """Round flow `(..., 2)` px to multiples of `step_px`; returns int32 levels `(..., 2)` (u, v).

    The rounding error of each component is at most step_px / 2, so the end-point error is at
    most step_px / √2. Callers clip the levels to their storage range.
    """
    if step_px <= 0:
        raise ValueError(f"step_px must be > 0, got {step_px}")
    return np.rint(np.asarray(flow, dtype=np.float64) / step_px).astype(np.int32)


def dequantize_flow(levels: np.ndarray, step_px: float) -> np.ndarray:
    """Inverse of `quantize_flow`: int levels `(..., 2)` -> flow `(..., 2)` float32 px."""
    return (np.asarray(levels, dtype=np.float32) * np.float32(step_px)).astype(np.float32)
