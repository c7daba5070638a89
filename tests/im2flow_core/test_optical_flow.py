import cv2
import numpy as np
import pytest

from im2flow_core.optical_flow import DISParams, FlowAlgorithm, TVL1Params, create_estimator
from tests.conftest import real_texture


def _warp(image: np.ndarray, flow_fn) -> tuple[np.ndarray, np.ndarray]:
    """frame1 such that frame0[y, x] = frame1[y + v, x + u] for the analytic flow (u, v)."""
    h, w = image.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (np.asarray(c, np.float32) for c in flow_fn(xs, ys))
    # frame1(p) = frame0(p - flow); the flow is smooth, so evaluating it at p is accurate enough.
    frame1 = cv2.remap(image, xs - u, ys - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return frame1, np.stack([u, v], -1)


@pytest.fixture(scope="module")
def gray():
    return cv2.cvtColor(real_texture(120, 160), cv2.COLOR_RGB2GRAY)


def test_tvl1_recovers_a_translation(gray):
    frame1, truth = _warp(gray, lambda x, y: (np.full_like(x, 2.5), np.full_like(y, -1.5)))
    flow = create_estimator("tvl1").calc(gray, frame1)
    inner = (slice(10, -10), slice(10, -10))
    epe = np.linalg.norm(flow[inner] - truth[inner], axis=-1)
    assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
    assert np.median(epe) < 0.15, np.median(epe)


def test_tvl1_recovers_a_rotation(gray):
    cx, cy, angle = 80.0, 60.0, np.deg2rad(2.0)

    def rotation(x, y):
        dx, dy = x - cx, y - cy
        return (np.cos(angle) * dx - np.sin(angle) * dy - dx), (np.sin(angle) * dx + np.cos(angle) * dy - dy)

    frame1, truth = _warp(gray, rotation)
    flow = create_estimator(FlowAlgorithm.tvl1).calc(gray, frame1)
    inner = (slice(12, -12), slice(12, -12))
    epe = np.linalg.norm(flow[inner] - truth[inner], axis=-1)
    assert np.mean(epe) < 0.35, np.mean(epe)
    # Direction is right: the rotation is counter-clockwise on screen around the centre.
    assert np.mean(np.sum(flow[inner] * truth[inner], -1) > 0) > 0.9


@pytest.mark.parametrize("algorithm", ["dis", "farneback"])
def test_fast_algorithms_get_a_translation_roughly(gray, algorithm):
    frame1, truth = _warp(gray, lambda x, y: (np.full_like(x, 2.0), np.zeros_like(y)))
    flow = create_estimator(algorithm).calc(gray, frame1)
    assert np.median(np.linalg.norm(flow[20:-20, 20:-20] - truth[20:-20, 20:-20], axis=-1)) < 0.5


def test_tvl1_defaults_are_opencvs_own():
    ours = create_estimator("tvl1").resolved_params()
    theirs = cv2.optflow.DualTVL1OpticalFlow_create()
    assert ours["tau"] == pytest.approx(theirs.getTau())
    assert ours["lambda"] == pytest.approx(theirs.getLambda())
    assert ours["warps"] == theirs.getWarpingsNumber() and ours["nscales"] == theirs.getScalesNumber()
    assert ours["inner_iterations"] == theirs.getInnerIterations()
    assert ours["median_filtering"] == theirs.getMedianFiltering()
    assert ours["scale_step"] == pytest.approx(theirs.getScaleStep())


def test_parameters_reach_opencv_and_are_validated():
    est = create_estimator("tvl1", TVL1Params(warps=2, nscales=3, **{"lambda": 0.3}))
    assert est.resolved_params()["warps"] == 2 and est.resolved_params()["lambda"] == pytest.approx(0.3)
    assert create_estimator("dis", DISParams(preset="fast", patch_size=12)).resolved_params()["patch_size"] == 12
    with pytest.raises(ValueError):
        TVL1Params(warps=0)
    with pytest.raises(TypeError):
        create_estimator("tvl1", DISParams())
    with pytest.raises(ValueError, match="uint8"):
        create_estimator("tvl1").calc(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))
