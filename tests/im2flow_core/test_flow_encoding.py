import numpy as np
import pytest

from im2flow_core.flow_encoding import decode_flow, dequantize_flow, encode_flow, quantize_flow


def test_encoding_matches_the_paper_definition():
    flow = np.array([[[3.0, 4.0], [0.0, -2.0], [-1.0, 0.0]]], np.float32)  # (1, 3, 2) u, v
    image = encode_flow(flow)
    np.testing.assert_allclose(image[0, 0], [0.8, 0.6, 5.0], atol=1e-6)  # sin = v/M, cos = u/M, M
    np.testing.assert_allclose(image[0, 1], [-1.0, 0.0, 2.0], atol=1e-6)  # straight up
    np.testing.assert_allclose(image[0, 2], [0.0, -1.0, 1.0], atol=1e-6)  # to the left


def test_round_trip_including_zero_magnitude():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 5, (4, 8, 9, 2)).astype(np.float32)
    flow[0, :3] = 0.0
    image = encode_flow(flow)
    assert image.shape == (4, 8, 9, 3) and image.dtype == np.float32
    np.testing.assert_array_equal(image[0, :3, :, :2], 0.0)  # M = 0 -> F1 = F2 = 0, not NaN
    np.testing.assert_array_equal(image[0, :3, :, 2], 0.0)
    assert np.isfinite(image).all()
    np.testing.assert_allclose(decode_flow(image), flow, atol=1e-5)
    unit = np.hypot(image[..., 0], image[..., 1])
    np.testing.assert_allclose(unit[image[..., 2] > 0], 1.0, atol=1e-5)


def test_decode_is_the_papers_and_keeps_uncertain_directions_short():
    image = np.array([0.3, 0.4, 2.0], np.float32)  # an unsure prediction: (sin, cos) of norm 0.5
    np.testing.assert_allclose(decode_flow(image), [0.8, 0.6], atol=1e-6)  # u = cos·M, v = sin·M


def test_quantisation_error_is_bounded_by_half_a_step():
    rng = np.random.default_rng(1)
    flow = rng.uniform(-40, 40, (64, 64, 2)).astype(np.float32)
    step = 1 / 16
    back = dequantize_flow(quantize_flow(flow, step), step)
    assert np.abs(back - flow).max() <= step / 2 + 1e-5
    with pytest.raises(ValueError):
        quantize_flow(flow, 0)


def test_wrong_channel_count_is_rejected():
    with pytest.raises(ValueError, match="2 channels"):
        encode_flow(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="3 channels"):
        decode_flow(np.zeros((4, 4, 2)))
