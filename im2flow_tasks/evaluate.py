"""Evaluation: Im2Flow and the baselines on held-out frames, scored per image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from prefect import task

from im2flow_core.baselines import MeanFlowBaseline, NearestNeighbourBaseline, appearance_descriptor, zero_flow
from im2flow_core.flow_encoding import decode_flow
from im2flow_core.flow_metrics import canny_mask, foreground_mask, image_scores
from im2flow_storage import open_flow_store
from im2flow_storage.flow_store import FlowStore, VideoRecord
from im2flow_storage.images import read_foreground_mask
from im2flow_storage.torch_datasets import sample_index
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.models import load_generator_on
from im2flow_tasks.potential import predict_with_potential
from im2flow_tasks.progress import RunProgress

METHODS = ("Im2Flow", "Nearest neighbour", "Zero flow", "Mean flow")


@dataclass
class Baselines:
    """The fitted baselines."""

    nearest: NearestNeighbourBaseline
    mean: MeanFlowBaseline
    train_frames: int


def fit_baselines(store: FlowStore, config: EvalConfig, show_progress: bool = False,
                  records: list[VideoRecord] | None = None) -> Baselines:
    """NN descriptors and the mean flow from evenly spaced frames of the train split (a terminal bar
    over those frames if `show_progress`). `records`: the store's complete records, if already read."""
    records = store.records(complete_only=True) if records is None else records
    videos = [r.video_id for r in records if r.split == "train"]
    if not videos:
        raise ValueError(f"{store.url} has no complete train videos for the baselines")
    samples = sample_index(store, videos, {v: 0 for v in videos}, config.baseline_frames_per_video, records)
    descriptors = np.empty((len(samples), 3 * config.nn_descriptor_size ** 2), np.float32)
    mean = MeanFlowBaseline()
    with RunProgress(len(samples), "fitting the baselines", show_progress) as progress:
        for i, s in enumerate(progress.counted(samples)):
            rgb, flow = store.read_pair(s.video_id, s.t)
            descriptors[i] = appearance_descriptor(rgb, config.nn_descriptor_size)
            mean.add(flow)
    # Only descriptors and (video_id, t) stay: a neighbour's flow is read back from the store.
    nearest = NearestNeighbourBaseline(descriptors, [(s.video_id, s.t) for s in samples],
                                       lambda key: store.read_flow(*key))
    return Baselines(nearest, mean, len(samples))


@task(name="evaluate-split", task_run_name="evaluate-{config.split}", persist_result=False)
def evaluate_split(store_url: str, model: str | None, work_dir: str, config: EvalConfig, tracking_uri: str,
                   examples_k: int = 3, show_progress: bool = False) -> dict[str, Any]:
    """Per-image scores of every method on `config.split`, plus the flows needed for galleries.

    Returns {"rows": [...], "examples": {(video_id, t): {...}}, "train_frames": n}. A row has the
    method, video id, label, t, the nine metrics, the true and predicted mean magnitudes, and the
    method's motion potential (Im2Flow: `im2flow_tasks.potential.predict_with_potential`; baselines: their
    mean magnitude). G is `model`, or the registry alias in `tracking_uri`.
    Examples (frames and flows) are kept only for the `examples_k` best and worst frames by
    Im2Flow's EPE, so memory stays bounded on large splits. `show_progress`: terminal bars (the
    Prefect UI always gets progress artifacts).
    """
    store = open_flow_store(store_url, split_index=config.split_index)
    records = store.records(complete_only=True)  # read once: on an object store, a request per video
    videos = [r for r in records if r.split == config.split]
    if not videos:
        raise ValueError(f"{store_url} has no complete videos in split {config.split!r}")
    baselines = fit_baselines(store, config, show_progress, records)
    generator, device = load_generator_on(model, work_dir, tracking_uri, config.device)
    label_of = {r.video_id: r.label for r in videos}
    samples = sample_index(store, list(label_of), {v: 0 for v in label_of}, config.frames_per_video, records)
    rows, examples = [], {}
    with RunProgress(len(samples), f"evaluating on the {config.split} split",
                     show_progress) as progress:
        for start in range(0, len(samples), config.batch_size):  # G runs on a batch; the rest is per frame
            chunk = samples[start : start + config.batch_size]
            pairs = [store.read_pair(s.video_id, s.t) for s in chunk]
            images, potentials = predict_with_potential(generator, [rgb for rgb, _ in pairs], device)
            for s, (rgb, true), image, potential in zip(chunk, pairs, images, potentials):
                rows.extend(_score_frame(s, rgb, true, decode_flow(image), potential, baselines,
                                         label_of[s.video_id], config, examples))
            progress.advance(len(chunk))
            if len(examples) > 4 * examples_k:
                _keep_extremes(examples, rows, examples_k)
    _keep_extremes(examples, rows, examples_k)
    return {"rows": rows, "examples": examples, "train_frames": baselines.train_frames}


def _score_frame(s: Any, rgb: np.ndarray, true: np.ndarray, im2flow: np.ndarray, potential: float,
                 baselines: Baselines, label: str, config: EvalConfig,
                 examples: dict[tuple[str, int], Any]) -> list[dict[str, Any]]:
    """The rows of every method on one frame `(H, W, 3) uint8` with true flow `(H, W, 2)` px; adds its example."""
    masks = {"canny": canny_mask(rgb, config.canny_low, config.canny_high)}
    user = (read_foreground_mask(config.fg_mask_dir, s.video_id, s.t, rgb.shape[:2])
            if config.fg_mask_dir is not None else None)
    masks["fg"] = user if user is not None else foreground_mask(true, config.fg_threshold_px, config.fg_kernel)
    predictions = {"Im2Flow": im2flow, "Nearest neighbour": baselines.nearest.predict(rgb),
                   "Zero flow": zero_flow(rgb), "Mean flow": baselines.mean.predict(rgb)}
    true_magnitude = float(np.linalg.norm(true, axis=-1).mean())
    rows = []
    for method, pred in predictions.items():
        scores = image_scores(pred, true, masks, config.min_norm_px)
        magnitude = float(np.linalg.norm(pred, axis=-1).mean())
        rows.append({"method": method, "video_id": s.video_id, "label": label, "t": s.t, **scores,
                     "true_mean_magnitude": true_magnitude, "pred_mean_magnitude": magnitude,
                     "potential_px": potential if method == "Im2Flow" else magnitude})
    examples[(s.video_id, s.t)] = {"rgb": rgb, "true": true, "Im2Flow": im2flow,
                                   "Nearest neighbour": predictions["Nearest neighbour"]}
    return rows


def _keep_extremes(examples: dict[tuple[str, int], Any], rows: list[dict[str, Any]], k: int) -> None:
    """Drop the examples that are neither among the k best nor the k worst by Im2Flow's EPE."""
    epe = {(r["video_id"], r["t"]): r["epe"] for r in rows if r["method"] == "Im2Flow" and (r["video_id"],
                                                                                            r["t"]) in examples}
    ordered = sorted(epe, key=epe.__getitem__)
    keep = set(ordered[:k]) | set(ordered[-k:])
    for key in list(examples):
        if key not in keep:
            del examples[key]
