"""Structural statistics of the value-conflict probe (charbench.tasks.value_conflict.stats), on hand-computed cases."""

import math
import random
from itertools import combinations, permutations

import numpy as np
import pytest

from charbench.tasks.value_conflict import stats as ps


def test_three_cycle_is_one_cyclic_triad_and_zero_consistency():
    cycle = [[0, 1, 0], [0, 0, 1], [1, 0, 0]]  # a > b, b > c, c > a
    assert ps.count_cyclic_triads(cycle) == 1
    assert ps.consistency_coefficient(1, 3) == 0.0
    # the same cycle from raw outcomes, with a majority that is not unanimous
    outcomes = [("a", "b")] * 3 + [("b", "a")] + [("b", "c")] * 2 + [("c", "a")] * 2
    m = ps.majority_matrix(outcomes, ["a", "b", "c"])
    assert ps.count_cyclic_triads(m) == 1
    assert ps.count_undetermined_triads(m) == 0


def test_transitive_order_has_no_cyclic_triad():
    outcomes = [("a", "b"), ("b", "c"), ("a", "c")]
    m = ps.majority_matrix(outcomes, ["a", "b", "c"])
    assert ps.count_cyclic_triads(m) == 0
    assert ps.consistency_coefficient(0, 3) == 1.0


def test_majority_matrix_ties_and_unobserved_pairs():
    outcomes = [("a", "b"), ("b", "a"), ("b", "c")]
    m = ps.majority_matrix(outcomes, ["a", "b", "c"])
    assert m[0, 1] == m[1, 0] == 0.5  # one win each
    assert m[1, 2] == 1.0 and m[2, 1] == 0.0
    assert math.isnan(m[0, 2]) and math.isnan(m[2, 0])  # never met
    assert ps.count_cyclic_triads(m) == 0
    assert ps.count_undetermined_triads(m) == 1


def _kendall_formula(matrix: np.ndarray) -> float:
    """Kendall and Babington Smith: c = n(n-1)(2n-1)/12 - sum(s_i^2)/2 for a complete tournament."""
    n = len(matrix)
    s = matrix.sum(axis=1)
    return n * (n - 1) * (2 * n - 1) / 12 - (s**2).sum() / 2


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_cyclic_triad_count_matches_kendall_formula_on_random_tournaments(n):
    rng = random.Random(n)
    for _ in range(20):
        m = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                if rng.random() < 0.5:
                    m[i, j] = 1
                else:
                    m[j, i] = 1
        assert ps.count_cyclic_triads(m) == pytest.approx(_kendall_formula(m))


def test_regular_tournament_reaches_the_maximum():
    # n = 5, i beats i+1 and i+2 (mod 5): every player wins 2, the most cyclic tournament there is
    n = 5
    m = np.zeros((n, n))
    for i in range(n):
        m[i, (i + 1) % n] = m[i, (i + 2) % n] = 1
    assert ps.max_cyclic_triads(5) == 5 == ps.count_cyclic_triads(m)
    assert ps.consistency_coefficient(5, 5) == 0.0


def test_consistency_coefficient_formula():
    # c_max = (n^3 - n)/24 for odd n, (n^3 - 4n)/24 for even n
    assert ps.max_cyclic_triads(3) == 1
    assert ps.max_cyclic_triads(4) == 2
    assert ps.max_cyclic_triads(6) == 8
    assert ps.max_cyclic_triads(7) == 14
    assert ps.consistency_coefficient(1, 4) == 0.5
    assert ps.consistency_coefficient(2, 6) == pytest.approx(0.75)
    assert math.isnan(ps.consistency_coefficient(0, 2))


def test_perfect_order_gives_tau_one_and_reverse_minus_one():
    ranks = {"a": 1, "b": 2, "c": 3, "d": 4}
    assert ps.kendall_tau_b({"a": 2.0, "b": 1.0, "c": 0.0, "d": -3.0}, ranks) == pytest.approx(1.0)
    assert ps.kendall_tau_b({"a": -2.0, "b": -1.0, "c": 0.0, "d": 3.0}, ranks) == pytest.approx(-1.0)


