"""Log-likelihood multiple-choice scoring (lighteval / Open LLM Leaderboard v1 style).

The solver does nothing: the scorer asks the ``charbench/`` provider for the summed log-probability of
every choice's continuation after its context and picks the argmax. ``acc`` uses the raw sum, ``acc_norm``
the sum divided by the continuation's length in characters (lighteval's ``LogProbCharNorm``), ``mc2``
(TruthfulQA) the normalised probability mass on the true answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import anyio
from inspect_ai.model import Model
from inspect_ai.scorer import CORRECT, INCORRECT, Metric, SampleScore, Score, Target, accuracy, metric, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.models.logprobs import logprob_model
from charbench.tasks.capability.dataset import LETTERS


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on a tie."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def choose(logprobs: Sequence[float], continuations: Sequence[str], gold: int) -> dict[str, int]:
    """Prediction by summed log-prob (acc) and by log-prob per character of the continuation (acc_norm)."""
    pred = argmax(logprobs)
    norm = [lp / max(1, len(c)) for lp, c in zip(logprobs, continuations)]
    pred_norm = argmax(norm)
    return {"pred": pred, "pred_norm": pred_norm, "correct": int(pred == gold), "correct_norm": int(pred_norm == gold)}


def mc2_score(logprobs: Sequence[float], labels: Sequence[int]) -> float:
    """TruthfulQA mc2: probability mass of the true answers among all mc2 answers (from summed log-probs)."""
    top = max(logprobs)
    probs = [math.exp(lp - top) for lp in logprobs]
    return sum(p for p, label in zip(probs, labels) if label) / sum(probs)


@solver
def loglikelihood_only() -> Solver:
    """No generation: everything happens in the scorer."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        return state

    return solve


@scorer(metrics=[accuracy(), stderr()])
def loglikelihood_choice(batch_size: int = 8, model: str | Model | None = None) -> Any:
    """Score a multiple-choice sample by the log-likelihood of each choice's continuation.

    Reads ``continuations``, ``gold`` and (when the contexts differ per choice) ``contexts`` from the sample
    metadata; otherwise the shared context is the sample input. ``model`` defaults to the model under test.
    """

    async def score(state: TaskState, target: Target) -> Score:
        api = logprob_model(model, purpose="capability scoring")
        meta = state.metadata
        continuations = list(meta["continuations"])
        contexts = list(meta.get("contexts") or [state.input_text] * len(continuations))
        gold = int(meta["gold"])
        mc2_conts = list(meta.get("mc2_continuations") or [])
        pairs = list(zip(contexts, continuations)) + [(contexts[0], c) for c in mc2_conts]
        results = await anyio.to_thread.run_sync(partial(api.continuation_logprobs, pairs, batch_size=batch_size))
        n = len(continuations)
        logprobs = [r.logprob for r in results[:n]]
        picked = choose(logprobs, continuations, gold)
        metadata: dict[str, Any] = {
            **picked,
            "gold": gold,
            "logprobs": logprobs,
            "n_tokens": [r.n_tokens for r in results[:n]],
        }
        if mc2_conts:
            mc2_lps = [r.logprob for r in results[n:]]
            metadata["mc2"] = mc2_score(mc2_lps, meta["mc2_labels"])
            metadata["mc2_logprobs"] = mc2_lps
        return Score(
            value=CORRECT if picked["correct"] else INCORRECT,
            answer=LETTERS[picked["pred"]],
            explanation=f"gold {LETTERS[gold]}, argmax {LETTERS[picked['pred']]}, "
            f"argmax per char {LETTERS[picked['pred_norm']]}",
            metadata=metadata,
        )

    return score


def _metadata_mean(scores: list[SampleScore], key: str) -> float:
    values = [float(s.score.metadata[key]) for s in scores if s.score.metadata and key in s.score.metadata]
    return sum(values) / len(values) if values else float("nan")


@metric
def norm_accuracy() -> Metric:
    """acc_norm: share of items whose per-character log-prob argmax is the gold answer."""

    def compute(scores: list[SampleScore]) -> float:
        return _metadata_mean(scores, "correct_norm")

    return compute


@metric
def mc2() -> Metric:
    """TruthfulQA mc2: mean probability mass on the true answers."""

    def compute(scores: list[SampleScore]) -> float:
        return _metadata_mean(scores, "mc2")

    return compute
