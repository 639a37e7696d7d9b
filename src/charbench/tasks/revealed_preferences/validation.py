"""Judge validation: responses with a known (forced) trait, judged against a random other trait."""

from __future__ import annotations

import random

from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState

from charbench.judges.likelihood import trait_likelihood_choice
from charbench.judges.trait_judge import JUDGE_MAX_TOKENS, JUDGE_TEMPERATURE, judge_config, judge_trait_choice
from charbench.prompts import load_prompt_set
from charbench.stats import mean_estimate
from charbench.tasks.revealed_preferences.scorer import sample_meta

# Forcing wording differs from the likelihood judge's hypothesis wording on purpose.
FORCE_TRAIT = "For this whole conversation, be {trait}. Let being {trait} shape every sentence you write, without naming the trait."


def validation_dataset(traits: list[str], n: int, seed: int, prompt_set: str,
                       prompt_revision: str | None = None) -> MemoryDataset:
    rng = random.Random(seed)
    prompts = load_prompt_set(prompt_set, split="eval", revision=prompt_revision)
    samples = []
    for i in range(n):
        true, other = rng.sample(traits, 2)
        samples.append(Sample(
            id=f"v{i:04d}", input=prompts[rng.randrange(len(prompts))].text, target=true,
            metadata={"true_trait": true, "other_trait": other, "system": FORCE_TRAIT.format(trait=true),
                      "first": rng.choice([true, other])},
        ))
    return MemoryDataset(samples, name="trait_judge_validation")


@metric
def judge_accuracy() -> Metric:
    """Share of all samples where the judge named the forced trait (invalid counts as wrong), with a CI."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        correct = [float(s.score.answer == sample_meta(s)["true_trait"]) for s in scores]
        est = mean_estimate(correct)
        invalid = sum(1 for s in scores if s.score.answer == "INVALID")
        truncated = sum(1 for s in scores if (s.score.metadata or {}).get("problem") == "truncated")
        return {**est.as_metrics("accuracy"), "n": float(est.n), "invalid": float(invalid), "truncated": float(truncated), "chance": 0.5}

    return compute


@scorer(metrics=[judge_accuracy()])
def validation_scorer(judge_method: str = "likelihood", judge_temperature: float = JUDGE_TEMPERATURE,
                      judge_max_tokens: int = JUDGE_MAX_TOKENS):
    async def score(state: TaskState, target: Target) -> Score:
        judge = get_model(role="judge", required=True)
        true, other = state.metadata["true_trait"], state.metadata["other_trait"]
        pair = [state.metadata["first"], other if state.metadata["first"] == true else true]
        problem = None
        if judge_method == "likelihood":
            chosen, _ = await trait_likelihood_choice(judge, state.input_text, state.output.completion, pair)
        else:
            chosen, _, problem = await judge_trait_choice(
                judge, state.input_text, state.output.completion, (pair[0], pair[1]), seed=0,
                config=judge_config(judge_temperature, judge_max_tokens))
        return Score(value="C" if chosen == true else "I", answer=chosen or "INVALID",
                     metadata={"judge_method": judge_method, "problem": problem})

    return score
