"""Several pairwise judges at once: win rate over consistent pairs with a Wilson interval, failures, kappa."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from itertools import combinations

from inspect_ai.model import get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState
from scipy.stats import norm
from sklearn.metrics import cohen_kappa_score

from charbench.judges.pairwise import OUTCOMES, judge_pair_by

# A pair that could not be judged because a response is missing (an errored or empty sample in a compared
# log). It is counted in n and as a failure, never dropped.
NO_RESPONSE = "no_response"
ALL_OUTCOMES = (*OUTCOMES, NO_RESPONSE)


def wilson_interval(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``n`` may be an effective (non-integer) sample size.

    Unlike the normal approximation it keeps a non-zero width at 0/n and n/n, where a run that always
    wins would otherwise report certainty from a handful of prompts.
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0/n and n/n the bound is exactly 0 or 1 in theory; pin it so rounding cannot exclude the estimate.
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return (low, high)


def effective_n(wins: Sequence[float], clusters: Sequence[Hashable]) -> float:
    """Sample size after the design effect of clustered verdicts (several pairs from one prompt).

    Pairs that share a prompt (one per persona and split in a compared log) are not independent, so the
    interval is built on ``k / deff`` rather than on the k verdicts. The design effect compares the
    cluster-robust variance of the win rate with the binomial one and is never below 1. At a win rate of
    0 or 1 it cannot be estimated, and the number of prompts is used: the conservative assumption that the
    pairs of one prompt agree completely. With one pair per prompt this is exactly k.
    """
    k = len(wins)
    if k == 0:
        return 0.0
    per_cluster: dict[Hashable, list[float]] = defaultdict(list)
    for w, c in zip(wins, clusters):
        per_cluster[c].append(w)
    n_clusters = len(per_cluster)
    if n_clusters == k:
        return float(k)
    p = sum(wins) / k
    if p in (0.0, 1.0) or n_clusters < 2:
        return float(n_clusters)
    residuals = [sum(ws) - p * len(ws) for ws in per_cluster.values()]
    # No small-sample factor: with complete agreement inside equal-sized prompts this gives exactly the
    # number of prompts, matching the rule used at 0 and 1.
    var_cluster = sum(r * r for r in residuals) / (k * k)
    var_binomial = p * (1 - p) / k
    return k / max(1.0, var_cluster / var_binomial)


def judge_report(outcomes: dict[str, list[str]], clusters: Sequence[Hashable] | None = None) -> dict[str, float]:
    """outcomes: judge role -> per-sample outcome for variant A; clusters: per-sample prompt key.

    Per judge: win rate over consistent verdicts with a Wilson interval (``win_rate_low/high``, on the
    effective sample size) and its standard error, the counts, and one rate per failure kind; Cohen's kappa
    per pair of judges over all outcome categories.
    """
    out: dict[str, float] = {}
    nan = float("nan")
    for role, values in outcomes.items():
        n = len(values)
        keys = list(clusters) if clusters is not None else list(range(n))
        decided = [(1.0 if v == "a" else 0.0, c) for v, c in zip(values, keys) if v in ("a", "b")]
        wins, decided_clusters = [w for w, _ in decided], [c for _, c in decided]
        k = len(wins)
        rate = sum(wins) / k if k else nan
        n_eff = effective_n(wins, decided_clusters)
        low, high = wilson_interval(rate * n_eff, n_eff) if k else (nan, nan)
        out[f"{role}/win_rate"] = rate
        out[f"{role}/win_rate_low"] = low
        out[f"{role}/win_rate_high"] = high
        out[f"{role}/win_rate_se"] = math.sqrt(rate * (1 - rate) / n_eff) if k else nan
        out[f"{role}/n_consistent"] = float(k)
        out[f"{role}/n_prompts_consistent"] = float(len(set(decided_clusters)))
        out[f"{role}/n_effective"] = n_eff
        out[f"{role}/n"] = float(n)
        for outcome in ALL_OUTCOMES[2:]:
            out[f"{role}/{outcome}_rate"] = values.count(outcome) / n if n else nan
        out[f"{role}/consistency_rate"] = k / n if n else nan
        out[f"{role}/no_verdict_rate"] = 1 - k / n if n else nan
    for r1, r2 in combinations(sorted(outcomes), 2):
        a, b = outcomes[r1], outcomes[r2]
        out[f"kappa/{r1}~{r2}"] = float(cohen_kappa_score(a, b, labels=list(ALL_OUTCOMES))) if len(set(a) | set(b)) > 1 else nan
    return out


@metric
def coherence_metrics() -> Metric:
    def compute(scores: list[SampleScore]) -> dict[str, float]:
        roles = sorted({k for s in scores for k in (s.score.metadata or {}).get("outcomes", {})})
        outcomes = {r: [(s.score.metadata or {})["outcomes"][r] for s in scores] for r in roles}
        clusters = [(s.score.metadata or {}).get("cluster", s.sample_id) for s in scores]
        return judge_report(outcomes, clusters)

    return compute


@scorer(metrics=[coherence_metrics()])
def pairwise_coherence(judges: list[str], judge_prompt: str = "paper", judge_max_tokens: int = 4096,
                       judge_method: str = "generate"):
    """Judge A (model under test or log A) against B in both orders, once per judge role.

    ``generate``: the token budget is generous because the appendix D prompt asks the judge to reason out
    loud first; a reply cut off by it is counted as ``truncated``, never parsed. ``logprob``: the verdict is
    read from the answer log-probabilities, which are kept in the score metadata.
    """

    async def score(state: TaskState, target: Target) -> Score:
        cluster = state.metadata.get("cluster", str(state.sample_id))
        missing = state.metadata.get("missing_response")
        if missing:
            outcomes = {role: NO_RESPONSE for role in judges}
            return Score(value=NO_RESPONSE, answer=NO_RESPONSE,
                         explanation=f"no response from {missing}: the sample errored or was empty in that log",
                         metadata={"outcomes": outcomes, "replies": {}, "cluster": cluster})
        outcomes, replies, logprobs = {}, {}, {}
        for role in judges:
            verdict = await judge_pair_by(judge_method, get_model(role=role, required=True), state.metadata["prompt"],
                                          state.metadata["response_a"], state.metadata["response_b"],
                                          state.metadata["traits"], judge_prompt, judge_max_tokens)
            outcomes[role], replies[role] = verdict.outcome, [r[-1500:] for r in verdict.replies]
            if verdict.logprobs is not None:
                logprobs[role] = list(verdict.logprobs)
        first = outcomes[judges[0]]
        metadata = {"outcomes": outcomes, "replies": replies, "cluster": cluster, "judge_method": judge_method}
        if logprobs:
            metadata["logprobs"] = logprobs
        return Score(value=first, answer=first, metadata=metadata)

    return score
