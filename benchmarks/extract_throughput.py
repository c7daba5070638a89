"""Extraction throughput and store compactness, measured side by side in one run.

Prints, on the same real-looking frames (photographs shipped with scikit-learn, panned, rotated
and zoomed so every pixel moves, 340×256 like UCF-101 frames resized):
1. pipeline throughput (decode + TV-L1 + encode + Zarr write, `im2flow_tasks.extract.extract_one`) vs a
   bare loop of `calc()` on pre-decoded frames, with 1 and with 2 worker processes;
2. flow-store bytes per pixel and decode error vs a denseflow-style pair of ±20-clipped q95 JPEGs,
   plus the trade-off of other flow encodings.
Targets (issue 3): pipeline/bare ≥ 0.9 at equal workers; 2 workers ≥ 1.8× one; store bytes ≤ 1.5×
the JPEG pair's with mean error ≤ 1/3 of its, and no clipping below the store's bound.

Run: python benchmarks/extract_throughput.py [--pairs-per-video 6] [--videos 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_sample_images

from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_core.optical_flow import create_estimator
from im2flow_storage.codecs import FlowImageCodec
from im2flow_storage.flow_store import create_flow_store
from im2flow_tasks.config import ExtractConfig
from im2flow_tasks.extract import extract_one, library_versions
from im2flow_tasks.ingest import probe_entry

WIDTH, HEIGHT = 340, 256


def make_clip(image: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """`n` RGB frames of a photo under a slowly changing rotation, zoom and pan."""
    rng = np.random.default_rng(seed)
    rot, zoom, dx, dy = rng.uniform(0.3, 0.9), rng.uniform(0.003, 0.01), rng.uniform(-3, 3), rng.uniform(-2, 2)
    frames = []
    for t in range(n):
        m = cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] / 2), rot * t, 1 + zoom * t)
        m[:, 2] += [dx * t, dy * t]
        warped = cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)
        frames.append(np.ascontiguousarray(warped[60 : 60 + HEIGHT, 40 : 40 + WIDTH]))
    return frames


def make_static_camera_clip(background: np.ndarray, figure: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """`n` frames of a static photo with a textured elliptical object moving and turning over it."""
    rng = np.random.default_rng(seed)
    base = np.ascontiguousarray(background[60 : 60 + HEIGHT, 40 : 40 + WIDTH])
    patch = np.ascontiguousarray(figure[100:220, 100:220])
    mask = np.zeros(patch.shape[:2], np.float32)
    cv2.ellipse(mask, (60, 60), (55, 35), 0, 0, 360, 1.0, -1)
    x, y, vx, vy, spin = 90.0, 120.0, rng.uniform(2, 4), rng.uniform(-1.5, 1.5), rng.uniform(-3, 3)
    frames = []
    for t in range(n):
        m = cv2.getRotationMatrix2D((60, 60), spin * t, 1.0)
        m[:, 2] += [x + vx * t - 60, y + vy * t - 60]
        obj = cv2.warpAffine(patch, m, (WIDTH, HEIGHT))
        alpha = cv2.warpAffine(mask, m, (WIDTH, HEIGHT))[..., None]
        frames.append((base * (1 - alpha) + obj * alpha).astype(np.uint8))
    return frames


def bare_calc(frames_path: str) -> int:
    """The bare loop: TV-L1 on pre-decoded gray frames; returns the number of pairs."""
    cv2.setNumThreads(1)
    gray = np.load(frames_path)
    estimator = create_estimator("tvl1")
    for a, b in zip(gray, gray[1:]):
        estimator.calc(a, b)
    return len(gray) - 1


def run_on_cluster(workers: int, fn, items) -> float:
    """Seconds to run fn over items on a fresh LocalCluster of `workers` single-threaded processes."""
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.run(cv2.setNumThreads, 1)
        client.submit(sum, [1]).result()  # warm the workers
        started = time.perf_counter()
        client.gather(client.map(fn, items, pure=False))
        return time.perf_counter() - started


def jpeg_pair(flow: np.ndarray) -> tuple[int, np.ndarray]:
    """denseflow's storage: u and v clipped to ±20 px, scaled to uint8, JPEG quality 95 each."""
    size, decoded = 0, []
    for c in range(2):
        q = np.clip(np.rint((np.clip(flow[..., c], -20, 20) + 20) / 40 * 255), 0, 255).astype(np.uint8)
        blob = imagecodecs.jpeg8_encode(q, level=95)
        size += len(blob)
        decoded.append(imagecodecs.jpeg8_decode(blob).astype(np.float32) / 255 * 40 - 20)
    return size, np.stack(decoded, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-video", type=int, default=6)
    parser.add_argument("--videos", type=int, default=4)
    args = parser.parse_args()
    images = load_sample_images().images
    with tempfile.TemporaryDirectory(prefix="im2flow-bench-") as temporary:  # removed afterwards, even on errors
        tmp = Path(temporary)
        clips = [make_clip(images[k % 2], args.pairs_per_video + 1, k) for k in range(args.videos)]
        videos, gray_files = [], []
        for k, frames in enumerate(clips):
            path = tmp / f"clip{k}.avi"
            writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), 25, (WIDTH, HEIGHT))
            for f in frames:
                writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            writer.release()
            videos.append(probe_entry({"video_id": f"clip{k}", "path": str(path), "label": "x", "split": "train"}, 2))
            gray_path = tmp / f"gray{k}.npy"
            np.save(gray_path, np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]))
            gray_files.append(str(gray_path))
        n_pairs = args.videos * args.pairs_per_video
        config = ExtractConfig(short_side=None)
        print(f"{args.videos} videos × {args.pairs_per_video} pairs at {WIDTH}×{HEIGHT}, TV-L1 (OpenCV defaults)\n")

        rates = {}
        for workers in (1, 2):
            bare = run_on_cluster(workers, bare_calc, gray_files)
            store = create_flow_store(str(tmp / f"work{workers}"), config.store_config(), library_versions())
            pipe = run_on_cluster(workers, lambda v, url=store.url: extract_one(url, v, config.store_config(), 32),
                                  videos)
            rates[workers] = (n_pairs / bare, n_pairs / pipe)
            print(f"{workers} worker(s): bare calc {n_pairs / bare:6.2f} pairs/s | "
                  f"pipeline {n_pairs / pipe:6.2f} pairs/s"
                  f" | pipeline/bare = {bare / pipe:.3f}  (target ≥ 0.9)")
        print(f"scaling 2 vs 1 worker: bare {rates[2][0] / rates[1][0]:.2f}×, "
              f"pipeline {rates[2][1] / rates[1][1]:.2f}×"
              "  (target ≥ 1.8×)\n")

        # Compactness and precision on the same flows, computed once in float.
        store_dir = tmp / "work1" / "flows"
        store_bytes = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file() and "/flow/c/" in str(p))
        static = [make_static_camera_clip(images[k % 2], images[1 - k % 2], args.pairs_per_video + 1, k)
                  for k in range(args.videos)]
        for scene, scene_clips, on_disk in (("camera moves (every pixel moves)", clips, store_bytes),
                                            ("static camera, one moving object", static, None)):
            report_compactness(scene, scene_clips, on_disk)


