"""Contracts of ``charbench/break_character`` and ``charbench/persona_responses`` (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract

# Every prompt is shown once per persona and split, so the prompt (not the response) is the independent unit.
F1_BY_PROMPT = BootstrapOver(unit="prompt_id", statistic="charbench.tasks.break_character.contract:point_metrics")


def point_metrics(scores: list) -> dict[str, float]:
    """The task's F1 figures without their inner bootstrap, for the gate's paired resampling."""
    from charbench.tasks.break_character.scorer import f1_report

    rows = [(s.sample_metadata["split"], s.sample_metadata["persona"], str(s.score.answer)) for s in scores]
    return f1_report(rows, n_boot=0)


CONTRACT = TaskContract(
    task="break_character",
    per_persona=True,
    needs_classifier=True,
    row_args=("personas", "method", "prompt_set"),
    metrics=(
        ContractMetric("f1_adversarial_mean", "break-character F1 (adv. mean)", "robustness", "higher",
                       low="f1_adversarial_low", high="f1_adversarial_high", n="n_adversarial", paired=F1_BY_PROMPT),
        ContractMetric("f1/default", "F1 default split", "character", "higher",
                       low="f1_low/default", high="f1_high/default", n="n/default", paired=F1_BY_PROMPT),
    ),
)

# Classifier training data: no score, so nothing to show or gate on; declared so the task is known.
PERSONA_RESPONSES = TaskContract(task="persona_responses", per_persona=True, row_args=("personas", "method", "prompt_set"), metrics=())

CONTRACTS = (CONTRACT, PERSONA_RESPONSES)
