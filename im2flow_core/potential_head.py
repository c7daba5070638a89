"""A motion-potential head on G: how much a still image will move, read from G's own activations.

The mean of G's predicted magnitude ranks images poorly (docs/evaluation.md): G puts a blurred,
too-small magnitude on every figure, so the image mean mostly says how large the figures are. The
head instead reads what G has recognised: every convolution's output of G (encoder and decoder),
average- and max-pooled over the image, `(N, F)`; a ridge regression maps them (standardised) to
log(true mean magnitude + 0.05 px). It is fitted in closed form on training frames after G, its ridge
chosen by cross-validation over video groups, and stored with G's weights as plain numbers.
Its output is in px per frame (the calibrated mean magnitude), like the plain estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from im2flow_core.flow_metrics import spearman

LOG_OFFSET_PX = 0.05
"""Added before the log so still frames (mean magnitude ≈ 0) do not dominate the fit."""

RIDGES = (1e3, 3e3, 1e4, 3e4, 1e5)
"""Ridge strengths tried by cross-validation (features number in the thousands)."""


@torch.no_grad()
def pooled_activations(generator: nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """G's model-space output `(N, 3, H, W)` and its pooled activations `(N, F)` for an RGB batch in [-1, 1].

    F = 2 × the output channels of every Conv2d / ConvTranspose2d of G (mean and max over the image).
    """
    pooled: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        pooled.append(torch.cat([output.mean((2, 3)), output.amax((2, 3))], 1))

    layers = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    hooks = [m.register_forward_hook(keep) for m in layers]
    try:
        output = generator(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return output, torch.cat(pooled, 1).float()


@dataclass(frozen=True)
class PotentialHead:
    """Standardisation and ridge weights over pooled activations: `predict` gives px per frame."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    ridge: float
    cv_spearman: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Motion potential (px) for features `(N, F)`: the estimated true mean magnitude of each image."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return np.exp(z @ self.weights + self.bias) - LOG_OFFSET_PX

    def to_state(self) -> dict[str, object]:
        """Tensors and numbers only (loadable with `torch.load(weights_only=True)`)."""
        return {"mean": torch.from_numpy(self.mean), "scale": torch.from_numpy(self.scale),
                "weights": torch.from_numpy(self.weights), "bias": float(self.bias), "ridge": float(self.ridge),
                "cv_spearman": float(self.cv_spearman)}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> PotentialHead:
        """Inverse of `to_state`."""
        arrays = {k: np.asarray(state[k], np.float64) for k in ("mean", "scale", "weights")}
        return cls(**arrays, bias=float(state["bias"]), ridge=float(state["ridge"]),  # type: ignore[arg-type]
                   cv_spearman=float(state["cv_spearman"]))  # type: ignore[arg-type]


def _solve(z: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge weights `(F,)`: through the N × N system when frames are fewer than features, else F × F."""
    centred = y - y.mean()
    if len(z) <= z.shape[1]:
        return z.T @ np.linalg.solve(z @ z.T + ridge * np.eye(len(z)), centred)
    return np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ centred)


def fit_potential_head(features: np.ndarray, true_mean_px: np.ndarray, groups: Sequence[str],
                       ridges: Sequence[float] = RIDGES, folds: int = 5) -> PotentialHead:
    """Fit the head on frames' features `(N, F)` and true mean magnitudes `(N,)` px.

    The ridge maximises the mean Spearman ρ over `folds` folds of whole video groups (`groups`, one
    per frame), so frames of one scene never sit on both sides. Needs frames of ≥ 2 groups.
    """
    x = np.asarray(features, np.float64)
    y = np.log(np.asarray(true_mean_px, np.float64) + LOG_OFFSET_PX)
    if len(x) != len(y) or len(x) != len(groups) or len(x) < 4:
        raise ValueError("the potential head needs at least 4 frames, each with features, a truth and a group")
    names = sorted(set(groups))
    if len(names) < 2:
        raise ValueError("the potential head needs frames of at least two video groups")
    fold_of = {g: i % min(folds, len(names)) for i, g in enumerate(names)}
    fold = np.array([fold_of[g] for g in groups])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    z = (x - mean) / scale
    best = (-np.inf, ridges[0])
    for ridge in ridges:
        scores = []
        for k in np.unique(fold):
            train, held = fold != k, fold == k
            if held.sum() < 3:
                continue
            w = _solve(z[train], y[train], ridge)
            rho = spearman(z[held] @ w, y[held])
            if np.isfinite(rho):
                scores.append(rho)
        score = float(np.mean(scores)) if scores else -np.inf
        if score > best[0]:
            best = (score, ridge)
    weights = _solve(z, y, best[1])
    return PotentialHead(mean, scale, weights, float(y.mean()), float(best[1]), float(best[0]))