def report_compactness(scene: str, clips: list[list[np.ndarray]], store_bytes: int | None) -> None:
    """Print bytes/pixel and decode error of the flow encodings on the TV-L1 flow of `clips`."""
    estimator = create_estimator("tvl1")
    flows = []
    for frames in clips:
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        flows += [estimator.calc(a, b) for a, b in zip(gray, gray[1:])]
    n_px = WIDTH * HEIGHT
    jp = [jpeg_pair(f) for f in flows]
    jp_bytes = np.mean([s for s, _ in jp]) / n_px
    jp_err = np.concatenate([np.linalg.norm(d - f, axis=-1).ravel() for (_, d), f in zip(jp, flows)])
    max_mag = max(float(np.abs(f).max()) for f in flows)
    print(f"\n== {scene}: {len(flows)} flows, largest |u| or |v| {max_mag:.1f} px")
    print(f"{'encoding':58s} {'B/px':>6s} {'×jpeg':>6s} {'mean err':>9s} {'÷jpeg':>6s} {'max err':>8s}")
    print(f"{'denseflow JPEG pair (±20 px clip, q95)':58s} {jp_bytes:6.3f} {1:6.2f} {jp_err.mean():9.4f} "
          f"{1:6.2f} {jp_err.max():8.3f}")
    variants = [("bounded ≤0.085 px, JPEG-XL d=0.02 + residual [default]", {"mode": "bounded"}, True),
                ("bounded ≤0.085 px, d=0.01", {"mode": "bounded", "distance": 0.01}, False),
                ("bounded ≤0.085 px, d=0.04", {"mode": "bounded", "distance": 0.04}, False),
                ("bounded ≤0.05 px, d=0.02", {"mode": "bounded", "max_error_px": 0.05}, False),
                ("quantized 1/16 px, JPEG-XL lossless", {"mode": "quantized", "step_px": 1 / 16}, False),
                ("quantized 1/18 px, JPEG-XL lossless", {"mode": "quantized", "step_px": 1 / 18}, False)]
    for name, compression, is_default in variants:
        codec = FlowImageCodec(**compression)
        started = time.perf_counter()
        blobs = [codec.encode_frames(encode_flow(f)[None]) for f in flows]
        encode_ms = (time.perf_counter() - started) / len(flows) * 1e3
        started = time.perf_counter()
        back = [codec.decode_frames(b, (1, HEIGHT, WIDTH, 3))[0] for b in blobs]
        decode_ms = (time.perf_counter() - started) / len(flows) * 1e3
        err = np.concatenate([np.linalg.norm(decode_flow(b) - f, axis=-1).ravel() for b, f in zip(back, flows)])
        size = np.mean([len(b) for b in blobs]) / n_px
        print(f"{name:58s} {size:6.3f} {size / jp_bytes:6.2f} {err.mean():9.4f} {err.mean() / jp_err.mean():6.2f} "
              f"{err.max():8.3f}   enc {encode_ms:4.0f} ms, dec {decode_ms:3.0f} ms")
        if is_default and store_bytes is not None:
            disk = store_bytes / len(flows) / n_px
            label = "  the same, bytes on disk in the store (with shard index)"
            print(f"{label:58s} {disk:6.3f} {disk / jp_bytes:6.2f}")
    sizes, errs = [], []
    for f in flows:  # the released code's 3-channel uint8 image (255 = 30 px) with PNG
        img = encode_flow(f)
        q = np.stack([np.rint((img[..., 0] + 1) * 127.5), np.rint((img[..., 1] + 1) * 127.5),
                      np.rint(np.clip(img[..., 2], 0, 30) / 30 * 255)], -1).astype(np.uint8)
        sizes.append(len(imagecodecs.png_encode(q)))
        d = q.astype(np.float32)
        m = d[..., 2] / 255 * 30
        u, v = (d[..., 1] / 127.5 - 1) * m, (d[..., 0] / 127.5 - 1) * m
        errs.append(np.linalg.norm(np.stack([u, v], -1) - f, axis=-1).ravel())
    e = np.concatenate(errs)
    size = np.mean(sizes) / n_px
    print(f"{'released code: uint8 sin/cos/M (255 = 30 px), PNG':58s} {size:6.3f} {size / jp_bytes:6.2f} "
          f"{e.mean():9.4f} {e.mean() / jp_err.mean():6.2f} {e.max():8.3f}")


if __name__ == "__main__":
    main()
