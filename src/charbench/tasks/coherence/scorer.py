"""Several pairwise judges at once: win rate over consistent pairs, consistency, invalid, kappa."""

from __future__ import annotations

import math
from itertools import combinations

from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState
from sklearn.metrics import cohen_kappa_score

from charbench.judges.pairwise import OUTCOMES, judge_pair


def judge_report(outcomes: dict[str, list[str]]) -> dict[str, float]:
    """outcomes: judge role -> per-sample outcome for variant A. Keys per judge and pairwise kappa."""
    out: dict[str, float] = {}
    for role, values in outcomes.items():
        n = len(values)
        wins = [1.0 if v == "a" else 0.0 for v in values if v in ("a", "b")]
        k = len(wins)
        rate = sum(wins) / k if k else float("nan")
        se = math.sqrt(rate * (1 - rate) / k) if k else float("nan")
        out[f"{role}/win_rate"] = rate
        out[f"{role}/win_rate_se"] = se
        out[f"{role}/n_consistent"] = float(k)
        out[f"{role}/n"] = float(n)
        for outcome in OUTCOMES[2:]:
            out[f"{role}/{outcome}_rate"] = values.count(outcome) / n if n else float("nan")
        out[f"{role}/consistency_rate"] = k / n if n else float("nan")
        out[f"{role}/no_verdict_rate"] = 1 - k / n if n else float("nan")
    for r1, r2 in combinations(sorted(outcomes), 2):
        a, b = outcomes[r1], outcomes[r2]
        out[f"kappa/{r1}~{r2}"] = float(cohen_kappa_score(a, b, labels=list(OUTCOMES))) if len(set(a) | set(b)) > 1 else float("nan")
    return out


@metric
def coherence_metrics() -> Metric:
    def compute(scores: list[SampleScore]) -> dict[str, float]:
        roles = sorted({k for s in scores for k in (s.score.metadata or {}).get("outcomes", {})})
        outcomes = {r: [s.score.metadata["outcomes"][r] for s in scores] for r in roles}
        return judge_report(outcomes)

    return compute


@scorer(metrics=[coherence_metrics()])
def pairwise_coherence(judges: list[str], priority: str = "coherence", judge_max_tokens: int = 512):
    """Judge A (model under test or log A) against B in both orders, once per judge role."""

    async def score(state: TaskState, target: Target) -> Score:
        outcomes, replies = {}, {}
        for role in judges:
            judge = get_model(role=role, required=True)
            verdict = await judge_pair(judge, state.metadata["prompt"], state.metadata["response_a"],
                                       state.metadata["response_b"], state.metadata["traits"], priority,
                                       GenerateConfig(temperature=0.0, max_tokens=judge_max_tokens))
            outcomes[role], replies[role] = verdict.outcome, [r[-1500:] for r in verdict.replies]
        first = outcomes[judges[0]]
        return Score(value=first, answer=first,
                     metadata={"outcomes": outcomes, "replies": replies})

    return score
