"""Baselines for flow hallucination: nearest neighbour, zero flow and the training-set mean flow.

All return flow `(H, W, 2) float32` px for a query frame `(H, W, 3) uint8` RGB.
- Nearest neighbour: the training frame closest in a simple appearance descriptor (the frame
  shrunk to `size`×`size`, grey and colour, standardised per image) returns its true flow, resized
  to the query (vectors rescaled), read back from where the training flows live. As the paper's NN
  baseline, it uses no learned features.
- Zero flow: nothing moves.
- Mean flow: the per-pixel mean of the training flows on a fixed grid, resized to the query.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import cv2
import numpy as np

from im2flow_core.paired_transforms import resize_pair


def appearance_descriptor(rgb: np.ndarray, size: int = 16) -> np.ndarray:
    """`(3·size²,) float32` descriptor: the image shrunk to size×size, zero mean, unit norm."""
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / (np.linalg.norm(small) + 1e-6)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Flow `(h, w, 2)` resized to `(height, width, 2)`, vectors rescaled to the new pixels."""
    return resize_pair(np.zeros(flow.shape[:2] + (3,), np.uint8), flow, (width, height))[1]


class NearestNeighbourBaseline:
    """Returns the true flow of the most similar training frame, read back only when it is the answer.

    It keeps what it searches on, one descriptor `(3·size²,) float32` (3 KB at size 16) and one key
    (e.g. `(video_id, t)`) per training frame, never the flows: `read_flow(key)` returns a training
    frame's flow `(H, W, 2) float32` px when it is a query's neighbour. So memory grows by ~3 KB a
    training frame, not by a flow's ~700 KB at 340×256.
    """

    def __init__(self, descriptors: np.ndarray, keys: Sequence[Hashable],
                 read_flow: Callable[[Hashable], np.ndarray]) -> None:
        descriptors = np.asarray(descriptors, np.float32)
        if descriptors.ndim != 2 or len(descriptors) != len(keys) or not len(keys):
            raise ValueError("need one descriptor row per training key, and at least one")
        size = round(math.sqrt(descriptors.shape[1] / 3))
        if 3 * size * size != descriptors.shape[1]:
            raise ValueError(f"descriptors of length {descriptors.shape[1]} are not 3·size² long")
        self.descriptors, self.keys, self.size, self._read_flow = descriptors, list(keys), size, read_flow
        self._squared_norms = np.einsum("ij,ij->i", descriptors, descriptors)

    def neighbour(self, rgb: np.ndarray) -> int:
        """Index (into `keys`) of the training frame nearest to `rgb` `(H, W, 3) uint8`."""
        query = appearance_descriptor(rgb, self.size)
        # ‖d − q‖² = ‖d‖² − 2 d·q + ‖q‖²: one matrix-vector product, no (N, D) temporary per query.
        return int(np.argmin(self._squared_norms - 2 * (self.descriptors @ query)))

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The neighbour's flow, read back with `read_flow`, at the query's size `(H, W, 2) float32` px."""
        flow = self._read_flow(self.keys[self.neighbour(rgb)])
        return resize_flow(flow, rgb.shape[0], rgb.shape[1])


def zero_flow(rgb: np.ndarray) -> np.ndarray:
    """No motion anywhere."""
    return np.zeros(rgb.shape[:2] + (2,), np.float32)


class MeanFlowBaseline:
    """The training set's per-pixel mean flow, accumulated on a `grid`×`grid` canvas."""

    def __init__(self, grid: int = 64) -> None:
        self.grid, self._sum, self._count = grid, np.zeros((grid, grid, 2), np.float64), 0

    def add(self, flow: np.ndarray) -> None:
        """Accumulate one training flow `(H, W, 2)` px (resampled to the grid, in grid pixels)."""
        self._sum += resize_flow(flow, self.grid, self.grid)
        self._count += 1

    @property
    def mean(self) -> np.ndarray:
        """The mean flow on the grid `(grid, grid, 2)` float32."""
        if not self._count:
            raise ValueError("no training flow added")
        return (self._sum / self._count).astype(np.float32)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The mean flow at the query's size."""
        return resize_flow(self.mean, rgb.shape[0], rgb.shape[1])
