"""TV-L1 speed at 340×256 (UCF-101 frames resized): OpenCV on all CPU cores vs PyTorch, side by side.

Prints flow pairs per second for
1. OpenCV's DualTVL1OpticalFlow, one process per core (as the extraction runs it on Dask);
2. the PyTorch TV-L1 on CPU (all cores, batches of `--batch` pairs), uncompiled and with its
   `torch.compile`d kernels (the default; compile time is printed apart, it is paid once per machine);
3. the PyTorch TV-L1 on CUDA, when a GPU is present: compiled for several batch sizes, uncompiled for one;
4. the extraction pipeline (decode, flow, encode, Zarr write: `im2flow_tasks.extract.extract_one`) on the local
   Dask cluster the CLI starts (`im2flow_services.dask_cluster.dask_scheduler`, one single-threaded worker per core),
   with `--algorithm tvl1` and with `tvl1-torch` on CPU (timed on a second pass: kernels built), and
   the bare compiled torch TV-L1 in one single-threaded process per core, as the workers run it.
Targets (issue 8): torch CPU within 2× of OpenCV; ≥ 1000 pairs/s on one datacenter GPU. Issue 14:
the pipeline with tvl1-torch ≥ 0.9× the bare rate (decoding, encoding and writing keep up).

Run: python benchmarks/tvl1_speed.py [--pairs 8] [--batch 4] [--gpu-batches 32,128,256] [--videos 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from distributed import Client
from sklearn.datasets import load_sample_images

from im2flow_core.optical_flow import TVL1Estimator
from im2flow_core.tvl1_torch import tvl1_flow
from im2flow_services.dask_cluster import dask_scheduler
from im2flow_storage.flow_store import create_flow_store
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.extract import extract_one
from im2flow_tasks.ingest import probe_entry

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
        shifted = cv2.warpAffine(image, np.float32([[1, 0, -dx], [0, 1, -dy]]), image.shape[::-1],
                                 flags=cv2.INTER_CUBIC)
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


def _torch_chunk(args: tuple[np.ndarray, np.ndarray, int]) -> float:
    """Pairs/s of the compiled torch TV-L1 in this single-threaded process (the first batch, untimed, builds it)."""
    f0, f1, batch = args
    torch.set_num_threads(1)
    tvl1_flow(torch.from_numpy(f0[:batch]), torch.from_numpy(f1[:batch]), compile=True)
    started = time.perf_counter()
    for i in range(0, len(f0), batch):
        tvl1_flow(torch.from_numpy(f0[i : i + batch]), torch.from_numpy(f1[i : i + batch]), compile=True)
    return len(f0) / (time.perf_counter() - started)


def bare_torch_rate(f0: np.ndarray, f1: np.ndarray, workers: int, batch: int) -> float:
    """Pairs/s of the compiled torch TV-L1 on CPU as the pipeline runs it: one single-threaded process per core."""
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_torch_chunk, [(f0, f1, batch)] * workers))


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


def write_videos(folder: Path, videos: int, frames: int) -> list[dict]:
    """`videos` FFV1 clips of `frames` panned photo frames at 340×256; their manifest rows."""
    rng = np.random.default_rng(1)
    images = load_sample_images().images
    rows = []
    for k in range(videos):
        image, (dx, dy) = images[k % len(images)], rng.uniform(-3, 3, 2)
        path = folder / f"clip{k}.avi"
        writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), 25, (WIDTH, HEIGHT))
        for t in range(frames):
            shifted = cv2.warpAffine(image, np.float32([[1, 0, dx * t], [0, 1, dy * t]]), image.shape[1::-1],
                                     flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            writer.write(cv2.cvtColor(shifted[60 : 60 + HEIGHT, 30 : 30 + WIDTH], cv2.COLOR_RGB2BGR))
        writer.release()
        rows.append(probe_entry({"video_id": f"clip{k}", "path": str(path), "label": "x", "split": "train"}, 2))
    return rows


def pipeline_rates(videos: int, frames: int) -> dict[str, float]:
    """Pairs/s of the extraction task over `videos` clips on the CLI's local cluster, per algorithm."""
    with tempfile.TemporaryDirectory(prefix="im2flow-tvl1-speed-") as temporary:  # removed afterwards, even on errors
        folder = Path(temporary)
        rows = write_videos(folder, videos, frames)
        rates = {}
        with dask_scheduler() as address, Client(address) as client:
            for algorithm, passes in (("tvl1", 1), ("tvl1-torch", 2)):
                config = ExtractConfig(algorithm=algorithm, short_side=None, device="cpu")
                for attempt in range(passes):  # the first tvl1-torch pass builds each worker's kernels
                    store = create_flow_store(str(folder / f"{algorithm}-{attempt}"), config.store_config(), {})
                    started = time.perf_counter()
                    outcomes = client.gather(client.map(extract_one, [store.url] * len(rows), rows,
                                                        [config.store_config()] * len(rows), [32] * len(rows),
                                                        [config.compute_options()] * len(rows), pure=False))
                    assert all(o["status"] == "complete" for o in outcomes), outcomes
                    rates[algorithm] = len(rows) * (frames - 1) / (time.perf_counter() - started)
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--gpu-batches", default="32,128,256")
    parser.add_argument("--videos", type=int, default=8, help="clips of 9 frames for the pipeline rows")
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
    rates = pipeline_rates(args.videos, 9)
    bare = bare_torch_rate(*make_pairs(16), cores, 8)
    print(f"extraction pipeline, {args.videos} clips × 8 pairs, local Dask cluster of {cores} workers:")
    print(f"  --algorithm tvl1:             {rates['tvl1']:8.2f} pairs/s")
    print(f"  --algorithm tvl1-torch (CPU): {rates['tvl1-torch']:8.2f} pairs/s  "
          f"(torch/OpenCV {rates['tvl1-torch'] / rates['tvl1']:.2f})")
    print(f"  bare tvl1-torch, {cores} single-threaded processes, batches of 8: {bare:8.2f} pairs/s; "
          f"pipeline/bare {rates['tvl1-torch'] / bare:.2f} (target ≥ 0.9: decoding, encoding and writing keep up)")


if __name__ == "__main__":
    main()
