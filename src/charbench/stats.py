"""Statistics shared by the tasks: Bradley-Terry, online Elo, bootstrap intervals, paired deltas.

Plain inputs (lists, arrays), explicit seeds, no global state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import choix
import numpy as np
from threadpoolctl import threadpool_limits

ELO_SCALE = 400.0 / math.log(10.0)
# Whether this context already runs inside single_threaded_blas (a context variable, so threads and tasks each
# see their own; not shared mutable state).
_BLAS_LIMITED: ContextVar[bool] = ContextVar("charbench_blas_limited", default=False)


@dataclass(frozen=True)
class Estimate:
    """A headline number with its uncertainty and n.

    ``n_failed_draws`` counts bootstrap resamples whose statistic was NaN (for example a resample with no valid
    judgement); they are left out of the interval, so a large count means the interval describes only the
    resamples where the statistic exists.
    """

    value: float
    low: float
    high: float
    n: int
    se: float = float("nan")
    n_failed_draws: int = 0

    def as_metrics(self, name: str) -> dict[str, float]:
        """Metric entries ``name``, ``name_low``, ``name_high`` (and ``name_failed_draws`` when any draw failed)."""
        out = {name: self.value, f"{name}_low": self.low, f"{name}_high": self.high}
        if self.n_failed_draws:
            out[f"{name}_failed_draws"] = float(self.n_failed_draws)
        return out

    def __str__(self) -> str:
        failed = f", {self.n_failed_draws} failed draws" if self.n_failed_draws else ""
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n}{failed})"


# Share of NaN bootstrap draws above which bootstrap_statistic warns: a few percent lost barely moves a
# percentile interval; beyond that the interval describes a conditional distribution, which a reader must know.
FAILED_DRAW_WARN_SHARE = 0.05


def theta_to_elo(theta: np.ndarray) -> np.ndarray:
    """Bradley-Terry strengths on the Elo scale: 1000 + 400/ln(10) * theta."""
    return 1000.0 + ELO_SCALE * np.asarray(theta)


def win_matrix(matches: Sequence[tuple[int, int]] | np.ndarray, n_items: int,
               weights: np.ndarray | None = None) -> np.ndarray:
    """``counts[i, j]`` = (weighted) number of matches in which item ``i`` beat item ``j``."""
    arr = np.asarray(matches, dtype=int).reshape(-1, 2)
    if len(arr) and (arr.min() < 0 or arr.max() >= n_items):
        raise ValueError(f"match indices must lie in [0, {n_items}); got {arr.min()}..{arr.max()}")
    flat = np.bincount(arr[:, 0] * n_items + arr[:, 1], weights=weights, minlength=n_items * n_items)
    return flat.reshape(n_items, n_items).astype(float)


def fit_bradley_terry_counts(counts: np.ndarray, alpha: float = 0.01, initial: np.ndarray | None = None) -> np.ndarray:
    """Regularised Bradley-Terry strengths (mean zero) from a win-count matrix (see ``fit_bradley_terry``).

    ``initial`` warm-starts the iteration (a bootstrap starts from the point estimate); it changes only how
    many iterations are needed, not the fixed point they converge to.
    """
    with single_threaded_blas():
        return _fit_counts(counts, alpha, initial)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread for the block; entered again inside (by any fit), it costs nothing.

    Each Bradley-Terry iteration solves an items x items system; at this size multithreaded BLAS spends more on
    synchronising threads than on arithmetic (measured 10x slower on a busy 2-core machine). Entering the limit
    rescans every library the process has loaded (seconds in a process holding several models), so callers that
    fit many times (bootstraps, the leaderboard) enter it once around the whole loop.
    """
    if _BLAS_LIMITED.get():
        yield
        return
    token = _BLAS_LIMITED.set(True)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _BLAS_LIMITED.reset(token)


def _fit_counts(counts: np.ndarray, alpha: float, initial: np.ndarray | None) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 2:
        raise ValueError(f"Bradley-Terry needs a square win-count matrix over at least two items; got {counts.shape}")
    if counts.sum() == 0:
        return np.zeros(counts.shape[0])
    theta = choix.ilsr_pairwise_dense(counts, alpha=alpha, initial_params=initial)
    return theta - theta.mean()


