"""What a recognition run trains and tests on: frames of labelled videos, or labelled still images.

Descriptors hold only ids, paths and labels (cheap to hash and pass between Prefect tasks); the
torch datasets are built inside each task. Validation (for the fusion weight and early stopping)
is carved out of the training split by group, never from the test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from torch.utils.data import Dataset

from im2flow_core.paired_transforms import augment_image, augment_pair, center_image, center_pair
from im2flow_core.splits import stratified_split
from im2flow_storage.flow_store import FlowStore
from im2flow_storage.images import read_labelled_images, read_rgb_image_checked
from im2flow_storage.torch_datasets import FlowPairDataset, LabelledImageDataset, Sample, sample_index


@dataclass(frozen=True)
class RecognitionData:
    """Samples of each part. Frames: `Sample`s of a flow store; images: (path, label index) pairs."""

    kind: Literal["frames", "images"]
    source: str  # flow store URL or labels CSV
    labels: list[str]
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    test: list = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"item", "reason"}

    @property
    def has_true_flow(self) -> bool:
        """Whether the true flow of each sample is known (the oracle stream needs it)."""
        return self.kind == "frames"

    def ids(self, part: str) -> list[str]:
        """The video (frames) or image (images) of each sample of `part`: frames of a video share it."""
        return [s.video_id if self.kind == "frames" else s[0] for s in getattr(self, part)]

    def label_indices(self, part: str) -> list[int]:
        """Label index of each sample of `part`."""
        return [s.label if self.kind == "frames" else s[1] for s in getattr(self, part)]


def frames_data(store: FlowStore, split: str, val_fraction: float, seed: int, frames_per_video: int | None,
                eval_frames_per_video: int | None) -> RecognitionData:
    """Frames of the complete videos of `store`: train split → train/val by group; `split` → test."""
    records = [r for r in store.records(complete_only=True) if r.n_flows > 0]
    train_records = [r for r in records if r.split == "train"]
    test_records = [r for r in records if r.split == split]
    if not train_records or not test_records:
        raise ValueError(f"flow store {store.url} needs complete videos in the train and {split!r} splits")
    labels = sorted({r.label for r in train_records})
    unknown = sorted({r.label for r in test_records} - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown} of the {split!r} split never occur in the train split")
    held_out = stratified_split([r.video_id for r in train_records], [r.label for r in train_records],
                                val_fraction, seed)
    label_of = {r.video_id: labels.index(r.label) for r in records}
    train_ids = [r.video_id for r in train_records if held_out[r.video_id] == "train"]
    val_ids = [r.video_id for r in train_records if held_out[r.video_id] == "test"]
    if not val_ids:
        raise ValueError("no validation videos: each label needs at least two video groups in the train split")
    return RecognitionData(
        "frames", store.url, labels,
        train=sample_index(store, train_ids, label_of, frames_per_video, records),
        val=sample_index(store, val_ids, label_of, eval_frames_per_video, records),
        test=sample_index(store, [r.video_id for r in test_records], label_of, eval_frames_per_video, records))


def images_data(csv_path: str, val_fraction: float, test_fraction: float, seed: int) -> RecognitionData:
    """Images listed in `csv_path` (path,label[,split]); unreadable images are skipped with a reason.

    Without a split column, a stratified `test_fraction` of each label's images is the test set.
    """
    rows = read_labelled_images(csv_path)
    readable, skipped = [], []
    for row in rows:
        problem = read_rgb_image_checked(row.path)[1]
        if problem == "cannot read as an image":  # the wording this report has always used
            problem = "missing or not a readable image"
        if problem:
            skipped.append({"item": row.path, "reason": problem})
        else:
            readable.append(row)
    if any(not r.split for r in readable):
        split_of = stratified_split([r.path for r in readable], [r.label for r in readable], test_fraction, seed)
        readable = [type(r)(r.path, r.label, r.split or split_of[r.path]) for r in readable]
    train_rows = [r for r in readable if r.split == "train"]
    test_rows = [r for r in readable if r.split == "test"]
    if not train_rows or not test_rows:
        raise ValueError(f"{csv_path}: needs readable images in both the train and the test split")
    labels = sorted({r.label for r in train_rows})
    if len(labels) < 2:
        raise ValueError(f"{csv_path}: recognition needs at least 2 labels in the train split, got {labels}")
    for r in test_rows:
        if r.label not in labels:
            skipped.append({"item": r.path, "reason": f"label {r.label!r} has no training images"})
    test_rows = [r for r in test_rows if r.label in labels]
    held_out = stratified_split([r.path for r in train_rows], [r.label for r in train_rows], val_fraction, seed)
    train = [(r.path, labels.index(r.label)) for r in train_rows if held_out[r.path] == "train"]
    val = [(r.path, labels.index(r.label)) for r in train_rows if held_out[r.path] == "test"]
    if not val:
        raise ValueError(f"{csv_path}: no validation images: each label needs at least two training images")
    return RecognitionData("images", str(csv_path), labels, train, val,
                           [(r.path, labels.index(r.label)) for r in test_rows], skipped)


def stream_dataset(data: RecognitionData, part: str, crop_size: int, magnitude_scale_px: float,
                   seed: int, hflip: bool = True) -> Dataset:
    """The torch dataset of `part`: augmented for "train" (random crops; left-right flips if `hflip`),
    centre-cropped otherwise."""
    samples = getattr(data, part)
    load_size = int(round(crop_size * 286 / 256))
    if data.kind == "frames":
        transform = (partial(augment_pair, load_size=load_size, crop_size=crop_size, flip=hflip) if part == "train"
                     else lambda rgb, flow, rng: center_pair(rgb, flow, crop_size))
        return FlowPairDataset(data.source, [s if isinstance(s, Sample) else Sample(*s) for s in samples],
                               magnitude_scale_px, transform, seed)
    image_transform = (partial(augment_image, load_size=load_size, crop_size=crop_size, flip=hflip) if part == "train"
                       else lambda rgb, rng: center_image(rgb, crop_size))
    return LabelledImageDataset([p for p, _ in samples], [y for _, y in samples], image_transform, seed)
