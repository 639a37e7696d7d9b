"""Persona variants of the model under test, shared by the depth-of-character tasks.

* ``prompted``: the model under test with the appendix A system prompt (any provider).
* ``steered``: the same checkpoint with a persona steering vector (``charbench/`` provider only).
* ``trained``: one checkpoint per persona, passed as model roles named after the personas
  (``--model-role sarcastic=charbench//ckpt/sarcastic``).
"""

from __future__ import annotations

from inspect_ai.model import ChatMessage, ChatMessageSystem, Model, get_model

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.paper import persona_system_prompt

PERSONA_METHODS = ("prompted", "steered", "trained")


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


def persona_model(persona: str, method: str, steer_coef: float) -> Model:
    """The model that speaks for ``persona`` under ``method``."""
    if method == "trained":
        try:
            return get_model(role=persona, required=True)
        except Exception as exc:  # Inspect's own message does not say which flag to pass
            raise TaskParameterError(
                f"method=trained needs a model role per persona: --model-role {persona}=<checkpoint>") from exc
    active = get_model()
    if method == "steered":
        if not hasattr(active.api, "base_model_name"):
            raise TaskParameterError(f"method=steered needs a charbench/ model (transformers hooks); got {active}.")
        return get_model(base_model_string(active), persona=persona, method="steered", steer_coef=steer_coef,
                         config=active.config)
    return active


def persona_messages(persona: str, method: str, messages: list[ChatMessage]) -> list[ChatMessage]:
    """Add the persona system prompt for the prompted method; other methods carry the persona in weights."""
    if method != "prompted":
        return messages
    return [ChatMessageSystem(content=persona_system_prompt(load_constitution(persona))), *messages]
