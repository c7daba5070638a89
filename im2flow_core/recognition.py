"""Two-stream static-image action recognition: late fusion, its weight, and accuracy measures.

Scores are class probabilities `(N, C)` (softmax of each stream's logits). Late fusion
(Simonyan & Zisserman 2014) averages them: fused = (1 − w) · appearance + w · motion, with the
motion weight w ∈ [0, 1]. The weight is chosen on validation scores only (`select_fusion_weight`);
test scores never influence it. Video-level scores are the mean of the frame scores of a video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

DEFAULT_WEIGHT_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))
"""Motion weights tried when the fusion weight is selected on validation data."""


def softmax_scores(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    """Class probabilities `(N, C)` float64 from logits `(N, C)`."""
    x = torch.as_tensor(logits, dtype=torch.float64)
    return torch.softmax(x, dim=1).numpy()


def fuse(appearance: np.ndarray, motion: np.ndarray, motion_weight: float) -> np.ndarray:
    """Late fusion `(1 − w) · appearance + w · motion` of two `(N, C)` score arrays."""
    if appearance.shape != motion.shape:
        raise ValueError(f"stream scores differ in shape: {appearance.shape} vs {motion.shape}")
    if not 0.0 <= motion_weight <= 1.0:
        raise ValueError(f"motion_weight must be in [0, 1], got {motion_weight}")
    return (1.0 - motion_weight) * np.asarray(appearance, np.float64) + motion_weight * np.asarray(motion, np.float64)


def top1_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose highest score is the true label (NaN for no rows)."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    return float((np.asarray(scores).argmax(1) == labels).mean())


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> float:
    """Top-1 accuracy averaged over the classes present in `labels` (balanced accuracy)."""
    labels = np.asarray(labels)
    predicted = np.asarray(scores).argmax(1)
    per_class = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
    return float(np.mean(per_class)) if per_class else float("nan")


def confusion_matrix(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts `(C, C)` int64: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(scores).argmax(1)), 1)
    return matrix


def select_fusion_weight(val_appearance: np.ndarray, val_motion: np.ndarray, val_labels: np.ndarray,
                         grid: Sequence[float] = DEFAULT_WEIGHT_GRID) -> float:
    """The motion weight of `grid` for late fusion, chosen on validation top-1 accuracy by the
    one-standard-error rule: of the weights whose fused validation accuracy is within one standard error
    √(a (1 − a) / n) of the best accuracy a (n validation samples), the one closest to 0.5 (equal averaging,
    the two-stream default), then the smaller.

    Why not simply the best: on a small validation set the accuracies of neighbouring weights differ by
    noise (n = 160 frames: one standard error ≈ 0.02), and the streams' validation scores are optimistic
    in different amounts (each stream keeps its best-validation epoch), so the arg-max drifts to whichever
    stream was luckier there. With thousands of validation samples (UCF-101) the tolerance shrinks to a
    few thousandths and the weight follows the data.
    """
    labels = np.asarray(val_labels)
    if len(labels) == 0:
        raise ValueError("selecting the fusion weight needs validation samples")
    accuracies = [top1_accuracy(fuse(val_appearance, val_motion, float(w)), labels) for w in grid]
    best = max(accuracies)
    tolerance = math.sqrt(best * (1.0 - best) / len(labels))
    candidates = [float(w) for w, acc in zip(grid, accuracies) if acc >= best - tolerance - 1e-12]
    return min(candidates, key=lambda w: (abs(w - 0.5), w))


def video_scores(scores: np.ndarray, video_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean frame scores per video: (video ids in first-seen order, `(V, C)` scores)."""
    order: dict[str, list[int]] = {}
    for i, video in enumerate(video_ids):
        order.setdefault(video, []).append(i)
    scores = np.asarray(scores, np.float64)
    return list(order), np.stack([scores[idx].mean(0) for idx in order.values()]) if order else np.zeros((0, 0))


def video_labels(labels: np.ndarray, video_ids: Sequence[str]) -> np.ndarray:
    """The label of each video (first frame's), in the order of `video_scores`; checks consistency."""
    seen: dict[str, int] = {}
    for label, video in zip(np.asarray(labels).tolist(), video_ids):
        if seen.setdefault(video, label) != label:
            raise ValueError(f"video {video!r} has frames with different labels")
    return np.array(list(seen.values()), np.int64)


class MotionStream(nn.Module):
    """The motion stream on hallucinated flow: RGB `(N, 3, H, W)` in [-1, 1] → logits `(N, C)`.

    G (frozen, always in eval mode, no gradients) turns the frame into a model-space flow image
    (sin θ, cos θ, M / scale) and the classifier reads that. Only the classifier is trained.
    """

    def __init__(self, generator: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.generator, self.classifier = generator, classifier
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.generator.eval()

    def train(self, mode: bool = True) -> MotionStream:
        super().train(mode)
        self.generator.eval()  # dropout and BatchNorm of G stay as at inference
        return self

    def hallucinate(self, rgb: torch.Tensor) -> torch.Tensor:
        """G's model-space flow image `(N, 3, H, W)` for `rgb`."""
        with torch.no_grad():
            return self.generator(rgb)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Class logits `(N, C)`."""
        return self.classifier(self.hallucinate(rgb))