def fit_bradley_terry(matches: Sequence[tuple[int, int]], n_items: int, alpha: float = 0.01) -> np.ndarray:
    """Regularised Bradley-Terry strengths (mean zero) from ``(winner, loser)`` index pairs.

    This is a penalised (MAP-like) estimate, not the plain maximum-likelihood one: choix's iterative Luce
    spectral ranking adds ``alpha`` to every transition rate of its Markov chain, which acts like ``alpha``
    virtual comparisons won by each side of every pair. That keeps an item that never lost (or never won)
    finite and pulls all strengths toward 0, strongly when an item has few matches and negligibly once it
    has hundreds (``tests/test_stats.py`` measures the shrinkage). ``alpha=0`` gives the ML estimate where one
    exists. The fit runs on the item x item win-count matrix (``ilsr_pairwise_dense``): the same fixed point
    as iterating over the match list, at a cost that no longer grows with the number of matches.
    """
    if n_items < 2:
        raise ValueError("Bradley-Terry needs at least two items")
    return fit_bradley_terry_counts(win_matrix(matches, n_items), alpha)


def resample_weights(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_units) bootstrap multiplicities: how often each unit appears in each resample.

    Drawing the multiplicities as one multinomial is the same distribution as drawing ``n_units`` indices
    with replacement, and lets a fit work on counts instead of an expanded copy of the data.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot).astype(float)


def bootstrap_bradley_terry(
    matches: Sequence[tuple[int, int]], n_items: int, n_boot: int = 200, seed: int = 0, alpha: float = 0.01,
    level: float = 0.95, return_draws: bool = False,
) -> tuple[np.ndarray, ...]:
    """Elo ratings with percentile intervals from resampling matches: (elo, low, high[, draws]).

    A resample of matches is a multinomial over the distinct (winner, loser) pairs (at most items^2 of them,
    however many matches there are), so each draw is a win-count matrix fitted warm from the point estimate.
    """
    arr = np.asarray(matches, dtype=int).reshape(-1, 2)
    if n_items < 2:
        raise ValueError("Bradley-Terry needs at least two items")
    counts = win_matrix(arr, n_items)
    theta = fit_bradley_terry_counts(counts, alpha)
    point = theta_to_elo(theta)
    if len(arr) == 0 or n_boot <= 0:
        return (point, point.copy(), point.copy(), point[None, :]) if return_draws else (point, point.copy(), point.copy())
    rng = np.random.default_rng(seed)
    flat = counts.ravel()
    occupied = np.flatnonzero(flat)
    draws = np.empty((n_boot, n_items))
    with single_threaded_blas():
        for b in range(n_boot):
            sample = np.zeros_like(flat)  # pairs never observed stay at zero in every resample
            sample[occupied] = rng.multinomial(len(arr), flat[occupied] / len(arr))
            draws[b] = theta_to_elo(_fit_counts(sample.reshape(n_items, n_items), alpha, initial=theta))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, tail, axis=0), np.percentile(draws, 100 - tail, axis=0)
    return (point, low, high, draws) if return_draws else (point, low, high)


def bradley_terry_draws(matches: Sequence[tuple[int, int]] | np.ndarray, n_items: int, weights: np.ndarray,
                        alpha: float = 0.01) -> np.ndarray:
    """Elo ratings refitted under each row of ``weights`` (resample x match multiplicities): (draws, items).

    For bootstraps whose unit carries more than one match (a sample judged twice, two runs resampled by a
    shared prompt), the caller draws the multiplicities once per unit and passes them to every fit.
    """
    arr = np.asarray(matches, dtype=int).reshape(-1, 2)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if weights.shape[1] != len(arr):
        raise ValueError(f"weights have {weights.shape[1]} columns for {len(arr)} matches")
    theta = fit_bradley_terry_counts(win_matrix(arr, n_items), alpha) if n_items >= 2 else np.zeros(n_items)
    if not len(weights):
        return np.empty((0, n_items))
    with single_threaded_blas():
        return np.stack([theta_to_elo(_fit_counts(win_matrix(arr, n_items, w), alpha, initial=theta)) for w in weights])


