"""``charbench/break_character`` (paper section 3.2) and ``charbench/persona_responses`` (classifier training data)."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig

from charbench.errors import TaskParameterError
from charbench.tasks.break_character.contract import CONTRACT, PERSONA_RESPONSES
from charbench.tasks.break_character.dataset import persona_dataset, split_names
from charbench.tasks.break_character.scorer import persona_classifier_scorer
from charbench.tasks.break_character.solver import persona_generate
from charbench.tasks.contract import contract_metadata
from charbench.tasks.personas import check_method, normalise_personas

DEFAULT_PERSONAS = "sarcastic,remorseful,mathematical"


@task
def break_character(
    classifier: str | None = None,
    personas: list[str] | str = DEFAULT_PERSONAS,
    method: str | None = None,
    n_prompts: int = 8,
    prompt_set: str = "offline",
    prompt_revision: str | None = None,
    max_tokens: int = 96,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int = 0,
) -> Task:
    """Evaluation prompts x (default + 8 adversarial instructions) x personas; a classifier names the persona.

    Args:
        classifier: folder of a classifier trained by ``charbench classifier train``.
        personas: personas in play (all must be known to the classifier).
        method: leave unset on a ``charbench/`` model, which states the variant (``-M method=prompted`` or
            ``-M method=steered -M steer_coef=...``); ``prompted`` (default) for models of other providers;
            ``trained`` with one ``--model-role <persona>=...`` each.
        n_prompts: evaluation prompts per split and persona (the paper used 500).
        prompt_revision: commit of a Hub prompt set (``prompt_set=wildchat`` or ``pure-dove``), required for those.
    """
    if not classifier:
        # A default of None so that `inspect eval charbench/break_character` ends in this message, not a TypeError.
        raise TaskParameterError(
            "break_character needs a persona classifier: add -T classifier=<folder>. Train one first: "
            "inspect eval charbench/persona_responses --model charbench/smollm2 -M method=prompted --log-dir runs/train, "
            "then charbench classifier train --logs runs/train/*.eval --out clf --kind encoder --encoder minilm "
            "(README of the break_character task).")
    names = normalise_personas(personas)
    if method is not None:
        check_method(method)
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return Task(
        dataset=persona_dataset(names, n_prompts, "eval", split_names(), prompt_set, prompt_revision=prompt_revision),
        solver=persona_generate(method, config),
        scorer=persona_classifier_scorer(classifier, names),
        config=config,
        version="3-A",
        metadata={"personas": names, "classifier": classifier, **contract_metadata(CONTRACT)},
    )


@task
def persona_responses(
    personas: list[str] | str = DEFAULT_PERSONAS,
    method: str | None = None,
    n_prompts: int = 24,
    prompt_set: str = "offline",
    prompt_revision: str | None = None,
    max_tokens: int = 96,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int = 0,
) -> Task:
    """Responses on the classifier-training prompts, default split only (never the evaluation prompts)."""
    names = normalise_personas(personas)
    if method is not None:
        check_method(method)
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return Task(
        dataset=persona_dataset(names, n_prompts, "train", ["default"], prompt_set, name="persona_responses",
                                prompt_revision=prompt_revision),
        solver=persona_generate(method, config),
        config=config,
        version="3-A",
        metadata={"personas": names, **contract_metadata(PERSONA_RESPONSES)},
    )
