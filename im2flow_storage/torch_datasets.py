"""torch Datasets over a flow store: O(1) random access to (frame, flow, label) samples.

Each sample is one frame t of one video: `rgb (3, S, S) float32` in [-1, 1], `flow (3, S, S)
float32` in model space (sin θ, cos θ, M / magnitude_scale_px) and `label` (int64). The store is
opened lazily in each DataLoader worker process (never pickled open), and each video's arrays are
cached per worker after their first use; frames are read by `im2flow_storage.frame_reader` (one cached
index lookup and one ranged read each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
from torch.utils.data import Dataset

from im2flow_core.flow_encoding import decode_flow, encode_flow
from im2flow_core.inference import rgb_to_tensor
from im2flow_storage.flow_store import FlowStore, member_array, member_group, open_flow_store, video_key
from im2flow_storage.frame_reader import FrameReader, UnsupportedLayout
from im2flow_storage.images import read_rgb_image
from im2flow_storage.video_writer import VideoRecord

PairTransform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Sample:
    """One sample's address: a video, a flow index t, and the label index."""

    video_id: str
    t: int
    label: int


def sample_index(store: FlowStore, video_ids: Sequence[str], label_of: dict[str, int],
                 frames_per_video: int | None = None, records: Iterable[VideoRecord] | None = None) -> list[Sample]:
    """All (video, t) samples of complete `video_ids`, or `frames_per_video` evenly spaced ones each.

    `records`: the store's complete records, when the caller has them already; otherwise they are
    read (one listing and a concurrent read of every video's metadata: on an object store, a
    request per video).
    """
    samples: list[Sample] = []
    complete = store.records(complete_only=True) if records is None else records
    by_id = {r.video_id: r for r in complete}
    for video_id in video_ids:
        record = by_id.get(video_id)
        if record is None or record.n_flows == 0:
            continue
        ts = range(record.n_flows)
        if frames_per_video is not None and record.n_flows > frames_per_video:
            ts = np.linspace(0, record.n_flows - 1, frames_per_video).round().astype(int).tolist()
        samples.extend(Sample(video_id, int(t), label_of[video_id]) for t in ts)
    return samples


class FlowPairDataset(Dataset[dict[str, torch.Tensor]]):
    """Samples of a flow store as tensors; `transform(rgb, flow, rng)` augments in pixel space."""

    def __init__(self, store_url: str, samples: Sequence[Sample], magnitude_scale_px: float,
                 transform: PairTransform | None = None, seed: int = 0) -> None:
        self.store_url, self.samples = store_url, list(samples)
        self.magnitude_scale_px, self.transform, self.seed = float(magnitude_scale_px), transform, seed
        self.epoch = 0
        self._group: zarr.Group | None = None
        self._readers: dict[str, tuple[Callable[[int], np.ndarray], Callable[[int], np.ndarray]]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation draws of `epoch` (call before iterating an epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_group"], state["_readers"] = None, {}  # each worker opens its own handles
        return state

    def _video_readers(self, video_id: str) -> tuple[Callable[[int], np.ndarray], Callable[[int], np.ndarray]]:
        if video_id not in self._readers:
            if self._group is None:
                self._group = zarr.open_group(open_flow_store(self.store_url).url, mode="r")
            group = member_group(self._group, "videos", video_key(video_id))
            rgb, flow = member_array(group, "rgb"), member_array(group, "flow")
            try:
                rgb_reader = FrameReader(rgb, f"video {video_id!r} rgb")
                flow_reader = FrameReader(flow, f"video {video_id!r} flow")
                self._readers[video_id] = (rgb_reader.read, flow_reader.read_flow)
            except UnsupportedLayout:  # not the layout the store writes: zarr's general path
                self._readers[video_id] = (lambda t: np.asarray(rgb[t]), lambda t: decode_flow(np.asarray(flow[t])))
        return self._readers[video_id]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample `index` as stored: `(rgb (H, W, 3) uint8, flow (H, W, 2) float32 px)`."""
        sample = self.samples[index]
        read_rgb, read_flow = self._video_readers(sample.video_id)
        return read_rgb(sample.t), read_flow(sample.t)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, flow = self.read(index)
        return self._to_item(index, rgb, flow)

    def _to_item(self, index: int, rgb: np.ndarray, flow: np.ndarray) -> dict[str, torch.Tensor]:
        if self.transform is not None:
            # Seeded by (seed, epoch, index): reproducible whatever the worker count, new each epoch.
            rng = np.random.default_rng((self.seed, self.epoch, index))
            rgb, flow = self.transform(rgb, flow, rng)
        image = torch.from_numpy(encode_flow(flow)).permute(2, 0, 1)
        image = torch.cat([image[:2], image[2:] / self.magnitude_scale_px], 0)
        return {"rgb": rgb_to_tensor(rgb), "flow": image, "label": torch.tensor(self.samples[index].label)}


class LabelledImageDataset(Dataset[dict[str, torch.Tensor]]):
    """Still images with labels as tensors: `{"rgb": (3, S, S) float32 in [-1, 1], "label": int64}`.

    `transform(rgb, rng)` resizes/crops/augments `(H, W, 3) uint8`; it is seeded by (seed, epoch,
    index) like `FlowPairDataset`. An unreadable image raises ValueError naming its path (callers
    check readability up front, so this only happens if a file changes during training).
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int],
                 transform: Callable[[np.ndarray, np.random.Generator], np.ndarray], seed: int = 0) -> None:
        if len(paths) != len(labels):
            raise ValueError("paths and labels differ in length")
        self.paths, self.labels, self.transform, self.seed = list(paths), list(labels), transform, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation draws of `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb = read_rgb_image(self.paths[index])
        if rgb is None:
            raise ValueError(f"cannot read image {self.paths[index]}")
        rgb = self.transform(rgb, np.random.default_rng((self.seed, self.epoch, index)))
        return {"rgb": rgb_to_tensor(np.ascontiguousarray(rgb)), "label": torch.tensor(self.labels[index])}