def noise_corrected_spread(point: np.ndarray, draws: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Spread of ratings with the estimation noise taken out: sqrt(var(point) - mean(se^2)).

    The SD of estimated ratings is inflated by each rating's own sampling error, so it grows as matches per
    item fall even when the true ratings do not change. Subtracting the mean squared bootstrap standard error
    removes that inflation on average. The interval is a normal one on the variance scale (its SE from the
    bootstrap SD of the draws' variances), mapped to the SD scale; values below 0 are clamped there, and
    ``noise_share`` (mean se^2 / var) says how much of the raw variance was noise.
    """
    point, draws = np.asarray(point, dtype=float), np.asarray(draws, dtype=float)
    raw_var = float(np.var(point))
    noise_var = float(np.mean(np.var(draws, axis=0, ddof=1))) if len(draws) > 1 else float("nan")
    corrected = raw_var - noise_var
    var_se = float(np.std(np.var(draws, axis=1), ddof=1)) if len(draws) > 1 else float("nan")
    z = _z(level)

    def sd(v: float) -> float:
        return float(math.sqrt(max(0.0, v))) if not math.isnan(v) else float("nan")

    return {"value": sd(corrected), "low": sd(corrected - z * var_se), "high": sd(corrected + z * var_se),
            "noise_share": noise_var / raw_var if raw_var > 0 else float("nan")}


def online_elo(
    matches: Sequence[tuple[int, int]] | np.ndarray, n_items: int, k: float = 32.0, start: float = 1000.0,
    n_orderings: int = 100, seed: int = 0,
) -> np.ndarray:
    """The paper's sequential Elo (K=32, start 1000), averaged over random match orderings.

    One pass depends on the order of matches; averaging over shuffles removes that arbitrariness.
    """
    arr = np.asarray(matches, dtype=int).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    total = np.zeros(n_items)
    for _ in range(max(1, n_orderings)):
        ratings = np.full(n_items, start, dtype=float)
        for w, l in arr[rng.permutation(len(arr))]:
            expected = 1.0 / (1.0 + 10 ** ((ratings[l] - ratings[w]) / 400.0))
            ratings[w] += k * (1 - expected)
            ratings[l] -= k * (1 - expected)
        total += ratings
    return total / max(1, n_orderings)


def bootstrap_statistic(
    data: Sequence, statistic: Callable[[list], float], n_boot: int = 1000, seed: int = 0, level: float = 0.95,
) -> Estimate:
    """Percentile bootstrap over the units of ``data`` (prompts, scenarios, items).

    Resamples whose statistic is NaN are counted in ``n_failed_draws``, not hidden; above
    ``FAILED_DRAW_WARN_SHARE`` of ``n_boot`` a warning says how many were lost.
    """
    items = list(data)
    n = len(items)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    draws = []
    failed = 0
    # Entered once for the loop: a statistic that fits Bradley-Terry would otherwise enter it per resample, and
    # each entry rescans the process's libraries (value conflict's tau interval: 1.9 of 3.4 s in the demo).
    with single_threaded_blas():
        point = float(statistic(items))
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            value = float(statistic([items[i] for i in idx]))
            if math.isnan(value):
                failed += 1
            else:
                draws.append(value)
    if n_boot and failed / n_boot > FAILED_DRAW_WARN_SHARE:
        warnings.warn(
            f"bootstrap_statistic: {failed} of {n_boot} resamples gave NaN and were left out of the interval "
            f"(n={n}); the interval describes only resamples where the statistic exists. Pool more units or "
            "use a statistic defined on every resample.", RuntimeWarning, stacklevel=2)
    if not draws:
        return Estimate(point, float("nan"), float("nan"), n, n_failed_draws=failed)
    tail = (1 - level) / 2 * 100
    return Estimate(point, float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail)), n,
                    float(np.std(draws, ddof=1)) if len(draws) > 1 else float("nan"), failed)


def mean_estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean with a normal-approximation interval from the standard error."""
    arr = np.asarray(values, dtype=float)
    n = len(arr)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(arr.mean())
    se = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    z = _z(level)
    return Estimate(mean, mean - z * se, mean + z * se, n, se)


def paired_delta(candidate: Sequence[float], baseline: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of per-item differences with the paired standard error sd(d)/sqrt(n)."""
    c, b = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if c.shape != b.shape:
        raise ValueError(f"paired comparison needs the same items: {c.shape} vs {b.shape}")
    return mean_estimate(c - b, level)


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))
