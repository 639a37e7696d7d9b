"""Contract of ``charbench/coherence`` (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from typing import cast

from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract


def point_metrics(scores: list) -> dict[str, float]:
    from charbench.tasks.coherence.scorer import coherence_metrics

    # Inspect types a metric's result as any Value; this task's metrics return a flat dict of floats.
    return cast(dict[str, float], coherence_metrics()(scores))


# Both orders and every persona/split of one prompt are judged on the same prompt: the prompt is the unit
# (the scorer records it as ``cluster``).
BY_PROMPT = BootstrapOver(unit="cluster", statistic="charbench.tasks.coherence.contract:point_metrics")

CONTRACT = TaskContract(
    task="coherence",
    roles=("judge", "opponent"),
    row_args=("constitution", "judges", "judge_prompt", "judge_method", "prompt_set", "log_a", "log_b"),
    metrics=(
        ContractMetric("judge/win_rate", "coherence win rate", "coherence", "higher", low="judge/win_rate_low",
                       high="judge/win_rate_high", n="judge/n_consistent", invalid_rate="judge/no_verdict_rate",
                       paired=BY_PROMPT),
    ),
)

# The positive control's accuracy is the judge's figure of merit; the null control is read beside it.
VALIDATION = TaskContract(
    task="coherence_judge_validation",
    row_args=("constitution", "judge_method", "judge_prompt", "prompt_set"),
    metrics=(
        ContractMetric("word_shuffle/accuracy", "coherence judge accuracy (reply vs its words shuffled)", "coherence",
                       "higher", low="word_shuffle/accuracy_low", high="word_shuffle/accuracy_high",
                       n="word_shuffle/n"),
        ContractMetric("null/win_rate", "coherence judge null-control win rate (two replies of one variant)",
                       "coherence", "neither", low="null/win_rate_low", high="null/win_rate_high",
                       n="null/n_consistent", headline=False),
    ),
)

CONTRACTS = (CONTRACT, VALIDATION)
