"""Motion potential: how much motion a still image implies, estimated from G's flow image.

The plain estimate is the mean predicted magnitude M over the image (px per frame, at the image's
own resolution). Summary features of the predicted M (`potential_features`) can also be mapped to
the true mean magnitude by a ridge regression fitted on frames whose true flow is known
(`fit_potential_calibration`): a calibrated estimator in the same unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POTENTIAL_FEATURES = ("mean M", "mean M where M > 0.5 px", "share M > 0.25 px", "share M > 0.5 px",
                      "share M > 1 px", "share M > 2 px", "M 90th percentile", "M 99th percentile")
"""Names of `potential_features`' entries, in order."""


def potential_features(flow_image: np.ndarray) -> np.ndarray:
    """Summary of the predicted magnitude of a flow image `(H, W, 3)` (sin θ, cos θ, M px): `(8,) float64`."""
    magnitude = np.asarray(flow_image[..., 2], np.float64).ravel()
    moving = magnitude > 0.5
    return np.array([magnitude.mean(), magnitude[moving].mean() if moving.any() else 0.0,
                     (magnitude > 0.25).mean(), moving.mean(), (magnitude > 1).mean(), (magnitude > 2).mean(),
                     np.percentile(magnitude, 90), np.percentile(magnitude, 99)])


@dataclass(frozen=True)
class PotentialCalibration:
    """A linear map from `potential_features` (standardised) to the true mean magnitude, px."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def predict(self, features: np.ndarray) -> float:
        """Calibrated motion potential (px) of one image's features."""
        z = (np.asarray(features, np.float64) - np.array(self.mean)) / np.array(self.scale)
        return float(z @ np.array(self.weights) + self.bias)

    def to_dict(self) -> dict[str, object]:
        """Plain data, to store beside model weights."""
        return {"mean": list(self.mean), "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias}


def fit_potential_calibration(features: list[np.ndarray], true_mean_magnitudes: list[float],
                              ridge: float = 1.0) -> PotentialCalibration:
    """Ridge regression of the true mean magnitude (px) on standardised features; needs ≥ 2 frames."""
    x = np.stack([np.asarray(f, np.float64) for f in features])
    y = np.asarray(true_mean_magnitudes, np.float64)
    if len(x) < 2 or len(x) != len(y):
        raise ValueError("a calibration needs at least two frames, each with a true mean magnitude")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return PotentialCalibration(tuple(mean), tuple(scale), tuple(weights), float(y.mean()))
