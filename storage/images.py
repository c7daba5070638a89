"""Still images on disk: reading RGB frames and foreground masks, writing RGB frames and PNGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_rgb_image(path: str | Path) -> np.ndarray | None:
    """The image at `path` as `(H, W, 3) uint8` RGB, or None if it cannot be read as an image."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write `(H, W, 3) uint8` RGB to `path` (format from the extension); OSError if it fails."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write image {path}")


def read_foreground_mask(mask_dir: str | Path, video_id: str, t: int, shape: tuple[int, int]) -> np.ndarray | None:
    """User mask `<mask_dir>/<video_id>/<t:06d>.png` (non-zero = foreground) at `shape` (H, W), or None."""
    mask = cv2.imread(str(Path(mask_dir) / video_id / f"{t:06d}.png"), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
