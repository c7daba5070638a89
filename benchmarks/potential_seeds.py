"""Motion potential over seeds: Im2Flow's potential head against the nearest neighbour, side by side.

For each work dir of a trained run (e.g. `im2flow pipeline --preset demo --set train.seed=K`), on the
test split: Spearman ρ and Kendall τ (95 % bootstrap intervals) of Im2Flow's motion potential and of
the nearest neighbour's against the true mean magnitude, on 5 evenly spaced frames per video (what
`im2flow evaluate` and `im2flow potential` rank) and on the middle frame only; then the means over
the work dirs. `--refit` fits the head again from the run's G with the current code first (exactly
what `im2flow train` does after G; G's weights do not depend on it) and stores it in the export.
Target (issue 17): the mean ρ of Im2Flow above the nearest neighbour's, Im2Flow's intervals above 0.

Run: python benchmarks/potential_seeds.py W_SEED0 W_SEED1 W_SEED2 [--refit]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from im2flow_core.rank_stats import rank_agreement
from im2flow_storage import open_flow_store
from im2flow_storage.checkpoints import load_checkpoint, save_checkpoint
from im2flow_storage.torch_datasets import sample_index
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import fit_baselines
from im2flow_tasks.models import load_generator_export
from im2flow_tasks.potential import fit_head_on_store, predict_with_potential


def _export(work_dir: str) -> Path:
    return max(Path(work_dir, "train").glob("*/generator_final.pt"), key=lambda p: p.stat().st_mtime)


def _fmt(r: dict[str, float], key: str) -> str:
    return f"{r[key]:+.3f} [{r[key + '_low']:+.3f}, {r[key + '_high']:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dirs", nargs="+")
    parser.add_argument("--refit", action="store_true", help="fit the potential head again with this code first")
    args = parser.parse_args()
    means: dict[str, list[float]] = {}
    for work_dir in args.work_dirs:
        export = _export(work_dir)
        store = open_flow_store(work_dir)
        if args.refit:
            generator = load_generator_export(str(export))
            train_videos = [r.video_id for r in store.records(complete_only=True) if r.split == "train"]
            head = fit_head_on_store(generator, store, train_videos, "cpu")
            blob = load_checkpoint(str(export))
            blob["potential_head"] = head.to_state()  # type: ignore[index]
            save_checkpoint(str(export), blob)  # type: ignore[arg-type]
        generator = load_generator_export(str(export))
        nearest = fit_baselines(store, EvalConfig()).nearest
        test = [r for r in store.records(complete_only=True) if r.split == "test"]
        print(f"{work_dir}: {export.name} of {export.parent.name}, head ridge {generator.potential_head.ridge:g} "
              f"(cross-validated ρ {generator.potential_head.cv_spearman:.3f})")
        for sampling, per_video in (("5 frames per video", 5), ("middle frame", None)):
            if per_video is None:
                frames = [(r.video_id, r.n_flows // 2) for r in test]
            else:
                frames = [(s.video_id, s.t) for s in sample_index(store, [r.video_id for r in test],
                                                                  {r.video_id: 0 for r in test}, per_video)]
            pairs = [store.read_pair(v, t) for v, t in frames]
            truth = np.array([float(np.linalg.norm(f, axis=-1).mean()) for _, f in pairs])
            ours = np.array(predict_with_potential(generator, [rgb for rgb, _ in pairs], "cpu")[1])
            theirs = np.array([float(np.linalg.norm(nearest.predict(rgb), axis=-1).mean()) for rgb, _ in pairs])
            for method, values in (("Im2Flow", ours), ("Nearest neighbour", theirs)):
                r = rank_agreement(values, truth)
                means.setdefault(f"{sampling}: {method}", []).append(r["spearman"])
                print(f"  {sampling:18s} n={len(pairs):3d} {method:17s} ρ {_fmt(r, 'spearman')}  "
                      f"τ {_fmt(r, 'kendall')}")
    print("\nmean Spearman ρ over the work dirs:")
    for name, values in means.items():
        print(f"  {name:40s} {np.mean(values):+.3f}  (per run: {', '.join(f'{v:+.3f}' for v in values)})")


if __name__ == "__main__":
    main()
