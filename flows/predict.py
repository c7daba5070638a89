"""`im2flow predict`: hallucinate flow for still images with a trained G."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.flow_viz import flow_image_to_color
from im2flow_core.inference import motion_potential, predict_flow_images
from im2flow_core.unet import UNetGenerator
from im2flow_storage.flow_io import write_flo
from im2flow_storage.images import read_rgb_image, write_rgb_image
from tasks.train_data import resolve_device


def predict_images(paths: list[str], generator: UNetGenerator, out_dir: str | Path,
                   flow_format: Literal["npy", "flo"] = "npy", device: str = "auto") -> list[dict[str, Any]]:
    """For each image: `<stem>_flowimage.npy` (H, W, 3) float32 (sin θ, cos θ, M px), the decoded
    (u, v) as `<stem>_flow.npy` or `.flo`, and `<stem>_flow.png` (colour wheel). Returns one row
    per image with its motion potential (mean predicted magnitude, px), or the error if unreadable.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    generator = generator.to(torch_device)
    rows = []
    for path in paths:
        rgb = read_rgb_image(path)
        if rgb is None:
            rows.append({"image": str(path), "error": "cannot read as an image"})
            continue
        image = predict_flow_images(generator, [rgb], generator.config.input_size, torch_device)[0]
        stem = Path(path).stem
        np.save(out / f"{stem}_flowimage.npy", image)
        flow = decode_flow(image)
        if flow_format == "flo":
            write_flo(out / f"{stem}_flow.flo", flow)
        else:
            np.save(out / f"{stem}_flow.npy", flow)
        write_rgb_image(out / f"{stem}_flow.png", flow_image_to_color(image))
        rows.append({"image": str(path), "height": rgb.shape[0], "width": rgb.shape[1],
                     "motion_potential_px": round(motion_potential(image), 4), "error": ""})
    return rows
