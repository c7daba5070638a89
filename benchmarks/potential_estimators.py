"""Motion potential: which estimator ranks still frames by their true motion, measured side by side.

On a work dir with a trained G (e.g. `im2flow demo`), for frames of the test split:
1. how G's predicted magnitude M is distributed over still, near-figure and figure pixels
   (figure: true |flow| > 0.5 px; near-figure: within 4 px of it; still: the rest), against the truth;
2. Spearman ρ and Kendall τ (95 % bootstrap intervals) of every estimator against the frame's true
   mean magnitude: summary statistics of the predicted M (`im2flow_core.potential_estimators`: mean M,
   mean M over predicted-moving pixels, moving shares, percentiles), mean |decoded flow|, G's potential
   head (`im2flow_core.potential_head`: the one stored with the model, else fitted here on the train
   split), and the nearest-neighbour baseline's mean magnitude.

Run: python benchmarks/potential_estimators.py --work-dir W [--model W/train/<fp>/generator_final.pt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from im2flow_core.flow_encoding import decode_flow
from im2flow_core.inference import predict_flow_images
from im2flow_core.potential_estimators import POTENTIAL_FEATURES, potential_features
from im2flow_core.rank_stats import rank_agreement
from im2flow_storage import open_flow_store
from im2flow_storage.torch_datasets import sample_index
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import fit_baselines
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.potential import fit_head_on_store, predict_with_potential


def _frames(store, split: str, per_video: int):
    videos = [r.video_id for r in store.records(complete_only=True) if r.split == split]
    for s in sample_index(store, videos, {v: 0 for v in videos}, per_video):
        yield store.read_pair(s.video_id, s.t)


def _predict(generator, frames, batch: int = 64):
    for start in range(0, len(frames), batch):
        yield from predict_flow_images(generator, frames[start : start + batch], generator.config.input_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--model", help="default: the newest W/train/*/generator_final.pt")
    parser.add_argument("--frames-per-video", type=int, default=1, help="test frames per video (1: the middle one)")
    args = parser.parse_args()
    model = args.model or str(max(Path(args.work_dir, "train").glob("*/generator_final.pt"),
                                  key=lambda p: p.stat().st_mtime))
    generator = load_generator_export(model).eval()
    store = open_flow_store(args.work_dir)
    print(f"model {model}; store {store.url}")

    if generator.potential_head is None:
        train_videos = [r.video_id for r in store.records(complete_only=True) if r.split == "train"]
        generator.potential_head = fit_head_on_store(generator, store, train_videos, "cpu")
        print("the model has no potential head: fitted one on the train split")
    pairs = list(_frames(store, "test", args.frames_per_video)) if args.frames_per_video > 1 else [
        store.read_pair(v, store.record(v).n_flows // 2) for v in
        [r.video_id for r in store.records(complete_only=True) if r.split == "test"]]
    images = list(_predict(generator, [rgb for rgb, _ in pairs]))
    truth = np.array([float(np.linalg.norm(f, axis=-1).mean()) for _, f in pairs])
    print(f"{len(pairs)} test frames; potential head: ridge {generator.potential_head.ridge:g}, "
          f"cross-validated ρ {generator.potential_head.cv_spearman:.3f}")

    regions: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"still": [], "near-figure": [], "figure": []}
    for (_, true), image in zip(pairs, images):
        true_m = np.linalg.norm(true, axis=-1)
        figure = true_m > 0.5
        near = cv2.dilate(figure.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~figure
        for name, mask in (("figure", figure), ("near-figure", near), ("still", ~figure & ~near)):
            regions[name].append((image[..., 2][mask], true_m[mask]))
    print("\npredicted M vs true M by region (px): share of pixels, mean and median of each")
    total = sum(sum(p.size for p, _ in v) for v in regions.values())
    for name, parts in regions.items():
        pred = np.concatenate([p for p, _ in parts])
        true_m = np.concatenate([t for _, t in parts])
        print(f"  {name:12s} {pred.size / total:6.1%}  predicted mean {pred.mean():.3f} median {np.median(pred):.3f}"
              f"  |  true mean {true_m.mean():.3f} median {np.median(true_m):.3f}")

    nearest = fit_baselines(store, EvalConfig()).nearest
    features = np.stack([potential_features(im) for im in images])
    estimators = {f"G: {name}": features[:, i] for i, name in enumerate(POTENTIAL_FEATURES)}
    estimators["G: mean |decoded flow|"] = np.array([np.linalg.norm(decode_flow(im), axis=-1).mean() for im in images])
    estimators["G: potential head (im2flow_core.potential_head)"] = np.array(
        predict_with_potential(generator, [rgb for rgb, _ in pairs], "cpu")[1])
    estimators["nearest neighbour: mean |flow|"] = np.array(
        [np.linalg.norm(nearest.predict(rgb), axis=-1).mean() for rgb, _ in pairs])
    print("\nrank agreement with the true mean magnitude (95 % bootstrap intervals)")
    for name, values in estimators.items():
        r = rank_agreement(values, truth, n_resamples=2000)
        print(f"  {name:48s} ρ {r['spearman']:+.3f} [{r['spearman_low']:+.3f}, {r['spearman_high']:+.3f}]"
              f"   τ {r['kendall']:+.3f} [{r['kendall_low']:+.3f}, {r['kendall_high']:+.3f}]")


if __name__ == "__main__":
    main()
