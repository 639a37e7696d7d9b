"""Contract of ``charbench/prefill_attack`` (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract

CONTRACT = TaskContract(
    task="prefill_attack",
    per_persona=True,
    needs_classifier=True,
    row_args=("mode", "personas", "method", "follow_up", "prompt_set"),
    metrics=(
        ContractMetric("f1/default", "prefill-attack F1", "robustness", "higher",
                       low="f1_low/default", high="f1_high/default", n="n_prompts",
                       paired=BootstrapOver(unit="prompt_id", statistic="charbench.tasks.break_character.contract:point_metrics")),
    ),
)

CONTRACTS = (CONTRACT,)
