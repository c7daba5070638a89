"""Agreement of the PyTorch TV-L1 with OpenCV's DualTVL1OpticalFlow, and accuracy against known flow.

On frames cut from real photographs (scikit-learn's sample images), at OpenCV's default parameters:
1. synthetic warps with known flow (translation, rotation, zoom, a smooth varying field): mean EPE
   of each implementation to the truth, and their ratio (target: torch ≤ 1.05 × OpenCV);
2. on the same pairs (real textures, sensor noise σ = 1 grey level on both frames): mean EPE
   between the two implementations over the whole frame, borders included (target ≤ 0.1 px).

Both for the uncompiled torch code and for its `torch.compile`d kernels (the default in extraction).

Run: python benchmarks/tvl1_agreement.py [--size 340x256] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
from sklearn.datasets import load_sample_images

from im2flow_core.optical_flow import TVL1Estimator, TVL1Params
from im2flow_core.tvl1_torch import tvl1_flow


def warped_pair(image: np.ndarray, width: int, height: int, field) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frame0 = a crop of `image`; frame1 with frame0[y, x] = frame1[y + v, x + u]; returns (f0, f1, flow)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    y0, x0 = (gray.shape[0] - height) // 2, (gray.shape[1] - width) // 2
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (np.asarray(c, np.float32) for c in field(xx - width / 2, yy - height / 2))
    frame0 = gray[y0 : y0 + height, x0 : x0 + width]
    frame1 = cv2.remap(gray, xx + x0 - u, yy + y0 - v, cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    as_u8 = lambda f: np.clip(np.rint(f + rng.normal(0, 1.0, f.shape)), 0, 255).astype(np.uint8)  # noqa: E731
    return as_u8(frame0), as_u8(frame1), np.stack([u, v], -1)


FIELDS = {
    "translation": lambda x, y: (np.full_like(x, 2.3), np.full_like(y, -1.4)),
    "rotation 2°": lambda x, y: (-np.deg2rad(2) * y, np.deg2rad(2) * x),
    "zoom 2%": lambda x, y: (0.02 * x, 0.02 * y),
    "smooth field": lambda x, y: (1.5 * np.sin(x / 40) + 0.5, 1.0 * np.cos(y / 30)),
}


def epe(a: np.ndarray, b: np.ndarray, margin: int = 8) -> float:
    """Mean end-point error away from a `margin` px border (where both must extrapolate)."""
    error = np.linalg.norm(a - b, axis=-1)
    return float((error[margin:-margin, margin:-margin] if margin else error).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="340x256")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    params = TVL1Params()
    opencv = TVL1Estimator(params)
    pairs = [(f"image {index}, {name}", *warped_pair(image, width, height, field))
             for index, image in enumerate(load_sample_images().images) for name, field in FIELDS.items()]
    theirs = [opencv.calc(f0, f1) for _, f0, f1, _ in pairs]
    for compile in (False, True):
        rows = []
        for (name, f0, f1, truth), cv_flow in zip(pairs, theirs):
            ours = tvl1_flow(torch.from_numpy(f0[None]).to(args.device), torch.from_numpy(f1[None]).to(args.device),
                             params, compile=compile)[0].cpu().numpy()
            rows.append((name, epe(ours, cv_flow, 0), epe(ours, truth), epe(cv_flow, truth)))
        kind = "compiled" if compile else "uncompiled"
        print(f"TV-L1 agreement at {width}×{height}, OpenCV defaults, torch on {args.device}, {kind}")
        print(f"{'pair':32s} {'torch↔OpenCV':>13s} {'torch↔truth':>12s} {'OpenCV↔truth':>13s}")
        for name, agree, ours, cv_truth in rows:
            print(f"{name:32s} {agree:13.4f} {ours:12.4f} {cv_truth:13.4f}")
        agree = np.mean([r[1] for r in rows])
        ours, cv_truth = np.mean([r[2] for r in rows]), np.mean([r[3] for r in rows])
        print(f"{kind}: mean EPE torch vs OpenCV: {agree:.4f} px (target ≤ 0.1)")
        print(f"{kind}: mean EPE to known flow: torch {ours:.4f} px, OpenCV {cv_truth:.4f} px, "
              f"ratio {ours / cv_truth:.3f} (target ≤ 1.05)\n")


if __name__ == "__main__":
    main()
