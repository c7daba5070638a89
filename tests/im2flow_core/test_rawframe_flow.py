"""The rawframes flow quantization (denseflow / mmaction2 formula) and the numbering check by content."""

from __future__ import annotations

import numpy as np
import pytest

from im2flow_core.rawframe_flow import (
    alignment_errors,
    count_at_bound,
    flow_to_gray,
    gray_to_flow,
    misaligned_offset,
    warp_error,
)
from tests.conftest import real_texture


def test_gray_levels_follow_the_mmaction2_formula_and_count_clipping():
    bound = 20.0
    flow = np.array([[[-20.0, 20.0], [0.0, 0.05], [-25.0, 31.0], [7.3, -19.9]]], np.float32)
    x, y, clipped = flow_to_gray(flow, bound)
    expected = np.clip(np.rint(255 * (flow.astype(np.float64) + bound) / (2 * bound)), 0, 255)
    assert x.dtype == np.uint8 and x.tolist() == expected[..., 0].tolist() and y.tolist() == expected[..., 1].tolist()
    assert x[0, 0] == 0 and y[0, 0] == 255 and x[0, 2] == 0 and y[0, 2] == 255
    assert clipped == 2  # -25 and 31 lie beyond ±20; ±20 exactly does not
    assert count_at_bound(x, y) == 4


def test_round_trip_error_is_at_most_half_a_level_inside_the_bound():
    rng = np.random.default_rng(0)
    bound = 20.0
    flow = rng.uniform(-bound, bound, (64, 48, 2)).astype(np.float32)
    x, y, clipped = flow_to_gray(flow, bound)
    back = gray_to_flow(x, y, bound)
    assert clipped == 0 and back.shape == flow.shape and back.dtype == np.float32
    error = np.abs(back - flow).max()
    assert error <= bound / 255 + 1e-5
    assert error > 0.9 * bound / 255  # the bound is tight: the grid step is 2b/255
    assert np.allclose(gray_to_flow(np.array([[0]], np.uint8), np.array([[255]], np.uint8), bound), [[[-20, 20]]])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="bound"):
        flow_to_gray(np.zeros((2, 2, 2), np.float32), 0)
    with pytest.raises(ValueError, match="shape"):
        flow_to_gray(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="one size"):
        gray_to_flow(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def _moving_clip(shifts: list[int], height: int = 64, width: int = 80) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of a real photo whose content moves right by `shifts[i]` px from frame i to i + 1, and the true flows."""
    big = real_texture(height, width + sum(shifts) + 8)
    starts = [sum(shifts) + 4]
    for s in shifts:
        starts.append(starts[-1] - s)  # the window moves left, so the content moves right
    frames = [np.ascontiguousarray(big[:, c : c + width]) for c in starts]
    flows = [np.stack([np.full((height, width), float(s), np.float32), np.zeros((height, width), np.float32)], -1)
             for s in shifts]
    return frames, flows


def test_the_true_flow_warps_its_frame_onto_the_next():
    frames, flows = _moving_clip([3, 1, 5, 2])
    assert warp_error(frames[0], frames[1], flows[0]) < 2.0
    assert warp_error(frames[0], frames[1], flows[2]) > 3 * warp_error(frames[0], frames[1], flows[0])


def test_flow_shifted_by_one_frame_is_found_by_content():
    frames, flows = _moving_clip([3, 1, 6, 2, 5, 1])
    all_frames = dict(enumerate(frames))
    aligned = alignment_errors(all_frames, dict(enumerate(flows)))
    assert misaligned_offset(aligned) == 0 and aligned[0] < aligned[1] and aligned[0] < aligned[-1]
    # Flow numbered one later than its frame (flow i stored as i + 1), and one earlier.
    late = {i + 1: f for i, f in enumerate(flows[:-1])}
    early = {i - 1: f for i, f in enumerate(flows) if i > 0}
    assert misaligned_offset(alignment_errors(all_frames, late)) == -1
    assert misaligned_offset(alignment_errors(all_frames, early)) == 1


def test_uniform_motion_is_not_flagged():
    frames, flows = _moving_clip([2, 2, 2, 2, 2])
    late = {i + 1: f for i, f in enumerate(flows[:-1])}
    assert misaligned_offset(alignment_errors(dict(enumerate(frames)), late)) == 0
