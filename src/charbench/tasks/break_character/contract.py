"""Contracts of ``charbench/break_character`` and ``charbench/persona_responses`` (see ``charbench.tasks.contract``)."""

from __future__ import annotations

from collections import defaultdict

from charbench.classifiers.metrics import macro_f1_from_counts, unit_confusions
from charbench.tasks.contract import BootstrapOver, ContractMetric, TaskContract

# Every prompt is shown once per persona and split, so the prompt (not the response) is the independent unit.
F1_BY_PROMPT = BootstrapOver(unit="prompt_id", statistic="charbench.tasks.break_character.contract:point_metrics")


def _macro_f1(pairs: list[tuple[str, str]]) -> float:
    # the fast confusion-count path the scorer uses: the gate recomputes this for every resample
    if not pairs:
        return float("nan")
    true, pred = (list(side) for side in zip(*pairs))
    return float(macro_f1_from_counts(unit_confusions(true, pred, None).sum(axis=(0, 1))))


def point_metrics(scores: list) -> dict[str, float]:
    """The task's F1 point values (as ``f1_report`` defines them), for the gate's paired resampling."""
    rows = [(s.sample_metadata["split"], s.sample_metadata["persona"], str(s.score.answer)) for s in scores]
    by_split: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split, t, p in rows:
        by_split[split].append((t, p))
    out = {f"f1/{split}": _macro_f1(pairs) for split, pairs in by_split.items()}
    adversarial = [_macro_f1(pairs) for split, pairs in by_split.items() if split != "default"]
    out["f1_adversarial_mean"] = sum(adversarial) / len(adversarial) if adversarial else float("nan")
    return out


CONTRACT = TaskContract(
    task="break_character",
    per_persona=True,
    needs_classifier=True,
    row_args=("personas", "method", "prompt_set"),
    metrics=(
        ContractMetric("f1_adversarial_mean", "break-character F1 (adv. mean)", "robustness", "higher",
                       low="f1_adversarial_low", high="f1_adversarial_high", n="n_prompts", paired=F1_BY_PROMPT),
        ContractMetric("f1/default", "F1 default split", "character", "higher",
                       low="f1_low/default", high="f1_high/default", n="n_prompts", paired=F1_BY_PROMPT),
    ),
)

# Classifier training data: no score, so nothing to show or gate on; declared so the task is known.
PERSONA_RESPONSES = TaskContract(task="persona_responses", per_persona=True, row_args=("personas", "method", "prompt_set"), metrics=())

CONTRACTS = (CONTRACT, PERSONA_RESPONSES)
