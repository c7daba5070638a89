"""Candidate motion-potential estimators: summary statistics of G's predicted magnitude M.

`benchmarks/potential_estimators.py` compares each against the true mean magnitude (docs/evaluation.md);
the product uses the mean M (`im2flow_core.inference.motion_potential`) or G's potential head
(`im2flow_core.potential_head`).
"""

from __future__ import annotations

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
