"""Persona variants of the model under test, shared by the multi-persona tasks (break_character,
persona_responses, prefill_attack), where each sample names the persona that should answer.

The model under test states the variant, so logs, Inspect's viewer and ``evals_df`` show it in the model name:

* ``--model charbench/smollm2 -M method=prompted``: the appendix A system prompt with the sample's persona
  (logged as ``charbench/smollm2+prompted``).
* ``--model charbench/smollm2 -M method=steered -M steer_coef=0.5``: one steered copy of the checkpoint per
  persona (logged as ``charbench/smollm2+steered@0.5``).
* ``trained``: one checkpoint per persona, passed as model roles named after the personas
  (``--model-role sarcastic=charbench//ckpt/sarcastic -T method=trained``).

A model from another provider cannot say it is prompted, so for those (and for ``trained``) the task's
``method=`` argument still chooses; on a ``charbench/`` model the task argument may only repeat the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import ChatMessage, ChatMessageSystem, Model, get_model

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.paper import persona_system_prompt

PERSONA_METHODS = ("prompted", "steered", "trained")


class _PersonaAPI(Protocol):
    """What a charbench/ provider states about its variant (duck-typed: other providers lack these)."""

    per_sample_persona: bool
    method: str
    steer_coef: float | None


def normalise_personas(personas: list[str] | str) -> list[str]:
    if isinstance(personas, str):
        personas = [p.strip() for p in personas.split(",") if p.strip()]
    names = [str(p) for p in personas]
    if len(set(names)) < 2:
        raise TaskParameterError(f"personas needs at least two different personas, got {names}.")
    for name in names:
        load_constitution(name)  # fails early with the list of built-ins
    return names


def check_method(method: str) -> None:
    if method not in PERSONA_METHODS:
        raise TaskParameterError(f"method={method!r}; choose one of {PERSONA_METHODS}.")


def base_model_string(model: Model) -> str:
    api = model.api
    base = getattr(api, "base_model_name", None)
    return f"charbench/{base}" if base else str(model)


@dataclass(frozen=True)
class PersonaVariant:
    """How the sample's persona is applied in this run, and the steering coefficient when steered."""

    method: str
    steer_coef: float | None = None


def resolve_variant(method: str | None) -> PersonaVariant:
    """The persona method of the running model (call it inside a solver, where the model under test is known).

    ``method`` is the task argument: required only for models outside ``charbench/`` (default ``prompted``)
    and for ``trained``; on a ``charbench/`` model it must agree with what the model states.
    """
    if method is not None:
        check_method(method)
    api = get_model().api
    if not hasattr(api, "per_sample_persona"):
        chosen = method or "prompted"
        if chosen == "steered":
            raise TaskParameterError(f"method=steered needs a charbench/ model (transformers hooks); got {get_model()}.")
        return PersonaVariant(chosen)
    # hasattr above is the test for a charbench/ provider, so the variant attributes are there.
    persona_api = cast(_PersonaAPI, api)
    if method == "trained":
        return PersonaVariant("trained")
    if getattr(api, "constitution", None) is not None:
        raise TaskParameterError(
            f"{get_model()} carries one persona for every sample; this task gives each sample its own. "
            "Fix: drop -M persona and keep -M method=prompted (or steered).")
    if not persona_api.per_sample_persona:
        raise TaskParameterError(
            f"{get_model()} does not say which persona variant to run. Fix: --model {get_model()} "
            "-M method=prompted (or -M method=steered -M steer_coef=0.5); the task argument method= is only for "
            "models outside charbench/ and for method=trained.")
    if method is not None and method != persona_api.method:
        raise TaskParameterError(
            f"task method={method} disagrees with the model ({get_model()}, -M method={persona_api.method}); "
            "drop the task argument: the model says the variant.")
    return PersonaVariant(persona_api.method, persona_api.steer_coef if persona_api.method == "steered" else None)


def persona_model(persona: str, variant: PersonaVariant) -> Model:
    """The model that speaks for ``persona`` under ``variant``."""
    if variant.method == "trained":
        try:
            return get_model(role=persona, required=True)
        except PrerequisiteError as exc:  # Inspect's own message does not say which flag to pass
            raise TaskParameterError(
                f"method=trained needs a model role per persona: --model-role {persona}=<checkpoint>") from exc
    active = get_model()
    if variant.method == "steered":
        return get_model(base_model_string(active), persona=persona, method="steered", steer_coef=variant.steer_coef,
                         config=active.config)
    return active


def persona_messages(persona: str, variant: PersonaVariant, messages: list[ChatMessage]) -> list[ChatMessage]:
    """Add the persona system prompt for the prompted method; other methods carry the persona in weights."""
    if variant.method != "prompted":
        return messages
    return [ChatMessageSystem(content=persona_system_prompt(load_constitution(persona))), *messages]
