"""The demo's generated actions: figures without a front show where they move by a trail; the two ball
actions move alike and differ only in their place."""

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
    poses = synthetic_actions._trajectory(action, np.random.default_rng(5), 8, 96)
    behind = 0
    for k in range(1, 8):
        velocity = np.array([poses[k].x - poses[k - 1].x, poses[k].y - poses[k - 1].y])
        trail = np.abs(with_trail[k] - without[k]).sum(-1) > 12
        if np.linalg.norm(velocity) < 2:
            continue  # nearly still (a ball at the top of its flight): hardly any trail, nothing to check
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


def test_the_ball_actions_move_alike_and_differ_only_in_their_place():
    for seed in range(5):
        rng_bounce, rng_juggle = np.random.default_rng(seed), np.random.default_rng(seed)
        assert (synthetic_actions._trajectory("bounce", rng_bounce, 6, 96)
                == synthetic_actions._trajectory("juggle", rng_juggle, 6, 96))
    np.testing.assert_array_equal(synthetic_actions._shape_mask("bounce"), synthetic_actions._shape_mask("juggle"))
    style = make_scene_style(7, 64)
    np.testing.assert_array_equal(render_clip("bounce", 3, style, 4), render_clip("juggle", 3, style, 4))
    court, gym = (np.array(synthetic_actions.PLACES[a]) for a in ("bounce", "juggle"))
    # far enough apart that the ±30 per channel each scene's colour varies cannot make one place look like the other
    assert np.abs(court - gym).max() > 60
