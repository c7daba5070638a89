"""`im2flow predict`: hallucinate flow for still images with a trained G."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.flow_viz import flow_image_to_color
from im2flow_core.unet import UNetGenerator
from im2flow_storage.flow_io import write_flo
from im2flow_storage.images import read_rgb_image, write_rgb_image
from tasks.potential import predict_with_potential
from tasks.train_data import resolve_device


def predict_images(paths: list[str], generator: UNetGenerator, out_dir: str | Path,
                   flow_format: Literal["npy", "flo"] = "npy", device: str = "auto",
                   batch_size: int = 16) -> list[dict[str, Any]]:
    """For each image: `<stem>_flowimage.npy` (H, W, 3) float32 (sin θ, cos θ, M px), the decoded
    (u, v) as `<stem>_flow.npy` or `.flo`, and `<stem>_flow.png` (colour wheel). Returns one row
    per image with its motion potential (px; `tasks.potential.predict_with_potential`), or the error
    if unreadable. Images go through G `batch_size` at a time.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    generator = generator.to(torch_device)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(paths), batch_size):
        chunk = [(path, read_rgb_image(path)) for path in paths[start : start + batch_size]]
        readable = [(path, rgb) for path, rgb in chunk if rgb is not None]
        images, potentials = predict_with_potential(generator, [rgb for _, rgb in readable], torch_device) \
            if readable else ([], [])
        results = {path: (rgb, image, potential) for (path, rgb), image, potential in zip(readable, images, potentials)}
        for path, rgb in chunk:
            if rgb is None:
                rows.append({"image": str(path), "error": "cannot read as an image"})
                continue
            _, image, potential = results[path]
            stem = Path(path).stem
            np.save(out / f"{stem}_flowimage.npy", image)
            flow = decode_flow(image)
            if flow_format == "flo":
                write_flo(out / f"{stem}_flow.flo", flow)
            else:
                np.save(out / f"{stem}_flow.npy", flow)
            write_rgb_image(out / f"{stem}_flow.png", flow_image_to_color(image))
            rows.append({"image": str(path), "height": rgb.shape[0], "width": rgb.shape[1],
                         "motion_potential_px": round(potential, 4), "error": ""})
    return rows
