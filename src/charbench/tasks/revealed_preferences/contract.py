"""Contracts of ``charbench/revealed_preferences`` and ``charbench/trait_judge_validation``."""

from __future__ import annotations

import numpy as np

from charbench.tasks.contract import BootstrapOver, ContractMetric, PerSample, TaskContract


def point_metrics(scores: list) -> dict[str, float]:
    """Elo spread and invalid share of a set of matches, without the metric's bootstrap and online Elo."""
    from charbench.stats import fit_bradley_terry, theta_to_elo
    from charbench.tasks.revealed_preferences.scorer import matches_from_scores

    traits, matches, invalid = matches_from_scores(scores)
    out = {"invalid": float(invalid), "invalid_rate": invalid / len(scores) if scores else float("nan"),
           "n_valid": float(len(matches))}
    if len(traits) >= 2 and matches:
        out["elo_sd"] = float(np.std(theta_to_elo(fit_bradley_terry(matches, len(traits)))))
    return out


# Each sample is one match on its own prompt, so the match is the unit the task's interval resamples.
BY_MATCH = BootstrapOver(unit="id", statistic="charbench.tasks.revealed_preferences.contract:point_metrics")

CONTRACT = TaskContract(
    task="revealed_preferences",
    roles=("judge",),
    row_args=("condition", "constitution", "judge_method", "prompt_set", "traits"),
    metrics=(
        ContractMetric("elo_sd", "trait Elo spread (SD)", "preferences", "neither", low="elo_sd_low", high="elo_sd_high",
                       n="n_valid", invalid="invalid", paired=BY_MATCH),
        ContractMetric("invalid_rate", "invalid judgements", "preferences", "lower", n="n_matches", paired=BY_MATCH,
                       headline=False),
    ),
)

VALIDATION = TaskContract(
    task="trait_judge_validation",
    row_args=("judge_method", "prompt_set", "traits"),
    metrics=(ContractMetric("accuracy", "trait judge accuracy", "preferences", "higher", low="accuracy_low",
                            high="accuracy_high", n="n", invalid="invalid", paired=PerSample()),),
)

CONTRACTS = (CONTRACT, VALIDATION)
