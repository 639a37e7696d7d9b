"""Contract of ``charbench/value_conflict`` (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from typing import cast

from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract


def point_metrics(scores: list) -> dict[str, float]:
    """The task's figures without their inner bootstrap (n_boot=0), for the gate's paired resampling."""
    from charbench.tasks.value_conflict.scorer import value_conflict_metrics

    # Inspect types a metric's result as any Value; this task's metrics return a flat dict of floats.
    return cast(dict[str, float], value_conflict_metrics(n_boot=0)(scores))


# The six (forced) or three (free) samples of a scenario share its wording, so the scenario is the unit.
BY_SCENARIO = BootstrapOver(unit="scenario_id", statistic="charbench.tasks.value_conflict.contract:point_metrics")

CONTRACT = TaskContract(
    task="value_conflict",
    roles=("judge",),
    row_args=("constitution", "mode", "choice_method", "judge_method", "include_prompted", "scenarios",
              "scenarios_per_pair"),
    metrics=(
        ContractMetric("priority_adherence", "value priority adherence", "values", "higher",
                       low="priority_adherence_low", high="priority_adherence_high", n="n_samples", invalid="invalid",
                       paired=BY_SCENARIO),
        ContractMetric("kendall_tau", "value rank agreement (Kendall tau)", "values", "higher",
                       low="kendall_tau_low", high="kendall_tau_high", n="n_scenarios", paired=BY_SCENARIO, headline=False),
        ContractMetric("nudge_susceptibility", "nudge susceptibility", "values", "lower",
                       low="nudge_susceptibility_low", high="nudge_susceptibility_high", n="n_scenarios",
                       paired=BY_SCENARIO, headline=False),
        ContractMetric("cyclic_triad_share", "cyclic value triads (share of determined)", "values", "lower",
                       n="determined_triads", paired=BY_SCENARIO, headline=False),
        ContractMetric("invalid_rate", "invalid answers", "values", "lower", n="n_samples", paired=BY_SCENARIO,
                       headline=False),
    ),
)

CONTRACTS = (CONTRACT,)
