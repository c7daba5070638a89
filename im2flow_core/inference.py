"""Running G on still images of any size: resize to the network's grid, predict, resize back.

An image `(H, W, 3) uint8` RGB is resized so its shorter side is the size G was trained at
(`input_short_side`), each side rounded to a multiple of G's stride; G's flow is resized back to
`(H, W)` and its vectors rescaled by the same ratios (u by W/W', v by H/H'), so the result is in
pixels of the original image.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_core.unet import UNetGenerator


def rgb_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """`(H, W, 3) uint8` RGB → `(3, H, W)` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def network_size(height: int, width: int, short_side: int, stride: int) -> tuple[int, int]:
    """(H', W') for G: shorter side ≈ `short_side`, aspect kept, both multiples of `stride`."""
    scale = short_side / min(height, width)
    def snap(v: float) -> int:
        return max(stride, int(round(v / stride)) * stride)
    return snap(height * scale), snap(width * scale)


@torch.no_grad()
def predict_flow_images(model: UNetGenerator, images: list[np.ndarray], input_short_side: int,
                        device: str | torch.device = "cpu") -> list[np.ndarray]:
    """Flow images `(H, W, 3) float32` (sin θ, cos θ, M px) for RGB images of any sizes."""
    model.eval()
    out = []
    for rgb in images:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        height, width = rgb.shape[:2]
        h2, w2 = network_size(height, width, input_short_side, model.stride)
        resized = cv2.resize(rgb, (w2, h2), interpolation=cv2.INTER_AREA if h2 * w2 < height * width else cv2.INTER_LINEAR)
        pred = model.to_flow_image(model(rgb_to_tensor(resized)[None].to(device)))[0]
        flow = decode_flow(pred.permute(1, 2, 0).float().cpu().numpy())  # (h2, w2, 2) px of the resized image
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * np.array([width / w2, height / h2], np.float32)
        out.append(encode_flow(flow))
    return out


def motion_potential(flow_image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean predicted magnitude (px) of a flow image `(H, W, 3)`, optionally over a boolean mask."""
    magnitude = flow_image[..., 2]
    if mask is not None:
        if not mask.any():
            return float("nan")
        magnitude = magnitude[mask]
    return float(magnitude.mean())
