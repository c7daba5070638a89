"""Motion-potential features and calibration on hand-made flow images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.inference import motion_potential
from im2flow_core.motion_potential import POTENTIAL_FEATURES, fit_potential_calibration, potential_features


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


def test_calibration_learns_the_mean_magnitude_and_keeps_its_unit():
    images = [_figure_image(s, side) for s in (1.0, 2.0, 3.0, 4.0) for side in (8, 16, 24)]
    truth = [float(np.linalg.norm(np.stack([im[..., 1] * im[..., 2], im[..., 0] * im[..., 2]], -1), axis=-1).mean())
             for im in images]
    calibration = fit_potential_calibration([potential_features(im) for im in images], truth, ridge=1e-6)
    assert [calibration.predict(potential_features(im)) for im in images] == pytest.approx(truth, abs=1e-3)
    assert calibration.predict(potential_features(_figure_image(2.5, 12))) == pytest.approx(2.5 * 144 / 1600, abs=0.05)
    again = type(calibration)(**{k: tuple(v) if isinstance(v, list) else v for k, v in calibration.to_dict().items()})
    assert again == calibration
    with pytest.raises(ValueError):
        fit_potential_calibration([potential_features(images[0])], [1.0])
