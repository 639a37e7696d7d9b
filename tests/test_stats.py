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


def test_count_matrix_fit_equals_the_match_list_estimator():
    # The old estimator iterated over the match list; the count-matrix fit must reach the same fixed point,
    # both on the data and on a resample with repeated matches (the bootstrap's case).
    import choix

    from charbench.stats import bradley_terry_draws

    strengths = np.random.default_rng(5).normal(0, 1, 20)
    matches = synthetic_matches(strengths, 1500, seed=6)
    old = choix.ilsr_pairwise(20, matches, alpha=0.01)
    assert np.abs(fit_bradley_terry(matches, 20) - (old - old.mean())).max() < 1e-6
    idx = np.random.default_rng(7).integers(0, len(matches), len(matches))
    weights = np.bincount(idx, minlength=len(matches))[None, :]
    old_resample = choix.ilsr_pairwise(20, [matches[i] for i in idx], alpha=0.01)
    new_resample = (bradley_terry_draws(matches, 20, weights)[0] - 1000) / (400 / np.log(10))
    assert np.abs(new_resample - (old_resample - old_resample.mean())).max() < 1e-6


def test_count_bootstrap_spread_matches_index_resampling():
    # Multinomial over distinct pairs is the same distribution as resampling match indices: the bootstrap
    # SDs of each rating agree with an explicit index bootstrap within Monte Carlo error.
    strengths = np.array([-1.0, -0.3, 0.2, 1.0])
    matches = synthetic_matches(strengths, 400, seed=8)
    _, _, _, draws = bootstrap_bradley_terry(matches, 4, n_boot=300, seed=1, return_draws=True)
    rng = np.random.default_rng(2)
    arr = np.array(matches)
    explicit = np.array([fit_bradley_terry(arr[rng.integers(0, 400, 400)], 4) for _ in range(300)]) * 400 / np.log(10)
    assert np.allclose(draws.std(axis=0), explicit.std(axis=0), rtol=0.2)


def test_regularisation_pulls_small_samples_toward_zero():
    # Items 0 > 1 > 2 with a few upsets: the unpenalised ML estimate exists; alpha shrinks it, much more at
    # n=6 matches than at n=600 (the same proportions repeated 100 times).
    from scipy.optimize import minimize

    base = [(0, 1), (0, 1), (1, 0), (1, 2), (1, 2), (2, 1), (0, 2), (0, 2), (2, 0)]

    def ml(matches):
        def nll(t):
            t = np.concatenate([[0.0], t])
            return sum(np.logaddexp(0, -(t[w] - t[l])) for w, l in matches)
        t = np.concatenate([[0.0], minimize(nll, np.zeros(2), method="BFGS").x])
        return t - t.mean()

    truth = ml(base)
    small = fit_bradley_terry(base, 3, alpha=0.5)
    large = fit_bradley_terry(base * 100, 3, alpha=0.5)
    assert np.std(small) < 0.9 * np.std(truth)  # pulled toward 0
    assert np.std(fit_bradley_terry(base, 3)) < np.std(truth)  # the default alpha shrinks too, less
    assert np.allclose(large, truth, atol=0.02)  # negligible once counts are large
    assert np.allclose(fit_bradley_terry(base, 3, alpha=0.0), truth, atol=1e-4)  # alpha=0 is the ML estimate
    assert np.all(np.isfinite(fit_bradley_terry([(0, 1)] * 5, 2)))  # a never-beaten item stays finite


def test_noise_corrected_spread_removes_noise_under_the_null():
    from charbench.stats import noise_corrected_spread

    # Equal true strengths: the raw SD is pure noise and shrinks as matches grow; the corrected one is ~0.
    for n in (300, 3000):
        matches = synthetic_matches(np.zeros(12), n, seed=n)
        point, _, _, draws = bootstrap_bradley_terry(matches, 12, n_boot=200, seed=0, return_draws=True)
        spread = noise_corrected_spread(point, draws)
        assert np.std(point) > 10
        assert spread["value"] < 0.5 * np.std(point)
        assert spread["noise_share"] > 0.6
        assert spread["low"] == 0.0
    # A real spread survives the correction: true SD 174 Elo (1 logit), estimated within its interval.
    strengths = np.linspace(-1.6, 1.6, 12)
    matches = synthetic_matches(strengths, 4000, seed=9)
    point, _, _, draws = bootstrap_bradley_terry(matches, 12, n_boot=200, seed=0, return_draws=True)
    spread = noise_corrected_spread(point, draws)
    true_sd = np.std(strengths) * 400 / np.log(10)
    assert spread["low"] < true_sd < spread["high"]
    assert spread["value"] < np.std(point)


