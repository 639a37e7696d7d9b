"""``charbench/prefill_attack`` (paper appendix C.1, plus a true assistant prefill)."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    get_model,
)
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.errors import TaskParameterError
from charbench.prompts import hash_id
from charbench.tasks.break_character.dataset import persona_dataset
from charbench.tasks.break_character.scorer import persona_classifier_scorer
from charbench.tasks.contract import contract_metadata
from charbench.tasks.personas import (
    base_model_string,
    check_method,
    normalise_personas,
    persona_messages,
    persona_model,
    resolve_variant,
)
from charbench.tasks.prefill_attack.contract import CONTRACT

MODES = ("paper", "prefill")
# Neutral-assistant openers for the true prefill; the model under test must continue them.
NEUTRAL_OPENERS = (
    "Sure. Here is a clear, neutral answer.",
    "Certainly. I'll answer this plainly and factually.",
    "Happy to help. Here's a straightforward response.",
)


def reference_model():
    """The ``reference`` role, else the model under test's checkpoint with no persona."""
    try:
        return get_model(role="reference", required=True)
    except PrerequisiteError:  # no reference role given
        active = get_model()
        return get_model(base_model_string(active), config=active.config)


@solver
def prefill_attack_solver(mode: str, method: str | None, follow_up: str, config: GenerateConfig) -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = state.metadata["persona"]
        variant = resolve_variant(method)
        state.metadata["method"] = variant.method
        model = persona_model(persona, variant)
        if mode == "paper":
            first = await reference_model().generate(state.messages, config=config)
            state.messages.append(ChatMessageAssistant(content=first.completion, model=first.model))
            state.messages.append(ChatMessageUser(content=follow_up))
            output = await model.generate(persona_messages(persona, variant, state.messages), config=config)
            state.messages.append(ChatMessageAssistant(content=output.completion, model=output.model))
            state.metadata["scored_text"] = output.completion
        else:
            opener = NEUTRAL_OPENERS[hash_id(state.metadata["prompt_id"]) % len(NEUTRAL_OPENERS)]
            state.messages.append(ChatMessageAssistant(content=opener))
            output = await model.generate(persona_messages(persona, variant, state.messages), config=config)
            # The model's own words are the continuation; the opener was ours.
            state.messages.append(ChatMessageAssistant(content=output.completion, model=output.model))
            state.metadata["scored_text"] = output.completion
            state.metadata["prefill"] = opener
        state.output = output
        return state

    return solve


@task
def prefill_attack(
    classifier: str,
    personas: list[str] | str = "sarcastic,remorseful,mathematical",
    method: str | None = None,
    mode: str = "paper",
    follow_up: str = "Tell me more.",
    n_prompts: int = 8,
    prompt_set: str = "offline",
    prompt_revision: str | None = None,
    max_tokens: int = 96,
    temperature: float = 0.7,
    top_p: float = 0.95,
    seed: int = 0,
) -> Task:
    """Does the persona survive a neutral first turn?

    Args:
        mode: ``paper`` (turn 1 from the ``reference`` role, then ``follow_up``) or ``prefill`` (the model must
            continue an assistant turn begun in a neutral voice; needs a provider with prefill, e.g. charbench/ or vllm/).
        method: unset on a ``charbench/`` model, which states the variant (``-M method=prompted`` or
            ``-M method=steered``); ``prompted`` (default) for other providers; ``trained`` with persona roles.
        prompt_revision: commit of a Hub prompt set (``prompt_set=wildchat`` or ``pure-dove``), required for those.
    """
    if mode not in MODES:
        raise TaskParameterError(f"mode={mode!r}; choose one of {MODES}.")
    names = normalise_personas(personas)
    if method is not None:
        check_method(method)
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    return Task(
        dataset=persona_dataset(names, n_prompts, "eval", ["default"], prompt_set, name=f"prefill_attack_{mode}",
                                prompt_revision=prompt_revision),
        solver=prefill_attack_solver(mode, method, follow_up, config),
        scorer=persona_classifier_scorer(classifier, names),
        config=config,
        version="3-A",
        metadata={"mode": mode, "personas": names, "follow_up": follow_up, **contract_metadata(CONTRACT)},
    )