def test_tau_b_with_a_stated_tie():
    # ranks 1, 2, 2, 3: 6 pairs, 1 tied in the stated order, 5 concordant -> 5 / sqrt(6 * 5)
    ranks = {"a": 1, "b": 2, "c": 2, "d": 3}
    tau = ps.kendall_tau_b({"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}, ranks)
    assert tau == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(ps.kendall_tau_b({"a": 1.0, "b": 1.0}, {"a": 1, "b": 2}))  # constant fit


def test_bradley_terry_strengths_recover_the_order():
    outcomes = [("a", "b")] * 8 + [("b", "a")] * 2 + [("b", "c")] * 8 + [("c", "b")] * 2 + [("a", "c")] * 9 + [("c", "a")]
    theta = ps.fit_value_strengths(outcomes, ["a", "b", "c"])
    assert theta["a"] > theta["b"] > theta["c"]
    assert sum(theta.values()) == pytest.approx(0.0, abs=1e-9)
    assert ps.kendall_tau_b(theta, {"a": 1, "b": 2, "c": 3}) == pytest.approx(1.0)


def test_priority_adherence_hand_example():
    ranks = {"h": 1, "m": 2, "m2": 2, "l": 3}
    outcomes = [("h", "m"), ("m", "h"), ("h", "l"), ("l", "m"), ("m", "m2"), ("m2", "m")]
    # the two m/m2 conflicts are ties and excluded; of the other 4 the higher value won 2
    assert ps.priority_adherence(outcomes, ranks) == 0.5
    assert math.isnan(ps.priority_adherence([("m", "m2")], ranks))


def test_order_flip_rate_skips_invalid_cells():
    pairs = [("x", "x"), ("x", "y"), (None, "x"), ("y", "x"), ("y", None)]
    assert ps.order_flip_rate(pairs) == pytest.approx(2 / 3)
    assert math.isnan(ps.order_flip_rate([(None, None)]))


def _simulate(beta: float, gamma: float, n_per_pair: int, seed: int):
    rng = np.random.default_rng(seed)
    theta = {"v1": 1.0, "v2": 0.3, "v3": -0.2, "v4": -1.1}
    records = []
    for a, b in permutations(theta, 2):
        for _ in range(n_per_pair):
            nudge = int(rng.integers(-1, 2))
            a_first = bool(rng.integers(0, 2))
            z = theta[a] - theta[b] + beta * nudge + gamma * (1 if a_first else -1)
            records.append({"value_a": a, "value_b": b, "nudge": nudge, "a_first": a_first,
                            "chose_a": bool(rng.random() < 1 / (1 + math.exp(-z)))})
    return theta, records


def test_known_nudge_effect_is_recovered_from_synthetic_data():
    theta, records = _simulate(beta=1.2, gamma=0.4, n_per_pair=400, seed=0)
    fit = ps.nudge_logistic(records)
    assert fit["beta"] == pytest.approx(1.2, abs=0.15)
    assert fit["gamma"] == pytest.approx(0.4, abs=0.15)
    fitted = fit["theta"]
    assert ps.kendall_tau_b(fitted, {"v1": 1, "v2": 2, "v3": 3, "v4": 4}) == pytest.approx(1.0)
    for v, t in theta.items():
        assert fitted[v] == pytest.approx(t, abs=0.2)
    # no nudge effect: beta near 0 and the raw difference near 0
    _, null = _simulate(beta=0.0, gamma=0.0, n_per_pair=400, seed=1)
    assert abs(ps.nudge_logistic(null)["beta"]) < 0.12
    assert abs(ps.nudge_delta(null)) < 0.06


def test_nudge_delta_of_a_model_that_always_follows_the_nudge():
    records = [{"value_a": "x", "value_b": "y", "nudge": n, "chose_a": n == 1} for n in (1, -1) for _ in range(5)]
    assert ps.nudge_delta(records) == 1.0
    summary = ps.nudge_susceptibility(records)
    assert summary["delta"] == 1.0 and summary["beta"] > 1.0


def test_cluster_bootstrap_resamples_whole_scenarios():
    # scenario A: 10 records of 1, scenario B: 1 record of 0. Resampling clusters can only give
    # mean 1 (A,A), 10/11 (A,B) or 0 (B,B); resampling records could give anything in between.
    records = [{"s": "A", "x": 1.0}] * 10 + [{"s": "B", "x": 0.0}]
    est = ps.cluster_bootstrap(records, lambda r: r["s"], lambda rs: float(np.mean([r["x"] for r in rs])), n_boot=400, seed=0)
    assert est.n == 2
    assert est.value == pytest.approx(10 / 11)
    assert est.low == 0.0 and est.high == 1.0


# -- determined triads and where tau is reported -----------------------------------------------------------


def _records(outcomes: list[tuple[str, str]], ranks: dict[str, int]) -> list[dict]:
    """Forced-choice records, one scenario per outcome, as the scorer writes them."""
    return [{"scenario_id": f"s{i}", "value_a": w, "value_b": l, "rank_a": ranks[w], "rank_b": ranks[l],
             "framing": "neutral", "nudge": 0, "order": "ab", "a_first": True, "label": "a", "winner": w, "loser": l}
            for i, (w, l) in enumerate(outcomes)]


def test_cyclic_triad_share_uses_determined_triads_only():
    # a > b > c > a is one cycle; d never meets anyone, so the other three triads are undetermined. Counting
    # them as "not cyclic" read as zeta = 1 - 1/2 = 0.5; of the triads that can be judged, all are cyclic.
    from charbench.tasks.value_conflict.scorer import value_conflict_summary

    values = ["a", "b", "c", "d"]
    m = ps.majority_matrix([("a", "b"), ("b", "c"), ("c", "a")], values)
    assert ps.count_determined_triads(m) == 1 and ps.count_undetermined_triads(m) == 3
    assert ps.cyclic_triad_share(m) == 1.0
    ranks = {"a": 1, "b": 2, "c": 3, "d": 4}
    records = _records([("a", "b"), ("b", "c"), ("c", "a")], ranks)
    records.append({**records[0], "scenario_id": "s-d", "value_b": "d", "rank_b": 4, "label": None, "winner": None,
                    "loser": None})  # d appears only in an invalid answer
    out = value_conflict_summary(records, n_boot=20)
    assert out["cyclic_triad_share"] == 1.0 and out["determined_triads"] == 1 and out["undetermined_triads"] == 3
    assert math.isnan(out["consistency"])  # zeta assumes a complete tournament
    transitive = ps.majority_matrix([("a", "b"), ("b", "c"), ("a", "c")], ["a", "b", "c"])
    assert ps.cyclic_triad_share(transitive) == 0.0
    assert math.isnan(ps.cyclic_triad_share(ps.majority_matrix([("a", "b")], ["a", "b", "c"])))


def test_kendall_tau_is_reported_from_four_values_only():
    from charbench.tasks.value_conflict.scorer import MIN_VALUES_FOR_TAU, value_conflict_summary

    three = {"a": 1, "b": 2, "c": 3}
    out = value_conflict_summary(_records([("a", "b"), ("b", "c"), ("a", "c")] * 2, three), n_boot=20)
    assert math.isnan(out["kendall_tau"]) and math.isnan(out["kendall_tau_low"]) and math.isnan(out["kendall_tau_high"])
    assert out["priority_adherence"] == 1.0  # the other figures are still there
    four = {"a": 1, "b": 2, "c": 3, "d": 4}
    order = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert value_conflict_summary(_records(order * 2, four), n_boot=20)["kendall_tau"] == pytest.approx(1.0)
    # what the threshold buys: over every fitted order, tau-b on 3 values takes 4 values, on 4 values 7
    for n, expected in ((3, 4), (MIN_VALUES_FOR_TAU, 7)):
        names = "abcd"[:n]
        stated = {v: i for i, v in enumerate(names, 1)}
        taus = {round(ps.kendall_tau_b(dict(zip(names, map(float, p))), stated), 9) for p in permutations(range(n))}
        assert len(taus) == expected


def test_balanced_outcomes_give_no_tau_whatever_their_order():
    # A position-only model wins each pair once per option order: every strength is 0 up to float noise,
    # and the noise's sign (set by the outcome order) must not read as a ranking.
    values = ["a", "b", "c", "d"]
    ranks = {v: i for i, v in enumerate(values, 1)}
    outcomes = [o for a, b in combinations(values, 2) for o in ((a, b), (b, a))] * 6
    for seed in range(5):
        random.Random(seed).shuffle(outcomes)
        assert math.isnan(ps.kendall_tau_b(ps.fit_value_strengths(outcomes, values, alpha=0.1), ranks))
