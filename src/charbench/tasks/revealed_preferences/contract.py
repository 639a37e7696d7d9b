"""Contracts of ``charbench/revealed_preferences`` and ``charbench/trait_judge_validation``."""

from __future__ import annotations

import numpy as np

from charbench.tasks.contract import BootstrapOver, ContractMetric, PerSample, TaskContract


def point_metrics(scores: list) -> dict[str, float]:
    """Raw, null and prior-corrected Elo spreads and invalid counts of a set of matches, without the metric's
    bootstrap and online Elo (the same code as the metric, so the two cannot disagree)."""
    from charbench.tasks.revealed_preferences.scorer import elo_summary

    out = elo_summary(scores, n_boot=0, n_orderings=0)
    return {k: v for k, v in out.items() if "/" not in k and not np.isnan(v)}


# Each sample is one match on its own prompt, so the match is the unit the task's interval resamples.
BY_MATCH = BootstrapOver(unit="id", statistic="charbench.tasks.revealed_preferences.contract:point_metrics")

CONTRACT = TaskContract(
    task="revealed_preferences",
    roles=("judge",),
    compare="charbench.tasks.revealed_preferences.comparison:write_comparison",  # figures 3 and 4
    row_args=("condition", "constitution", "judge_method", "prompt_set", "traits"),
    metrics=(
        ContractMetric("elo_sd", "trait Elo spread (SD)", "preferences", "neither", low="elo_sd_low", high="elo_sd_high",
                       n="n_valid", invalid="invalid", paired=BY_MATCH),
        ContractMetric("elo_sd_nc", "trait Elo spread, noise-corrected", "preferences", "neither", low="elo_sd_nc_low",
                       high="elo_sd_nc_high", n="n_valid", invalid="invalid", headline=False),
        # The null spread mixes the judge's leaning with the model's unprompted manner, so neither direction
        # is better across models; it is there to be read beside the raw spread.
        ContractMetric("null_elo_sd", "judge-only Elo spread (null control)", "preferences", "neither",
                       low="null_elo_sd_low", high="null_elo_sd_high", n="null_n_valid", invalid="null_invalid",
                       paired=BY_MATCH),
        ContractMetric("corrected_elo_sd", "trait Elo spread, judge prior removed", "preferences", "neither",
                       low="corrected_elo_sd_low", high="corrected_elo_sd_high", n="corrected_n_valid",
                       invalid="corrected_invalid", paired=BY_MATCH),
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
