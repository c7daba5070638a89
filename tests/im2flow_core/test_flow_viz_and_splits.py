import numpy as np
import pytest

from im2flow_core.flow_encoding import encode_flow
from im2flow_core.flow_viz import flow_image_to_color, flow_to_color, make_colorwheel
from im2flow_core.splits import group_of, stratified_split
from im2flow_core.synthetic_actions import ACTIONS, make_scene_style, render_clip


def test_colour_wheel_conventions():
    assert make_colorwheel().shape == (55, 3)
    flow = np.array([[[0, 0], [5, 0], [-5, 0], [0, 5], [0, -5]]], np.float32)
    rgb = flow_to_color(flow, max_magnitude=5)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    np.testing.assert_array_equal(rgb[0, 0], [255, 255, 255])  # no motion is white
    assert len({tuple(c) for c in rgb[0, 1:]}) == 4  # four directions, four hues
    np.testing.assert_array_equal(flow_image_to_color(encode_flow(flow), 5), rgb)
    half = flow_to_color(np.array([[[2.5, 0]]], np.float32), max_magnitude=5)
    assert half[0, 0].min() > rgb[0, 1].min()  # smaller motion is less saturated


def test_split_is_stratified_deterministic_and_by_group():
    ids = [f"C{c}/v_C{c}_g{g:02d}_c{k:02d}" for c in range(3) for g in range(1, 11) for k in range(1, 4)]
    labels = [i.split("/")[0] for i in ids]
    split = stratified_split(ids, labels, 0.3, seed=1)
    assert split == stratified_split(list(reversed(ids)), list(reversed(labels)), 0.3, seed=1)
    for c in range(3):
        groups_test = {group_of(i) for i in ids if i.startswith(f"C{c}/") and split[i] == "test"}
        assert len(groups_test) == 3  # 30 % of 10 groups in every class
    for i in ids:  # clips of one group never straddle the split
        assert all(split[j] == split[i] for j in ids if group_of(j) == group_of(i))
    assert stratified_split(ids, labels, 0.3, seed=2) != split
    with pytest.raises(ValueError):
        stratified_split(ids, labels, 1.5)


def test_synthetic_clips_are_deterministic_and_move():
    style = make_scene_style(3, 64)
    for action in ACTIONS:
        clip = render_clip(action, 5, style, n_frames=6)
        assert clip.shape == (6, 64, 64, 3) and clip.dtype == np.uint8
        np.testing.assert_array_equal(clip, render_clip(action, 5, style, n_frames=6))
        assert np.abs(clip[0].astype(int) - clip[-1].astype(int)).mean() > 1.0  # something moves
    with pytest.raises(ValueError):
        render_clip("fly", 0, style)
