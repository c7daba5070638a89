import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from im2flow_core.baselines import MeanFlowBaseline, NearestNeighbourBaseline, appearance_descriptor, zero_flow
from im2flow_core.flow_metrics import (
    COLUMNS,
    PAPER_HEADERS,
    canny_mask,
    foreground_mask,
    image_scores,
    mean_scores,
    per_pixel,
    spearman,
)


def _field(u, v, shape=(4, 5)):
    return np.stack([np.full(shape, u, np.float32), np.full(shape, v, np.float32)], -1)


@pytest.mark.parametrize("pred,true,epe,ds,os_", [
    ((3, 4), (3, 4), 0.0, 1.0, 1.0),  # identical
    ((-3, -4), (3, 4), 10.0, -1.0, 1.0),  # opposite: same orientation
    ((0, 2), (2, 0), math.sqrt(8), 0.0, 0.0),  # orthogonal
    ((0, 0), (2, 0), 2.0, 0.0, 0.0),  # no predicted direction: DS = OS = 0 by convention
])
def test_metrics_on_hand_built_flows(pred, true, epe, ds, os_):
    maps = per_pixel(_field(*pred), _field(*true))
    np.testing.assert_allclose(maps["epe"], epe, atol=1e-6)
    np.testing.assert_allclose(maps["ds"], ds, atol=1e-6)
    np.testing.assert_allclose(maps["os"], os_, atol=1e-6)


def test_masks_and_empty_mask_convention():
    true = _field(0, 0, (8, 8))
    true[2:6, 2:6] = (1.0, 0.0)
    pred = _field(1, 0, (8, 8))
    masks = {"canny": np.zeros((8, 8), bool), "fg": foreground_mask(true, 0.5, 3)}
    scores = image_scores(pred, true, masks)
    assert set(scores) == set(COLUMNS)
    assert math.isnan(scores["epe_canny"]) and math.isnan(scores["ds_canny"])  # empty mask: NaN, no crash
    assert scores["epe_fg"] == pytest.approx(0.0) and scores["ds_fg"] == pytest.approx(1.0)
    assert scores["epe"] == pytest.approx(48 / 64)  # 1 px wrong on the 48 still pixels
    assert scores["ds"] == pytest.approx(16 / 64)  # still pixels have no direction: 0
    both = mean_scores([scores, {**scores, "epe_canny": 2.0}])
    assert both["epe_canny"] == 2.0 and both["epe"] == pytest.approx(48 / 64)


def test_foreground_mask_cleans_specks_and_canny_finds_edges():
    true = np.zeros((20, 20, 2), np.float32)
    true[5:12, 5:12, 0] = 2.0
    true[17, 17, 0] = 3.0  # an isolated speck
    mask = foreground_mask(true, 0.5, 3)
    assert mask[8, 8] and not mask[17, 17]
    rgb = np.zeros((20, 20, 3), np.uint8)
    rgb[:, 10:] = 255
    edges = canny_mask(rgb)
    assert edges[:, 9:11].any() and not edges[:, :5].any()
    assert not canny_mask(np.full((20, 20, 3), 128, np.uint8)).any()


def test_table_columns_are_the_papers():
    assert [PAPER_HEADERS[c] for c in COLUMNS] == ["EPE", "EPE-Canny", "EPE-FG", "DS", "DS-Canny", "DS-FG", "OS",
                                                   "OS-Canny", "OS-FG"]


def test_spearman_against_scipy_and_edge_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a + rng.normal(scale=0.5, size=30)
    b[3] = b[4]  # a tie
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman(np.arange(5), np.arange(5) ** 3) == pytest.approx(1.0)
    assert spearman(np.arange(5), -np.arange(5)) == pytest.approx(-1.0)
    assert math.isnan(spearman(np.ones(5), np.arange(5)))


def test_baselines():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    flows = [_field(k + 1, -k, (16, 16)) for k in range(3)]
    reads = []
    nn = NearestNeighbourBaseline(np.stack([appearance_descriptor(f) for f in frames]), ["a", "b", "c"],
                                  lambda key: reads.append(key) or flows["abc".index(key)])
    assert nn.neighbour(frames[1]) == 1 and not reads  # searching reads no flow
    big = np.repeat(np.repeat(frames[2], 2, 0), 2, 1)  # the same frame at twice the size
    np.testing.assert_allclose(nn.predict(big), _field(6, -4, (32, 32)), atol=1e-5)  # vectors rescale too
    assert reads == ["c"]  # only the neighbour's flow was read
    small = NearestNeighbourBaseline(np.stack([appearance_descriptor(f, 4) for f in frames]), "abc",
                                     lambda key: flows["abc".index(key)])
    assert small.size == 4 and small.neighbour(frames[0]) == 0  # the descriptor size comes with the descriptors
    with pytest.raises(ValueError):
        NearestNeighbourBaseline(np.zeros((2, 10), np.float32), "ab", lambda key: flows[0])
    mean = MeanFlowBaseline(grid=8)
    for f in flows:
        mean.add(f)
    np.testing.assert_allclose(mean.predict(frames[0]), _field(2, -1, (16, 16)), atol=1e-5)
    assert not zero_flow(frames[0]).any() and zero_flow(frames[0]).shape == (16, 16, 2)
    with pytest.raises(ValueError):
        MeanFlowBaseline().mean

