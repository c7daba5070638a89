"""Flow visualisation with the Middlebury colour wheel (Baker et al., IJCV 2011).

Hue gives the direction, saturation the magnitude relative to `max_magnitude`; zero flow is white.
Outputs are `(H, W, 3) uint8` RGB.
"""

from __future__ import annotations

import numpy as np

from im2flow_core.flow_encoding import decode_flow


def make_colorwheel() -> np.ndarray:
    """The 55-entry Middlebury colour wheel `(55, 3) float64` RGB in [0, 255]."""
    segments = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)),
                (4, (0, 255, 0), (0, 255, 255)), (11, (0, 255, 255), (0, 0, 255)),
                (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]
    rows = []
    for n, start, end in segments:
        ramp = np.arange(n)[:, None] / n
        rows.append(np.asarray(start) + ramp * (np.asarray(end) - np.asarray(start)))
    return np.concatenate(rows, axis=0)


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Render flow `(H, W, 2)` px (u right, v down) as `(H, W, 3) uint8` RGB.

    `max_magnitude` (px) maps to full saturation; by default the largest magnitude in `flow`, so
    images of one sequence are comparable only when the caller passes a shared value.
    """
    flow = np.asarray(flow, dtype=np.float64)
    u, v = flow[..., 0], flow[..., 1]
    bad = ~(np.isfinite(u) & np.isfinite(v))
    u, v = np.where(bad, 0.0, u), np.where(bad, 0.0, v)
    magnitude = np.hypot(u, v)
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max(initial=0.0))
    scale = scale if scale > 1e-9 else 1.0
    wheel = make_colorwheel()
    n_colors = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; the Middlebury convention
    position = (angle + 1) / 2 * (n_colors - 1)
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n_colors
    frac = (position - k0)[..., None]
    color = (1 - frac) * wheel[k0] / 255 + frac * wheel[k1] / 255
    radius = np.clip(magnitude / scale, 0, 1)[..., None]
    color = 1 - radius * (1 - color)  # desaturate towards white at zero motion
    color[bad] = 0
    return np.clip(np.rint(color * 255), 0, 255).astype(np.uint8)


def flow_image_to_color(flow_image: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Render a 3-channel flow image `(H, W, 3)` (sin θ, cos θ, M px) as `(H, W, 3) uint8` RGB."""
    return flow_to_color(decode_flow(flow_image), max_magnitude)
