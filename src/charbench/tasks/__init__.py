"""Inspect tasks; each lives in its own folder with its scorer, solver, contract and README."""

from charbench.tasks.break_character import break_character, persona_responses
from charbench.tasks.capability import arc_challenge, hellaswag, mmlu, truthfulqa_mc, winogrande
from charbench.tasks.coherence import coherence
from charbench.tasks.prefill_attack import prefill_attack
from charbench.tasks.reflective_stability import reflective_stability
from charbench.tasks.revealed_preferences import revealed_preferences, trait_judge_validation
from charbench.tasks.value_conflict import value_conflict

__all__ = [
    "arc_challenge",
    "break_character",
    "coherence",
    "hellaswag",
    "mmlu",
    "persona_responses",
    "prefill_attack",
    "reflective_stability",
    "revealed_preferences",
    "trait_judge_validation",
    "truthfulqa_mc",
    "value_conflict",
    "winogrande",
]
