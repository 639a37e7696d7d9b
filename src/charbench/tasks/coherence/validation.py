"""``charbench/coherence_judge_validation``: does a pairwise coherence judge pick the side known to be better?

Each prompt gets a reply from the model under test (``reply``), a second reply of the same variant
(``reply_2``) and a reply to a different prompt (``unrelated``). The judge then sees, in both orders:

* positive controls, where the first side is known to be the more coherent reply to the message:
  ``word_shuffle`` (the reply against its own words shuffled), ``sentence_shuffle`` (against its sentences
  reordered; not applicable to a one-sentence reply) and ``unrelated`` (against a fluent reply to another
  prompt);
* the null control ``null``: the reply against ``reply_2``, where neither side is better by construction,
  so the win rate over consistent verdicts should be near 0.5.

Accuracy counts every pair (inconsistent and INVALID verdicts are wrong), so a judge that never commits
scores 0, and chance for a judge that guesses each order independently is 0.25 (it must agree with itself).
The unit is the prompt: one pair per prompt and condition, so Wilson intervals are over prompts.
"""

from __future__ import annotations

import random
import re

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.judges.pairwise import check_judge_method, judge_pair_by, judge_template
from charbench.prompts import load_prompt_set
from charbench.tasks.coherence.contract import VALIDATION
from charbench.tasks.coherence.scorer import wilson_interval
from charbench.tasks.contract import contract_metadata

# conditions whose first side is the better one, and the null control
POSITIVE = ("word_shuffle", "sentence_shuffle", "unrelated")
NULL = "null"
CONDITIONS = (*POSITIVE, NULL)
NOT_APPLICABLE = "not_applicable"

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _reordered(parts: list[str], rng: random.Random) -> list[str] | None:
    """A permutation of ``parts`` that differs from it, or None when every order reads the same."""
    if len(set(parts)) < 2:
        return None
    order = list(parts)
    while order == parts:
        rng.shuffle(order)
    return order


def shuffled_words(text: str, rng: random.Random) -> str | None:
    words = _reordered(text.split(), rng)
    return " ".join(words) if words else None


def shuffled_sentences(text: str, rng: random.Random) -> str | None:
    sentences = _reordered([s for s in _SENTENCE_END.split(text.strip()) if s], rng)
    return " ".join(sentences) if sentences else None


def validation_dataset(n_prompts: int, prompt_set: str, traits: str) -> MemoryDataset:
    """``n_prompts`` evaluation prompts; each is paired with the next one as its unrelated prompt."""
    prompts = load_prompt_set(prompt_set, split="eval", limit=n_prompts + 1)
    return MemoryDataset([
        Sample(id=p.id, input=p.text,
               metadata={"prompt": p.text, "other_prompt": prompts[(i + 1) % len(prompts)].text, "traits": traits,
                         "cluster": p.id})
        for i, p in enumerate(prompts[:n_prompts])
    ], name="coherence_judge_validation")


@solver
def validation_replies(config: GenerateConfig) -> Solver:
    """The reply, a second reply of the same variant (next seed) and a reply to the unrelated prompt."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state = await generate(state)
        model = get_model()
        second_seed = (config.seed or 0) + 1
        second = await model.generate(state.messages[:-1], config=config.merge(GenerateConfig(seed=second_seed)))
        unrelated = await model.generate([ChatMessageUser(content=state.metadata["other_prompt"])], config=config)
        state.metadata.update(reply=state.output.completion, reply_2=second.completion, unrelated=unrelated.completion)
        return state

    return solve


def condition_pairs(meta: dict, seed: int, sample_id: str) -> dict[str, tuple[str, str] | None]:
    """(first side, second side) per condition; None where the condition does not apply to this reply."""
    reply = meta["reply"]
    if not reply.strip():
        return dict.fromkeys(CONDITIONS)
    rng = random.Random(f"{seed}:{sample_id}")
    words, sentences = shuffled_words(reply, rng), shuffled_sentences(reply, rng)
    return {
        "word_shuffle": (reply, words) if words else None,
        "sentence_shuffle": (reply, sentences) if sentences else None,
        "unrelated": (reply, meta["unrelated"]) if meta["unrelated"].strip() else None,
        NULL: (reply, meta["reply_2"]) if meta["reply_2"].strip() else None,
    }


def order_averaged_margin(logprobs: list[dict[str, float]]) -> float:
    """How much more the judge favours the first side's position than the second's, summed over both orders.

    Positive means the first side is preferred once the judge's leaning towards a position (which adds the
    same amount in both orders) cancels out. Secondary to the order-swap rule; reported for the log-prob judge.
    """
    first, second = logprobs
    return (first["1"] - first["2"]) - (second["1"] - second["2"])


def _condition_report(name: str, judged: list[dict]) -> dict[str, float]:
    outcomes = [j["outcome"] for j in judged]
    n = len(outcomes)
    nan = float("nan")
    wins, losses = outcomes.count("a"), outcomes.count("b")
    out = {f"{name}/n": float(n)}
    if name == NULL:
        k = wins + losses
        out[f"{name}/win_rate"] = wins / k if k else nan
        out[f"{name}/win_rate_low"], out[f"{name}/win_rate_high"] = wilson_interval(wins, k) if k else (nan, nan)
        out[f"{name}/n_consistent"] = float(k)
    else:
        out[f"{name}/accuracy"] = wins / n if n else nan
        out[f"{name}/accuracy_low"], out[f"{name}/accuracy_high"] = wilson_interval(wins, n) if n else (nan, nan)
        out[f"{name}/wrong_rate"] = losses / n if n else nan
    for failure in ("inconsistent", "invalid", "unparseable", "truncated"):
        out[f"{name}/{failure}_rate"] = outcomes.count(failure) / n if n else nan
    margins = [order_averaged_margin(j["logprobs"]) for j in judged if j.get("logprobs")]
    if margins:
        key = f"{name}/order_averaged_win_rate" if name == NULL else f"{name}/order_averaged_accuracy"
        out[key] = sum(m > 0 for m in margins) / len(margins)
    return out


def validation_report(per_sample: list[dict[str, dict]]) -> dict[str, float]:
    """Figures per condition, the not-applicable counts and the judge's position bias over every order."""
    out: dict[str, float] = {}
    for name in CONDITIONS:
        judged = [s[name] for s in per_sample if s[name]["outcome"] != NOT_APPLICABLE]
        out.update(_condition_report(name, judged))
        out[f"{name}/not_applicable"] = float(len(per_sample) - len(judged))
    positions = [p for s in per_sample for j in s.values() for p in j.get("positions", ()) if p in ("1", "2")]
    out["position_1_share"] = positions.count("1") / len(positions) if positions else float("nan")
    out["n_position_verdicts"] = float(len(positions))
    return out