def test_bootstrap_statistic_counts_and_reports_nan_draws():
    from charbench.stats import bootstrap_statistic

    # The statistic is undefined (NaN) on a resample without any 1: with 2 ones in 40, about 13% of resamples.
    data = [1] * 2 + [0] * 38

    def share_of_ones_or_nan(xs):
        return float(np.mean(xs)) if any(xs) else float("nan")

    with pytest.warns(RuntimeWarning, match="resamples gave NaN"):
        est = bootstrap_statistic(data, share_of_ones_or_nan, n_boot=400, seed=3)
    rng = np.random.default_rng(3)
    expected = sum(1 for _ in range(400) if not any(data[i] for i in rng.integers(0, 40, 40)))
    assert est.n_failed_draws == expected > 0
    assert "failed draws" in str(est)
    clean = bootstrap_statistic(list(range(40)), lambda xs: float(np.mean(xs)), n_boot=200)
    assert clean.n_failed_draws == 0


def test_estimate_as_metrics_names_the_interval_and_reports_failed_draws():
    from charbench.stats import Estimate

    assert Estimate(0.5, 0.4, 0.6, 10).as_metrics("adherence") == {
        "adherence": 0.5, "adherence_low": 0.4, "adherence_high": 0.6}
    with_failures = Estimate(0.5, 0.4, 0.6, 10, n_failed_draws=7).as_metrics("adherence")
    assert with_failures["adherence_failed_draws"] == 7.0


@pytest.fixture
def blas_limit_entries(monkeypatch):
    """The keyword arguments of every entry into threadpoolctl's limit made through charbench.stats."""
    from charbench import stats

    entered = []
    real = stats.threadpool_limits

    def counting(*args, **kwargs):
        entered.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(stats, "threadpool_limits", counting)
    return entered


def test_blas_limit_is_entered_once_around_many_fits(blas_limit_entries):
    # Entering threadpoolctl's limit rescans the process's libraries (seconds in a process holding models), so
    # a caller that fits many times enters it once and every fit inside reuses it.
    from charbench import stats

    entered = blas_limit_entries
    matches = [(0, 1), (1, 2), (2, 0), (0, 2), (1, 0)] * 4
    weights = np.ones((5, len(matches)))
    alone = stats.bradley_terry_draws(matches, 3, weights)
    assert len(entered) == 2  # the point fit and the loop of refits, each entering on its own
    entered.clear()
    with stats.single_threaded_blas():
        inside = stats.bradley_terry_draws(matches, 3, weights)
        stats.fit_bradley_terry_counts(np.ones((3, 3)))
    assert len(entered) == 1 and entered[0] == {"limits": 1, "user_api": "blas"}
    np.testing.assert_allclose(inside, alone)
    entered.clear()
    stats.fit_bradley_terry_counts(np.ones((3, 3)))  # outside the block the limit is entered again
    assert len(entered) == 1


def test_bootstrap_statistic_enters_the_blas_limit_once_for_all_resamples(blas_limit_entries):
    # Value conflict's Kendall-tau interval refits Bradley-Terry on every resample: one entry, not n_boot + 1.
    from charbench import stats

    entered = blas_limit_entries
    units = [(0, 1), (1, 2), (2, 0), (0, 2), (1, 0), (0, 1)]

    def strength_of_first(sample):
        return float(stats.fit_bradley_terry(sample, 3)[0])

    est = stats.bootstrap_statistic(units, strength_of_first, n_boot=20, seed=0)
    assert len(entered) == 1
    assert est.n == len(units) and est.low <= est.high
