"""``charbench/revealed_preferences``: which traits a model chooses to embody (paper section 3.1)."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig
from inspect_ai.solver import generate, system_message

from charbench.constitutions import load_constitution
from charbench.paper import persona_system_prompt
from charbench.tasks.contract import contract_metadata
from charbench.tasks.revealed_preferences.contract import CONTRACT, VALIDATION
from charbench.tasks.revealed_preferences.dataset import normalise_traits, preference_dataset
from charbench.tasks.revealed_preferences.scorer import trait_choice
from charbench.tasks.revealed_preferences.validation import validation_dataset, validation_scorer


@task
def revealed_preferences(
    condition: str = "like",
    n_matches: int = 48,
    seed: int = 0,
    prompt_set: str = "offline",
    traits: list[str] | str | None = None,
    constitution: str | None = None,
    judge_method: str = "likelihood",
    max_tokens: int = 96,
    temperature: float = 0.7,
    top_p: float = 0.95,
) -> Task:
    """Pairs of traits, one response per pair, a judge decides which trait was embodied.

    Args:
        condition: ``like``, ``feel`` or ``random`` (the paper's three wordings).
        n_matches: number of matches (the paper used 25,000).
        seed: seeds the pairings, the prompt order and the bootstrap.
        prompt_set: ``offline`` (shipped) or a Hub set (``wildchat``...).
        traits: trait list (default: the paper's 144).
        constitution: put this persona's appendix A prompt before the preference prompt (a prompted persona).
        judge_method: ``likelihood`` (needs a charbench/ judge) or ``generative``.
    """
    trait_list = normalise_traits(traits)
    prefix = persona_system_prompt(load_constitution(constitution)) if constitution else None
    return Task(
        dataset=preference_dataset(trait_list, n_matches, seed, condition, prompt_set, prefix),
        solver=[system_message("{system}"), generate()],
        scorer=trait_choice(judge_method=judge_method),
        config=GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed),
        version="1-A",
        metadata={"condition": condition, "judge_method": judge_method, "constitution": constitution, **contract_metadata(CONTRACT)},
    )


@task
def trait_judge_validation(
    n_samples: int = 40, seed: int = 0, prompt_set: str = "offline", traits: list[str] | str | None = None,
    judge_method: str = "likelihood", max_tokens: int = 80,
) -> Task:
    """Force a known trait by system prompt and measure how often the judge recovers it against a random one."""
    trait_list = normalise_traits(traits)
    return Task(
        dataset=validation_dataset(trait_list, n_samples, seed, prompt_set),
        solver=[system_message("{system}"), generate()],
        scorer=validation_scorer(judge_method=judge_method),
        config=GenerateConfig(max_tokens=max_tokens, temperature=0.7, top_p=0.95, seed=seed),
        version="1-A",
        metadata=contract_metadata(VALIDATION),
    )
