"""Choosing among answer options by log-likelihood, for models that cannot follow an answer format.

The context is the exact prompt the model sees (``api.render``: chat template, persona prefix) followed by
the assistant prefix ``<answer>``; each option is scored as its continuation. The options are written
without a leading space ("1", not " 1"): SmolLM2's tokenizer splits " 1" into a bare space token plus "1",
so after ``<answer>`` the space alone costs several nats and "1"/"2" (one token each) is what the model
would actually write (measured on the embedded model over the shipped scenarios: 0.83-0.87 of the
next-token mass on "1" + "2").

This needs a model with the log-probability interface (``charbench.models.logprobs.logprob_model``: the
``charbench/`` provider). All options are scored in one ``next_token_logprobs`` call: one forward pass over the
context when every option is a single token, run under the provider's own lock. This module keeps no lock or
cache of its own, so two models (a judge and the model under test) never wait on each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anyio
from inspect_ai.model import ChatMessage, Model

from charbench.errors import TaskParameterError
from charbench.models.logprobs import LogProbModel, logprob_model

ANSWER_PREFIX = "<answer>"
CHOICE_METHODS = ("generate", "likelihood")


def check_choice_method(choice_method: str) -> None:
    if choice_method not in CHOICE_METHODS:
        raise TaskParameterError(f"choice_method={choice_method!r}; choose one of {CHOICE_METHODS}.")


def likelihood_model(model: Model, purpose: str = "choice_method=likelihood") -> LogProbModel:
    """The log-probability side of ``model``, or a TaskParameterError naming the generative alternative."""
    return logprob_model(model, purpose=purpose, alternative="or choice_method=generate")


async def option_logprobs(
    model: Model, messages: list[ChatMessage], options: Sequence[str], prefix: str = ANSWER_PREFIX
) -> dict[str, float]:
    """Log-probability of each option right after the rendered prompt and ``prefix`` (``<answer>``)."""
    scorer = likelihood_model(model)
    context = scorer.render(list(messages)) + prefix
    scores = await anyio.to_thread.run_sync(scorer.next_token_logprobs, context, list(options))
    return {o: float(scores[o]) for o in options}


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