@metric
def validation_metrics() -> Metric:
    def compute(scores: list[SampleScore]) -> dict[str, float]:
        return validation_report([(s.score.metadata or {})["conditions"] for s in scores])

    return compute


@scorer(metrics=[validation_metrics()])
def validation_scorer(judge_method: str, judge_prompt: str, judge_max_tokens: int, seed: int):
    """Every condition judged in both orders by the ``judge`` role; value: share of positive controls won."""

    async def score(state: TaskState, target: Target) -> Score:
        judge = get_model(role="judge", required=True)
        results: dict[str, dict] = {}
        for name, pair in condition_pairs(state.metadata, seed, str(state.sample_id)).items():
            if pair is None:
                results[name] = {"outcome": NOT_APPLICABLE}
                continue
            verdict = await judge_pair_by(judge_method, judge, state.metadata["prompt"], pair[0], pair[1],
                                          state.metadata["traits"], judge_prompt, judge_max_tokens)
            results[name] = {"outcome": verdict.outcome, "positions": list(verdict.positions),
                             "logprobs": list(verdict.logprobs) if verdict.logprobs else None,
                             "second_side": pair[1][:300], "replies": [r[-300:] for r in verdict.replies]}
        applicable = [results[c]["outcome"] for c in POSITIVE if results[c]["outcome"] != NOT_APPLICABLE]
        value = sum(o == "a" for o in applicable) / len(applicable) if applicable else 0.0
        return Score(value=value, answer=results[NULL]["outcome"], metadata={"conditions": results})

    return score


@task
def coherence_judge_validation(
    n_prompts: int = 24,
    prompt_set: str = "offline",
    constitution: str = "sarcastic",
    judge_method: str = "logprob",
    judge_prompt: str = "paper",
    max_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    judge_max_tokens: int = 4096,
) -> Task:
    """Positive controls (shuffled or unrelated replies must lose) and a null control for a coherence judge.

    Args:
        n_prompts: evaluation prompts; each gives one pair per condition, judged in both orders.
        constitution: whose traits fill the judge prompt's ``<traits>`` (run the model with that persona,
            ``-M persona=sarcastic``, so that the replies are meant to have them).
        judge_method: ``logprob`` or ``generate``, as in ``charbench/coherence``.
        judge_prompt: ``paper``, ``coherence`` or ``traits``, as in ``charbench/coherence``.
    """
    judge_template(judge_prompt)
    check_judge_method(judge_method)
    if n_prompts < 1:
        raise TaskParameterError(f"n_prompts={n_prompts}; give at least 1 prompt.")
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=0.95, seed=seed)
    return Task(
        dataset=validation_dataset(n_prompts, prompt_set, load_constitution(constitution).traits_text),
        solver=validation_replies(config),
        scorer=validation_scorer(judge_method, judge_prompt, judge_max_tokens, seed),
        config=config,
        version="1-A",
        metadata={"constitution": constitution, "judge_method": judge_method, "judge_prompt": judge_prompt,
                  **contract_metadata(VALIDATION)},
    )
