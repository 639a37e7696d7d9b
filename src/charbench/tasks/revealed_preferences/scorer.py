"""Trait judge scorer and the Bradley-Terry / Elo metric."""

from __future__ import annotations

import numpy as np
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState

from charbench.errors import TaskParameterError
from charbench.judges.likelihood import trait_likelihood_choice
from charbench.judges.trait_judge import judge_trait_choice
from charbench.prompts import hash_id
from charbench.stats import bootstrap_bradley_terry, online_elo

JUDGE_METHODS = ("generative", "likelihood")


def matches_from_scores(scores: list[SampleScore]) -> tuple[list[str], list[tuple[int, int]], int]:
    """(traits, (winner, loser) index pairs, number of invalid judgements) from sample scores."""
    traits = sorted({s.sample_metadata[k] for s in scores for k in ("trait_1", "trait_2")} if scores else set())
    index = {t: i for i, t in enumerate(traits)}
    matches, invalid = [], 0
    for s in scores:
        meta = s.score.metadata or {}
        winner, loser = meta.get("winner"), meta.get("loser")
        if winner in index and loser in index:
            matches.append((index[winner], index[loser]))
        else:
            invalid += 1
    return traits, matches, invalid


@metric
def trait_elo(n_boot: int = 200, seed: int = 0) -> Metric:
    """Bradley-Terry Elo per trait with bootstrap intervals, online Elo, spread, n and invalid rate."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        traits, matches, invalid = matches_from_scores(scores)
        out: dict[str, float] = {
            "n_matches": float(len(scores)), "n_valid": float(len(matches)), "invalid": float(invalid),
            "invalid_rate": invalid / len(scores) if scores else float("nan"),
        }
        if len(traits) < 2:
            return out
        elo, low, high, draws = bootstrap_bradley_terry(matches, len(traits), n_boot=n_boot, seed=seed, return_draws=True)
        online = online_elo(matches, len(traits), n_orderings=50, seed=seed)
        out["elo_sd"] = float(np.std(elo))
        spread = np.std(draws, axis=1)
        out["elo_sd_low"], out["elo_sd_high"] = float(np.percentile(spread, 2.5)), float(np.percentile(spread, 97.5))
        for i, t in enumerate(traits):
            out[f"elo/{t}"] = float(elo[i])
            out[f"elo_low/{t}"] = float(low[i])
            out[f"elo_high/{t}"] = float(high[i])
            out[f"online_elo/{t}"] = float(online[i])
        return out

    return compute


@scorer(metrics=[trait_elo()])
def trait_choice(judge_method: str = "likelihood", judge_temperature: float = 0.0, judge_max_tokens: int = 512):
    """Ask the ``judge`` role which of the sample's two traits the response embodied."""
    if judge_method not in JUDGE_METHODS:
        raise TaskParameterError(f"judge_method={judge_method!r}; choose one of {JUDGE_METHODS}.")

    async def score(state: TaskState, target: Target) -> Score:
        judge = get_model(role="judge", required=True)
        traits = (state.metadata["trait_1"], state.metadata["trait_2"])
        response = state.output.completion
        if judge_method == "likelihood":
            chosen, detail = await trait_likelihood_choice(judge, state.input_text, response, list(traits))
            reply = ""
        else:
            config = GenerateConfig(temperature=judge_temperature, max_tokens=judge_max_tokens)
            chosen, reply = await judge_trait_choice(judge, state.input_text, response, traits, seed=hash_id(str(state.sample_id)), config=config)
            detail = {}
        valid = chosen is not None
        loser = (traits[1] if chosen == traits[0] else traits[0]) if valid else None
        return Score(
            value={"valid": float(valid), "first_wins": float(chosen == traits[0]) if valid else float("nan")},
            answer=chosen or "INVALID",
            explanation=reply[-2000:] if reply else None,
            metadata={"winner": chosen, "loser": loser, "judge_method": judge_method, **detail},
        )

    return score
