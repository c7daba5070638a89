"""Datasets, loaders and devices for training: the glue between a flow store and torch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader

from im2flow_core.devices import resolve_device  # noqa: F401 - re-exported for tasks and flows
from im2flow_core.paired_transforms import augment_pair, center_pair
from im2flow_core.splits import stratified_split
from im2flow_storage.flow_store import FlowStore
from im2flow_storage.torch_datasets import FlowPairDataset, sample_index


@dataclass(frozen=True)
class TrainingData:
    """The videos and labels a training run uses, split by video group into train and validation."""

    store_url: str
    labels: list[str]
    train_videos: list[str]
    val_videos: list[str]
    label_of: dict[str, int]


def select_training_data(store: FlowStore, val_fraction: float, seed: int) -> TrainingData:
    """Complete train-split videos of `store`; `val_fraction` of their groups (per label) for validation."""
    records = [r for r in store.records(complete_only=True) if r.split == "train" and r.n_flows > 0]
    if not records:
        raise ValueError(f"flow store {store.url} has no complete videos in the train split")
    labels = sorted({r.label for r in records})
    if len(labels) < 2:
        raise ValueError(f"training needs at least 2 labels, the train split of {store.url} has {labels}")
    held_out = stratified_split([r.video_id for r in records], [r.label for r in records], val_fraction, seed)
    train = [r.video_id for r in records if held_out[r.video_id] == "train"]
    val = [r.video_id for r in records if held_out[r.video_id] == "test"]
    if not val:
        raise ValueError("no validation videos: each label needs at least two video groups in the train split")
    label_of = {r.video_id: labels.index(r.label) for r in records}
    return TrainingData(store.url, labels, train, val, label_of)


def make_datasets(store: FlowStore, data: TrainingData, crop_size: int, load_size: int, magnitude_scale_px: float,
                  seed: int, frames_per_video: int | None, hflip: bool = True) -> tuple[FlowPairDataset,
                                                                                        FlowPairDataset]:
    """Augmented training set (random crops; left-right flips if `hflip`) and centre-cropped validation set.

    G keeps flips (a mirrored frame's true flow is the mirrored flow); a classifier of classes that are
    each other's mirror images must not see them (a flipped "swim left" clip is a "swim right" one).
    """
    records = store.records(complete_only=True)  # read once for both: on an object store, a request per video
    train_samples = sample_index(store, data.train_videos, data.label_of, frames_per_video, records)
    val_samples = sample_index(store, data.val_videos, data.label_of, frames_per_video, records)
    train = FlowPairDataset(store.url, train_samples, magnitude_scale_px,
                            partial(augment_pair, load_size=load_size, crop_size=crop_size, flip=hflip), seed)
    val = FlowPairDataset(store.url, val_samples, magnitude_scale_px,
                          lambda rgb, flow, rng: center_pair(rgb, flow, crop_size), seed)
    return train, val


def estimate_magnitude_scale(dataset: FlowPairDataset, n_samples: int = 256, seed: int = 0) -> float:
    """99th percentile of the flow magnitude (px) over up to `n_samples` samples, at least 0.5 px."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(dataset), size=min(n_samples, len(dataset)), replace=False)
    values = [np.hypot(*dataset.read(int(i))[1].transpose(2, 0, 1)).ravel() for i in picks]
    return max(0.5, float(np.percentile(np.concatenate(values), 99)))


def epoch_loader(dataset: FlowPairDataset, batch_size: int, seed: int, num_workers: int,
                 shuffle: bool = True) -> Callable[[int], Iterable[dict[str, torch.Tensor]]]:
    """`epoch → batches`, shuffled by a generator seeded with (seed, epoch): resumable and reproducible."""
    def batches(epoch: int) -> Iterable[dict[str, torch.Tensor]]:
        dataset.set_epoch(epoch)
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                          num_workers=num_workers, drop_last=shuffle and len(dataset) > batch_size,
                          persistent_workers=False, pin_memory=torch.cuda.is_available())
    return batches
