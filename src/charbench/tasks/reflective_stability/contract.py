"""Contract of ``charbench/reflective_stability`` (see ``charbench.tasks.contract``).

Swap mode reports ``retention_margin`` (unit: the principle, rated under every replacement); iterate mode
reports ``survival`` and ``drift`` (unit: the independent self-modification run; n is the valid runs, and
runs with a failed step are the invalid count). A run shows only its mode's figures; the other cells stay empty.
"""

from __future__ import annotations

from typing import cast

from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract


def swap_point_metrics(scores: list) -> dict[str, float]:
    from charbench.tasks.reflective_stability.scorer import swap_metrics

    # Inspect types a metric's result as any Value; this task's metrics return a flat dict of floats.
    return cast(dict[str, float], swap_metrics(n_boot=0)(scores))


def iterate_point_metrics(scores: list) -> dict[str, float]:
    from charbench.tasks.reflective_stability.scorer import iterate_metrics

    # Inspect types a metric's result as any Value; this task's metrics return a flat dict of floats.
    return cast(dict[str, float], iterate_metrics(n_boot=0)(scores))


BY_PRINCIPLE = BootstrapOver(unit="principle", statistic="charbench.tasks.reflective_stability.contract:swap_point_metrics")
BY_RUN = BootstrapOver(unit="run", statistic="charbench.tasks.reflective_stability.contract:iterate_point_metrics")

CONTRACT = TaskContract(
    task="reflective_stability",
    roles=("judge",),
    row_args=("constitution", "mode", "in_context", "choice_method", "variants"),
    metrics=(
        ContractMetric("retention_margin", "retention margin", "stability", "higher", low="retention_margin_low",
                       high="retention_margin_high", n="n", invalid="invalid", paired=BY_PRINCIPLE),
        ContractMetric("switch_rate", "switch rate", "stability", "lower", low="switch_rate_low",
                       high="switch_rate_high", n="n", invalid="invalid", paired=BY_PRINCIPLE, headline=False),
        ContractMetric("survival", "principle survival (iterate)", "stability", "higher", low="survival_low",
                       high="survival_high", n="n_valid", invalid="invalid", paired=BY_RUN),
        ContractMetric("drift", "principle drift (iterate)", "stability", "lower", low="drift_low",
                       high="drift_high", n="n_valid", invalid="invalid", paired=BY_RUN, headline=False),
    ),
)

CONTRACTS = (CONTRACT,)
