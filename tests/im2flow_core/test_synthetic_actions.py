"""The demo's generated actions: figures without a front show where they move by a trail."""

import numpy as np
import pytest

from im2flow_core import synthetic_actions
from im2flow_core.synthetic_actions import make_scene_style, render_clip


@pytest.mark.parametrize("action", synthetic_actions.TRAILING)
def test_a_figure_without_a_front_leaves_a_trail_behind_its_motion(action, monkeypatch):
    style = make_scene_style(3, 96)
    with_trail = render_clip(action, 5, style, 8, noise_sigma=0.0, figure_scale=1.5).astype(np.int32)
    monkeypatch.setattr(synthetic_actions, "TRAILING", ())
    without = render_clip(action, 5, style, 8, noise_sigma=0.0, figure_scale=1.5).astype(np.int32)
    poses = synthetic_actions._trajectory(action, np.random.default_rng(5), 8, 96, 1.5)
    behind = 0
    for k in range(1, 8):
        velocity = np.array([poses[k].x - poses[k - 1].x, poses[k].y - poses[k - 1].y])
        trail = np.abs(with_trail[k] - without[k]).sum(-1) > 12
        if np.linalg.norm(velocity) < 2:
            continue  # nearly still (a pendulum at its turning point): hardly any trail, nothing to check
        assert trail.any(), f"frame {k} moves {velocity} px but shows no trail"
        ys, xs = np.nonzero(trail)
        offset = np.array([xs.mean() - poses[k].x, ys.mean() - poses[k].y])
        assert offset @ velocity < 0, f"frame {k}: the trail lies ahead of the motion"
        behind += 1
    assert behind >= 3


def test_figures_with_a_front_have_no_trail(monkeypatch):
    style = make_scene_style(4, 96)
    clip = render_clip("swim_left", 2, style, 4)
    monkeypatch.setattr(synthetic_actions, "TRAILING", ())
    np.testing.assert_array_equal(clip, render_clip("swim_left", 2, style, 4))
