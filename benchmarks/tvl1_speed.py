"""TV-L1 speed at 340×256 (UCF-101 frames resized): OpenCV on all CPU cores vs PyTorch, side by side.

Prints flow pairs per second for
1. OpenCV's DualTVL1OpticalFlow, one process per core (as the extraction runs it on Dask);
2. the PyTorch TV-L1 on CPU (all cores, batches of `--batch` pairs), uncompiled and with its
   `torch.compile`d kernels (the default; compile time is printed apart, it is paid once per machine);
3. the PyTorch TV-L1 on CUDA, when a GPU is present: compiled for several batch sizes, uncompiled for one.
Targets (issue 8): torch CPU within 2× of OpenCV; ≥ 1000 pairs/s on one datacenter GPU.

Run: python benchmarks/tvl1_speed.py [--pairs 8] [--batch 4] [--gpu-batches 32,128,256]
"""

from __future__ import annotations

import argparse
import os
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import torch
from sklearn.datasets import load_sample_images

from im2flow_core.optical_flow import TVL1Estimator
from im2flow_core.tvl1_torch import tvl1_flow

WIDTH, HEIGHT = 340, 256


def make_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` pairs `(n, H, W) uint8` of real photo crops panned by 1–3 px with sensor noise."""
    rng = np.random.default_rng(0)
    images = [cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in load_sample_images().images]
    f0, f1 = [], []
    for k in range(n):
        image = images[k % len(images)].astype(np.float32)
        dx, dy = rng.uniform(1, 3), rng.uniform(-1.5, 1.5)
        y0, x0 = 60 + k % 20, 30 + k % 40
        f0.append(image[y0 : y0 + HEIGHT, x0 : x0 + WIDTH])
        shifted = cv2.warpAffine(image, np.float32([[1, 0, -dx], [0, 1, -dy]]), image.shape[::-1], flags=cv2.INTER_CUBIC)
        f1.append(shifted[y0 : y0 + HEIGHT, x0 : x0 + WIDTH])
    noisy = lambda f: np.clip(np.rint(np.stack(f) + rng.normal(0, 1.0, (n, HEIGHT, WIDTH))), 0, 255).astype(np.uint8)  # noqa: E731
    return noisy(f0), noisy(f1)


def _opencv_chunk(args: tuple[np.ndarray, np.ndarray]) -> int:
    cv2.setNumThreads(1)
    estimator = TVL1Estimator()
    for a, b in zip(*args):
        estimator.calc(a, b)
    return len(args[0])


def opencv_rate(f0: np.ndarray, f1: np.ndarray, workers: int) -> float:
    """Pairs/s of OpenCV TV-L1 with `workers` single-threaded processes."""
    chunks = [(f0[i::workers], f1[i::workers]) for i in range(workers)]
    # spawn, not fork: a forked child of a process that has run torch's thread pool can deadlock
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_opencv_chunk, [(c[0][:1], c[1][:1]) for c in chunks]))  # warm-up
        started = time.perf_counter()
        done = sum(pool.map(_opencv_chunk, chunks))
    return done / (time.perf_counter() - started)


def warm_up(f0: np.ndarray, f1: np.ndarray, device: str, batch: int, compile: bool) -> float:
    """Seconds to run one batch first (CUDA context, kernel compilation); later calls reuse them."""
    a, b = torch.from_numpy(f0[:batch]).to(device), torch.from_numpy(f1[:batch]).to(device)
    started = time.perf_counter()
    tvl1_flow(a, b, compile=compile)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def torch_rate(f0: np.ndarray, f1: np.ndarray, device: str, batch: int, compile: bool, repeat: int = 1) -> float:
    """Pairs/s of the torch TV-L1 on `device` in batches of `batch` (frames already on the device)."""
    a, b = torch.from_numpy(f0).to(device), torch.from_numpy(f1).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeat):
        for i in range(0, len(a), batch):
            tvl1_flow(a[i : i + batch], b[i : i + batch], compile=compile)
    if device == "cuda":
        torch.cuda.synchronize()
    return repeat * len(a) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--gpu-batches", default="32,128,256")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    f0, f1 = make_pairs(args.pairs)
    cv_rate = opencv_rate(f0, f1, cores)
    torch.set_num_threads(cores)
    warm_up(f0, f1, "cpu", 1, compile=False)
    eager_rate = torch_rate(f0, f1, "cpu", args.batch, compile=False)
    compile_s = warm_up(f0, f1, "cpu", args.batch, compile=True)
    compiled_rate = torch_rate(f0, f1, "cpu", args.batch, compile=True)
    print(f"TV-L1 at {WIDTH}×{HEIGHT}, OpenCV defaults, {args.pairs} pairs, {cores} CPU cores")
    print(f"OpenCV, {cores} processes:                   {cv_rate:8.2f} pairs/s")
    print(f"torch CPU, batch {args.batch}, uncompiled:        {eager_rate:8.2f} pairs/s  "
          f"(torch/OpenCV {eager_rate / cv_rate:.2f})")
    print(f"torch CPU, batch {args.batch}, compiled:          {compiled_rate:8.2f} pairs/s  "
          f"(torch/OpenCV {compiled_rate / cv_rate:.2f}; target ≥ 0.5; first batch with compilation "
          f"{compile_s:.1f} s)")
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        batches = [int(b) for b in args.gpu_batches.split(",")]
        for batch in batches:
            g0, g1 = make_pairs(batch)
            g0, g1 = np.concatenate([g0] * 2), np.concatenate([g1] * 2)
            first_s = warm_up(g0, g1, "cuda", batch, compile=True)
            rate = torch_rate(g0, g1, "cuda", batch, compile=True, repeat=2)
            print(f"torch CUDA ({name}), batch {batch}, compiled: {rate:8.1f} pairs/s  "
                  f"({rate / cv_rate:.0f}× OpenCV CPU; first batch {first_s:.1f} s)")
        g0, g1 = make_pairs(batches[-1])
        warm_up(g0, g1, "cuda", batches[-1], compile=False)
        rate = torch_rate(g0, g1, "cuda", batches[-1], compile=False)
        print(f"torch CUDA ({name}), batch {batches[-1]}, uncompiled: {rate:8.1f} pairs/s")
    else:
        print("torch CUDA: no GPU here")


if __name__ == "__main__":
    main()
