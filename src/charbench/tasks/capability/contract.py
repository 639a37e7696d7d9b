"""Contracts of the five capability tasks (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from charbench.tasks.capability.dataset import BENCHMARKS
from charbench.tasks.contract import ContractMetric, PerSample, TaskContract

CAPABILITY_BENCHMARKS = ("truthfulqa_mc", "winogrande", "hellaswag", "arc_challenge", "mmlu")


def capability_contract(benchmark: str) -> TaskContract:
    # Items are independent, so each item's correct/incorrect is paired directly.
    return TaskContract(
        task=benchmark,
        row_args=("source", "n_shots", "shots", "revision"),
        fixture_arg=("source", "fixtures"),
        hub_dataset=BENCHMARKS[benchmark].hub_repo,
        metrics=(ContractMetric("accuracy", f"{benchmark} acc", "capability", "higher", se="stderr", paired=PerSample()),),
    )


CONTRACTS = tuple(capability_contract(b) for b in CAPABILITY_BENCHMARKS)
