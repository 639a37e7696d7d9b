import numpy as np
import pytest
from scipy.stats import spearmanr

from charbench.stats import bootstrap_bradley_terry, fit_bradley_terry, online_elo, paired_delta


def synthetic_matches(strengths, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        i, j = rng.choice(len(strengths), 2, replace=False)
        p = 1 / (1 + np.exp(-(strengths[i] - strengths[j])))
        out.append((i, j) if rng.random() < p else (j, i))
    return out


def test_bradley_terry_recovers_known_ranking():
    strengths = np.linspace(-2, 2, 12)
    matches = synthetic_matches(strengths, 4000, seed=1)
    theta = fit_bradley_terry(matches, 12)
    assert spearmanr(theta, strengths).statistic > 0.95
    assert abs(theta.mean()) < 1e-9


def test_bootstrap_intervals_cover_and_online_elo_agrees_in_order():
    strengths = np.array([-1.0, 0.0, 1.0])
    matches = synthetic_matches(strengths, 1500, seed=2)
    elo, low, high = bootstrap_bradley_terry(matches, 3, n_boot=100, seed=0)
    truth = 1000 + 400 / np.log(10) * (strengths - strengths.mean())
    assert np.all(low <= truth + 40) and np.all(high >= truth - 40)
    assert np.all(low < elo) and np.all(elo < high)
    assert list(np.argsort(online_elo(matches, 3, n_orderings=10))) == [0, 1, 2]


def test_paired_delta_against_hand_numbers():
    est = paired_delta([1, 1, 0, 1], [1, 0, 0, 0])
    # differences 0, 1, 0, 1: mean 0.5, sd 0.57735, se 0.288675
    assert est.value == pytest.approx(0.5) and est.se == pytest.approx(0.288675, abs=1e-6) and est.n == 4
    assert paired_delta([1, 0, 1], [1, 0, 1]).value == 0.0
