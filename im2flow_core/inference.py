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
from im2flow_core.potential_head import pooled_activations
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
    """Flow images `(H, W, 3) float32` (sin θ, cos θ, M px) for RGB images of any sizes, in order.

    Images of one size go through G together (one batch: pass as many as fit on the device); in eval
    mode the result does not depend on the batch.
    """
    return predict_flow_and_features(model, images, input_short_side, device, features=False)[0]


@torch.no_grad()
def predict_flow_and_features(model: UNetGenerator, images: list[np.ndarray], input_short_side: int,
                              device: str | torch.device = "cpu",
                              features: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """As `predict_flow_images`, plus each image's pooled activations of G `(F,) float32`
    (`im2flow_core.potential_head.pooled_activations`; an empty list when `features` is False).
    """
    model.eval()
    out: list[np.ndarray | None] = [None] * len(images)
    pooled: list[np.ndarray | None] = [None] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, rgb in enumerate(images):
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        by_size.setdefault(rgb.shape[:2], []).append(i)
    for (height, width), indices in by_size.items():
        h2, w2 = network_size(height, width, input_short_side, model.stride)
        shrink = h2 * w2 < height * width
        batch = torch.stack([rgb_to_tensor(cv2.resize(images[i], (w2, h2), interpolation=cv2.INTER_AREA if shrink
                                                      else cv2.INTER_LINEAR)) for i in indices]).to(device)
        if features:
            raw, activations = pooled_activations(model, batch)
            for i, row in zip(indices, activations.cpu().numpy()):
                pooled[i] = row
        else:
            raw = model(batch)
        preds = model.to_flow_image(raw).permute(0, 2, 3, 1).float().cpu().numpy()
        ratio = np.array([width / w2, height / h2], np.float32)
        for i, pred in zip(indices, preds):
            flow = decode_flow(pred)  # (h2, w2, 2) px of the resized image
            out[i] = encode_flow(cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * ratio)
    return out, (pooled if features else [])  # type: ignore[return-value]


def motion_potential(flow_image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean predicted magnitude (px) of a flow image `(H, W, 3)`, optionally over a boolean mask."""
    magnitude = flow_image[..., 2]
    if mask is not None:
        if not mask.any():
            return float("nan")
        magnitude = magnitude[mask]
    return float(magnitude.mean())
