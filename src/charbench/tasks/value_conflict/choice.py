"""Choosing among answer options by log-likelihood, for models that cannot follow an answer format.

The context is the exact prompt the model sees (``api.render``: chat template, persona prefix) followed by
the assistant prefix ``<answer>``; each option is scored as its continuation. The options are written
without a leading space ("1", not " 1"): SmolLM2's tokenizer splits " 1" into a bare space token plus "1",
so after ``<answer>`` the space alone costs several nats and "1"/"2" (one token each) is what the model
would actually write (measured on the embedded model over the shipped scenarios: 0.83-0.87 of the
next-token mass on "1" + "2").

This needs a ``charbench/`` model (it exposes ``render`` and ``continuation_logprobs``). All options are scored
in one ``continuation_logprobs`` call, which runs under the provider's own lock: this module keeps no lock or
cache of its own, so two models (a judge and the model under test) never wait on each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anyio
from inspect_ai.model import ChatMessage, Model

from charbench.errors import TaskParameterError

ANSWER_PREFIX = "<answer>"
CHOICE_METHODS = ("generate", "likelihood")


def check_choice_method(choice_method: str) -> None:
    if choice_method not in CHOICE_METHODS:
        raise TaskParameterError(f"choice_method={choice_method!r}; choose one of {CHOICE_METHODS}.")


def logprob_api(model: Model, purpose: str = "choice_method=likelihood") -> Any:
    api = model.api
    if not (hasattr(api, "continuation_logprobs") and hasattr(api, "render")):
        raise TaskParameterError(
            f"{purpose} reads log-probabilities, which model {model} does not expose "
            "(it needs render() and continuation_logprobs(), as charbench/ models have). "
            "Use --model charbench/smollm2 (or charbench/<checkpoint>), or choice_method=generate."
        )
    return api


def _score_options(api: Any, context: str, options: list[str]) -> list[float]:
    return [float(total) for total, _n, _greedy in api.continuation_logprobs([(context, o) for o in options])]


async def option_logprobs(
    model: Model, messages: list[ChatMessage], options: Sequence[str], prefix: str = ANSWER_PREFIX
) -> dict[str, float]:
    """Log-probability of each option right after the rendered prompt and ``prefix`` (``<answer>``)."""
    api = logprob_api(model)
    context = api.render(list(messages)) + prefix
    scores = await anyio.to_thread.run_sync(_score_options, api, context, list(options))
    return dict(zip(options, scores))


def summarise(logprobs: dict[str, float]) -> dict[str, Any]:
    """Argmax option (None on an exact tie), option probabilities renormalised, and the raw mass on them."""
    options = list(logprobs)
    top = max(logprobs.values())
    best = [o for o in options if logprobs[o] == top]
    z = sum(math.exp(v - top) for v in logprobs.values())
    probs = {o: math.exp(logprobs[o] - top) / z for o in options}
    return {
        "choice": best[0] if len(best) == 1 else None,
        "probs": probs,
        "mass": float(sum(math.exp(v) for v in logprobs.values())),
    }
