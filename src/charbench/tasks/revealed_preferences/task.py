"""``charbench/revealed_preferences``: which traits a model chooses to embody (paper section 3.1)."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig
from inspect_ai.solver import generate, system_message

from charbench.constitutions import load_constitution
from charbench.judges.trait_judge import JUDGE_MAX_TOKENS, JUDGE_TEMPERATURE
from charbench.paper import persona_system_prompt
from charbench.tasks.contract import contract_metadata
from charbench.tasks.revealed_preferences.contract import CONTRACT, VALIDATION
from charbench.tasks.revealed_preferences.dataset import normalise_traits, preference_dataset
from charbench.tasks.revealed_preferences.scorer import trait_choice
from charbench.tasks.revealed_preferences.solver import null_response
from charbench.tasks.revealed_preferences.validation import validation_dataset, validation_scorer


@task
def revealed_preferences(
    condition: str = "like",
    n_matches: int = 48,
    seed: int = 0,
    prompt_set: str = "offline",
    prompt_revision: str | None = None,
    traits: list[str] | str | None = None,
    constitution: str | None = None,
    judge_method: str = "likelihood",
    max_tokens: int = 96,
    temperature: float = 0.7,
    top_p: float = 0.95,
    null_control: bool = True,
    judge_temperature: float = JUDGE_TEMPERATURE,
    judge_max_tokens: int = JUDGE_MAX_TOKENS,
) -> Task:
    """Pairs of traits, one response per pair, a judge decides which trait was embodied.

    Args:
        condition: ``like``, ``feel`` or ``random`` (the paper's three wordings).
        n_matches: number of matches (the paper used 25,000).
        seed: seeds the pairings, the prompt order and the bootstrap.
        prompt_set: ``offline`` (shipped) or a Hub set (``wildchat``...).
        prompt_revision: commit of the Hub prompt set, required for ``wildchat`` and ``pure-dove``.
        traits: trait list (default: the paper's 144).
        constitution: put this persona's appendix A prompt before the preference prompt (a prompted persona).
        judge_method: ``likelihood`` (needs a charbench/ judge) or ``generative``.
        null_control: also answer each prompt with no trait instruction and judge that reply against the same
            two traits; gives the judge's own leaning (``null_elo_sd``) and the prior-corrected rating
            (``corrected_elo_sd``). Doubles generation and judging; turn off only to save time.
        judge_temperature, judge_max_tokens: the generative judge's settings (the paper's 0.1; a budget a
            reasoning judge can finish in; a reply cut off by it is counted invalid and ``truncated``).
    """
    trait_list = normalise_traits(traits)
    prefix = persona_system_prompt(load_constitution(constitution)) if constitution else None
    solvers = [null_response(prefix)] if null_control else []
    return Task(
        dataset=preference_dataset(trait_list, n_matches, seed, condition, prompt_set, prefix, prompt_revision),
        solver=[*solvers, system_message("{system}"), generate()],
        scorer=trait_choice(judge_method=judge_method, judge_temperature=judge_temperature,
                            judge_max_tokens=judge_max_tokens),
        config=GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed),
        # 2: null control and prior-corrected rating, noise-corrected spread, judge at temperature 0.1 with
        # truncation counted, count-matrix bootstrap (new resampling stream, same point estimates).
        version="2-A",
        metadata={"condition": condition, "judge_method": judge_method, "constitution": constitution,
                  "null_control": null_control, **contract_metadata(CONTRACT)},
    )


@task
def trait_judge_validation(
    n_samples: int = 40, seed: int = 0, prompt_set: str = "offline", traits: list[str] | str | None = None,
    judge_method: str = "likelihood", prompt_revision: str | None = None, max_tokens: int = 80, judge_temperature: float = JUDGE_TEMPERATURE,
    judge_max_tokens: int = JUDGE_MAX_TOKENS,
) -> Task:
    """Force a known trait by system prompt and measure how often the judge recovers it against a random one."""
    trait_list = normalise_traits(traits)
    return Task(
        dataset=validation_dataset(trait_list, n_samples, seed, prompt_set, prompt_revision),
        solver=[system_message("{system}"), generate()],
        scorer=validation_scorer(judge_method=judge_method, judge_temperature=judge_temperature,
                                 judge_max_tokens=judge_max_tokens),
        config=GenerateConfig(max_tokens=max_tokens, temperature=0.7, top_p=0.95, seed=seed),
        # 2: generative judge at the paper's temperature 0.1 (was 0) with a reasoning-sized budget; truncated
        # replies counted invalid.
        version="2-A",
        metadata=contract_metadata(VALIDATION),
    )
