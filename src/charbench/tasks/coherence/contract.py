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
    row_args=("constitution", "judges", "judge_prompt", "prompt_set", "log_a", "log_b"),
    metrics=(
        ContractMetric("judge/win_rate", "coherence win rate", "coherence", "higher", low="judge/win_rate_low",
                       high="judge/win_rate_high", n="judge/n_consistent", invalid_rate="judge/no_verdict_rate",
                       paired=BY_PROMPT),
    ),
)

CONTRACTS = (CONTRACT,)
