"""Still images on disk: reading RGB frames, foreground masks and labelled-image lists; writing frames."""

from __future__ import annotations

import csv
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from im2flow_storage.paths import UnsafePathError, safe_child

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File extensions taken as still images when a folder is given."""


DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
"""Largest image (width × height) read, unless `IM2FLOW_MAX_IMAGE_PIXELS` says otherwise: 50 MP is
above any camera's photo, and far below what a 5 MB PNG can claim (40,000² decodes to ≈ 5 GB)."""


def max_image_pixels() -> int:
    """The pixel limit for still images: `IM2FLOW_MAX_IMAGE_PIXELS` if set (a positive integer), else 50 MP."""
    raw = os.environ.get("IM2FLOW_MAX_IMAGE_PIXELS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"IM2FLOW_MAX_IMAGE_PIXELS must be a positive integer, got {raw!r}")
    return int(raw)


def image_size_problem(path: str | Path, max_pixels: int | None = None) -> str:
    """Why the image at `path` must not be decoded ("" if it may): its header claims more than `max_pixels`.

    Reads only the header (Pillow's lazy open), so a small file that claims a huge image is refused
    before a byte of pixels is allocated. Files Pillow cannot identify are left to OpenCV (which
    reports unreadable files itself and has its own 2^30-pixel cap).
    """
    limit = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as exc:
        return f"too large to read: {exc}"
    except (OSError, ValueError, SyntaxError):
        return ""
    if width * height > limit:
        return (f"too large to read: {width}×{height} = {width * height:,} pixels, over the limit of {limit:,} "
                "(IM2FLOW_MAX_IMAGE_PIXELS)")
    return ""


def read_rgb_image_checked(path: str | Path, max_pixels: int | None = None) -> tuple[np.ndarray | None, str]:
    """(`(H, W, 3) uint8` RGB, "") for a readable image; (None, why) for one that is too large or unreadable."""
    problem = image_size_problem(path, max_pixels)
    if problem:
        return None, problem
    try:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own limits raise instead of returning None
        return None, f"cannot read as an image: {str(exc).strip().splitlines()[-1]}"
    if bgr is None:
        return None, "cannot read as an image"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ""


def read_rgb_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray | None:
    """The image at `path` as `(H, W, 3) uint8` RGB, or None if it cannot be read or is over the pixel limit."""
    return read_rgb_image_checked(path, max_pixels)[0]


def write_rgb_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write `(H, W, 3) uint8` RGB to `path` (format from the extension); OSError if it fails."""
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write image {path}")


def read_foreground_mask(mask_dir: str | Path, video_id: str, t: int, shape: tuple[int, int]) -> np.ndarray | None:
    """User mask `<mask_dir>/<video_id>/<t:06d>.png` (non-zero = foreground) at `shape` (H, W), or None.

    The video id is data: a path it would lead outside `mask_dir` is never read (None).
    """
    try:
        path = safe_child(mask_dir, video_id, f"{t:06d}.png", what="mask of video")
    except UnsafePathError:
        return None
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0


@dataclass(frozen=True)
class LabelledImage:
    """One row of a labelled-images CSV: the image file, its class name and split ("" if not given)."""

    path: str
    label: str
    split: str


def read_labelled_images(csv_path: str | Path) -> list[LabelledImage]:
    """Rows of a CSV with columns `path,label[,split]` (paths relative to the CSV's folder).

    Raises ValueError naming the file and line for a missing column or an empty field; whether the
    image itself is readable is checked where it is read.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read labels file {csv_path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = {"path", "label"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}; expected path,label[,split]")
    rows = []
    for line, row in enumerate(reader, start=2):
        path, label, split = ((row.get(column) or "").strip() for column in ("path", "label", "split"))
        if not path or not label:
            raise ValueError(f"{csv_path}:{line}: empty path or label")
        if split not in ("", "train", "test"):
            raise ValueError(f"{csv_path}:{line}: split must be train or test, got {split!r}")
        full = Path(path) if Path(path).is_absolute() else csv_path.parent / path
        rows.append(LabelledImage(str(full), label, split))
    if not rows:
        raise ValueError(f"{csv_path}: no images listed")
    return rows
