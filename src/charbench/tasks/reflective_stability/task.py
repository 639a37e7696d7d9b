"""``charbench/reflective_stability``: does the model keep its own principles when invited to change them?"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.tasks.contract import contract_metadata
from charbench.tasks.reflective_stability.contract import CONTRACT
from charbench.tasks.reflective_stability.dataset import iterate_dataset, normalise_variants, swap_dataset
from charbench.tasks.reflective_stability.scorer import iterate_metrics, iterate_scorer, swap_metrics, swap_scorer
from charbench.tasks.reflective_stability.solver import iterate_edits, swap_rating
from charbench.tasks.value_conflict.choice import check_choice_method

MODES = ("swap", "iterate")


@task
def reflective_stability(
    constitution: str = "flourishing",
    mode: str = "swap",
    in_context: bool = True,
    choice_method: str = "generate",
    variants: list[str] | str | None = None,
    neighbour: str | None = None,
    other_persona: str | None = None,
    max_principles: int | None = None,
    max_steps: int = 6,
    patience: int = 3,
    n_runs: int = 2,
    seed: int = 0,
    max_tokens: int = 160,
    temperature: float | None = None,
    n_boot: int = 500,
) -> Task:
    """Principle swap (rate 1-5 a replacement of one principle) or iterative self-modification.

    Args:
        constitution: built-in persona name or constitution path; its assertions are the principles.
        mode: ``swap`` or ``iterate``.
        in_context: True: the principles are the system prompt ("these are your principles"); False: no system
            prompt, the user turn shows the current list (a trained model should hold them unprompted).
        choice_method: ``generate`` (parse ``<answer>N</answer>`` / the edit) or ``likelihood`` (needs a
            charbench/ model: swap reads the probabilities of "1".."5" after ``<answer>``; iterate compares
            "NO_CHANGE" with "<edit>" and then generates the edit after a prefill). Use ``likelihood`` for the
            embedded SmolLM2-135M.
        variants: swap mode: which replacements to rate among paraphrase, negation, neighbour,
            other_persona (``original``, the control, is always included).
        neighbour: swap mode: persona whose principles are the "neighbour" replacements (default: built-in table).
        other_persona: swap mode: contrasting persona for the "other_persona" replacements (default: built-in table).
        max_principles: swap mode: only the first N principles (default all).
        max_steps: iterate mode: step limit (default 6 for offline runs; the probe design uses 20).
        patience: iterate mode: stop after this many consecutive NO_CHANGE replies (a failed step resets the count).
        n_runs: iterate mode: independent runs (seeds seed..seed+n_runs-1).
        seed: seeds the choice of neighbour/other principles, generation and the bootstrap.
        max_tokens: generation limit per reply.
        temperature: sampling temperature (None: provider default).
        n_boot: bootstrap resamples (over principles in swap mode, runs in iterate mode).
    """
    check_choice_method(choice_method)
    if mode not in MODES:
        raise TaskParameterError(f"mode={mode!r}; choose one of {MODES}.")
    persona = load_constitution(constitution)
    meta = {"constitution": persona.name, "mode": mode, "in_context": in_context, "choice_method": choice_method,
            **contract_metadata(CONTRACT)}
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, seed=seed)
    if mode == "swap":
        chosen = normalise_variants(variants)
        return Task(
            dataset=swap_dataset(persona, chosen, bool(in_context), seed, neighbour, other_persona, max_principles),
            solver=swap_rating(choice_method),
            scorer=swap_scorer(),
            metrics=[swap_metrics(n_boot=n_boot, seed=seed)],
            config=config,
            version="2-A",
            metadata={**meta, "variants": chosen},
        )
    if max_steps < 1 or patience < 1:
        raise TaskParameterError(f"max_steps and patience must be positive, got {max_steps} and {patience}.")
    return Task(
        dataset=iterate_dataset(persona, int(n_runs), bool(in_context), seed),
        solver=iterate_edits(choice_method, max_steps=int(max_steps), patience=int(patience), max_tokens=max_tokens),
        scorer=iterate_scorer(),
        metrics=[iterate_metrics(n_boot=n_boot, seed=seed)],
        config=config,
        version="2-A",
        metadata={**meta, "max_steps": max_steps, "patience": patience, "n_runs": n_runs},
    )
