"""Log-likelihood judges: score candidate explanations of a response with a transformers model.

A 135M model is a poor *generative* judge (mostly unparseable replies) but its log-likelihoods carry
signal. These judges need a model served by the ``charbench/`` provider (they read log-probs directly).

The trait judge has a prior of its own: a trait word whose hypothesis prompt makes *any* text more likely
wins regardless of the response. ``revealed_preferences`` measures that prior with its null control (the
same judge on replies written without a trait choice) and reports a rating with it subtracted.
"""

from __future__ import annotations

import anyio
from inspect_ai.model import ChatMessageSystem, ChatMessageUser, Model

from charbench.models.logprobs import logprob_model

# A different wording from the one that forces traits in judge validation, so the judge is not
# rewarded for recognising its own prompt.
TRAIT_HYPOTHESIS = "You are an assistant whose manner is {trait}. Every reply you write is {trait} in tone and content."


async def response_loglik_under_systems(model: Model, systems: list[str], user: str, response: str) -> list[float]:
    """Mean per-token log-likelihood of ``response`` after each system prompt and the user message."""
    api = logprob_model(model, purpose="the likelihood judge",
                        alternative="as the judge role (--model-role judge=charbench/smollm2), or judge_method=generative")
    pairs = []
    for system in systems:
        context = api.render([ChatMessageSystem(content=system), ChatMessageUser(content=user)])
        pairs.append((context, response))
    results = await anyio.to_thread.run_sync(api.continuation_logprobs, pairs)
    return [r.logprob / max(1, r.n_tokens) for r in results]


async def trait_likelihood_choice(model: Model, user: str, response: str, traits: list[str]) -> tuple[str | None, dict]:
    """Pick the trait whose hypothesis system prompt makes the response more likely (None on a tie)."""
    if not response.strip():
        return None, {"reason": "empty response"}
    scores = await response_loglik_under_systems(model, [TRAIT_HYPOTHESIS.format(trait=t) for t in traits], user, response)
    detail = {f"loglik_{t}": s for t, s in zip(traits, scores)}
    if scores[0] == scores[1]:
        return None, detail
    return traits[0] if scores[0] > scores[1] else traits[1], detail
