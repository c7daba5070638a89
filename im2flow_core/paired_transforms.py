"""Augmentation that keeps an RGB frame and its flow consistent.

Resizing a flow field scales u by the width ratio and v by the height ratio; a horizontal flip
mirrors the field and negates u (so cos θ = F2 changes sign) — the released code forgot both.
Frames are `(H, W, 3) uint8`, flow `(H, W, 2) float32` px (u, v).
"""

from __future__ import annotations

import cv2
import numpy as np


def resize_pair(rgb: np.ndarray, flow: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize both to `size` (W, H); flow vectors are rescaled to the new pixel units."""
    width, height = size
    h0, w0 = rgb.shape[:2]
    if (w0, h0) == (width, height):
        return rgb, flow
    shrink = width * height < w0 * h0
    rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    flow = flow * np.array([width / w0, height / h0], np.float32)
    return rgb, flow.astype(np.float32)


def resize_short_side(rgb: np.ndarray, flow: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize so the shorter side is `short_side` px, keeping the aspect ratio."""
    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    return resize_pair(rgb, flow, (max(short_side, round(w * scale)), max(short_side, round(h * scale))))


def crop_pair(rgb: np.ndarray, flow: np.ndarray, top: int, left: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The `size`×`size` window at (top, left) of both."""
    return rgb[top : top + size, left : left + size], flow[top : top + size, left : left + size]


def hflip_pair(rgb: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror both left-right; u changes sign (motion to the right becomes motion to the left)."""
    flipped = flow[:, ::-1].copy()
    flipped[..., 0] *= -1
    return rgb[:, ::-1].copy(), flipped


def augment_pair(rgb: np.ndarray, flow: np.ndarray, rng: np.random.Generator, load_size: int, crop_size: int,
                 flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Training augmentation: resize the short side to `load_size`, random `crop_size` crop, random flip."""
    rgb, flow = resize_short_side(rgb, flow, load_size)
    h, w = rgb.shape[:2]
    top, left = int(rng.integers(0, h - crop_size + 1)), int(rng.integers(0, w - crop_size + 1))
    rgb, flow = crop_pair(rgb, flow, top, left, crop_size)
    if flip and rng.random() < 0.5:
        rgb, flow = hflip_pair(rgb, flow)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(flow)


def center_pair(rgb: np.ndarray, flow: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation transform: resize the short side to `crop_size`, centre crop a square."""
    rgb, flow = resize_short_side(rgb, flow, crop_size)
    h, w = rgb.shape[:2]
    rgb, flow = crop_pair(rgb, flow, (h - crop_size) // 2, (w - crop_size) // 2, crop_size)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(flow)


def augment_image(rgb: np.ndarray, rng: np.random.Generator, load_size: int, crop_size: int,
                  flip: bool = True) -> np.ndarray:
    """`augment_pair` for a frame without flow: `(H, W, 3) uint8` → `(crop, crop, 3) uint8`."""
    h, w = rgb.shape[:2]
    return augment_pair(rgb, np.zeros((h, w, 2), np.float32), rng, load_size, crop_size, flip)[0]


def center_image(rgb: np.ndarray, crop_size: int) -> np.ndarray:
    """`center_pair` for a frame without flow: `(H, W, 3) uint8` → `(crop, crop, 3) uint8`."""
    h, w = rgb.shape[:2]
    return center_pair(rgb, np.zeros((h, w, 2), np.float32), crop_size)[0]
