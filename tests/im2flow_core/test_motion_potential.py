"""Motion-potential features and calibration on hand-made flow images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.inference import motion_potential
from im2flow_core.potential_estimators import POTENTIAL_FEATURES, potential_features


def _figure_image(speed: float, side: int, size: int = 40) -> np.ndarray:
    """A still background with a `side`×`side` square moving right at `speed` px."""
    flow = np.zeros((size, size, 2), np.float32)
    flow[:side, :side, 0] = speed
    return encode_flow(flow)


def test_features_of_a_moving_square():
    features = dict(zip(POTENTIAL_FEATURES, potential_features(_figure_image(3.0, 20))))
    assert features["mean M"] == pytest.approx(3.0 * 400 / 1600)
    assert features["mean M where M > 0.5 px"] == pytest.approx(3.0)
    assert features["share M > 0.5 px"] == pytest.approx(0.25) and features["share M > 2 px"] == pytest.approx(0.25)
    assert features["M 99th percentile"] == pytest.approx(3.0)
    still = potential_features(_figure_image(0.0, 20))
    assert still.tolist() == [0.0] * len(POTENTIAL_FEATURES)
    assert motion_potential(_figure_image(3.0, 20)) == pytest.approx(0.75)
