"""Rank agreement statistics against scipy's, and the bootstrap interval's coverage of known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import bootstrap, kendalltau, rankdata, spearmanr

from im2flow_core.flow_metrics import rank, spearman
from im2flow_core.rank_stats import _kendall_interval, bootstrap_interval, kendall_tau, rank_agreement


@pytest.mark.parametrize("seed", range(5))
def test_ranks_and_correlations_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, 40).astype(float)  # many ties
    b = a + rng.normal(0, 2, 40).round()
    np.testing.assert_allclose(rank(a), rankdata(a))
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


def test_constant_or_mismatched_inputs():
    assert math.isnan(kendall_tau(np.ones(5), np.arange(5.0)))
    assert kendall_tau(np.arange(5.0), -np.arange(5.0)) == -1.0
    with pytest.raises(ValueError):
        kendall_tau(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        bootstrap_interval(np.ones(1), np.ones(1), spearman)


def test_bootstrap_interval_agrees_with_scipys_percentile_bootstrap():
    rng = np.random.default_rng(1)
    a = rng.normal(size=60)
    b = 0.5 * a + rng.normal(size=60)
    ours = bootstrap_interval(a, b, spearman, n_resamples=3000, seed=3)
    theirs = bootstrap((a, b), lambda x, y: spearmanr(x, y).statistic, paired=True, vectorized=False,
                       n_resamples=3000, method="percentile", random_state=3).confidence_interval
    assert ours[0] == pytest.approx(theirs.low, abs=0.05) and ours[1] == pytest.approx(theirs.high, abs=0.05)
    assert ours[0] < spearman(a, b) < ours[1]


def test_fast_kendall_interval_equals_resampling_directly():
    rng = np.random.default_rng(2)
    a = rng.normal(size=50)
    b = a + rng.normal(size=50)
    fast = _kendall_interval(a, b, 500, 0.95, seed=4)
    slow = bootstrap_interval(a, b, kendall_tau, 500, 0.95, seed=4)
    assert fast == pytest.approx(slow, abs=1e-6)  # same resamples, same statistic


def test_rank_agreement_says_when_a_ranking_is_no_better_than_chance():
    rng = np.random.default_rng(5)
    truth = rng.uniform(size=80)
    good = rank_agreement(truth + rng.normal(0, 0.1, 80), truth, n_resamples=500)
    noise = rank_agreement(rng.uniform(size=80), truth, n_resamples=500)
    assert good["spearman_low"] > 0.8 and good["kendall_low"] > 0.6
    assert noise["spearman_low"] < 0 < noise["spearman_high"] and noise["kendall_low"] < 0 < noise["kendall_high"]
