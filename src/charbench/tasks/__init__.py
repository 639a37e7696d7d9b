"""Inspect tasks; each lives in its own folder with its scorer, solver and README."""

from charbench.tasks.revealed_preferences import revealed_preferences, trait_judge_validation

__all__ = ["revealed_preferences", "trait_judge_validation"]
from charbench.tasks.break_character import break_character, persona_responses
from charbench.tasks.prefill_attack import prefill_attack

__all__ += ["break_character", "persona_responses", "prefill_attack"]
from charbench.tasks.coherence import coherence

__all__ += ["coherence"]
from charbench.tasks.capability import arc_challenge, hellaswag, mmlu, truthfulqa_mc, winogrande

__all__ += ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc", "winogrande"]
from charbench.tasks.value_conflict import value_conflict
from charbench.tasks.reflective_stability import reflective_stability

__all__ += ["value_conflict", "reflective_stability"]
