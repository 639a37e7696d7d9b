"""Trait judge scorer and the Bradley-Terry / Elo metric (raw, null control, prior-corrected)."""

from __future__ import annotations

from typing import Any

import numpy as np
from inspect_ai.model import get_model
from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState

from charbench.errors import CharbenchError, TaskParameterError
from charbench.judges.likelihood import trait_likelihood_choice
from charbench.judges.trait_judge import JUDGE_MAX_TOKENS, JUDGE_TEMPERATURE, judge_config, judge_trait_choice
from charbench.prompts import hash_id
from charbench.stats import (
    bradley_terry_draws,
    fit_bradley_terry_counts,
    noise_corrected_spread,
    online_elo,
    resample_weights,
    theta_to_elo,
    win_matrix,
)

JUDGE_METHODS = ("generative", "likelihood")

# Below this many appearances per trait the noise-corrected spread is flagged (``few_matches_warning``). A
# trait seen m times against random opponents has an Elo standard error near 350/sqrt(m): at 30 that is about
# 65 Elo, the size of the spreads a weak preference produces, so the correction would be subtracting a noise
# term as large as the signal, itself estimated from few matches. The flag is also raised when the bootstrap
# says more than half of the raw variance is noise, whatever the count.
MIN_APPEARANCES_PER_TRAIT = 30
MAX_NOISE_SHARE = 0.5


def sample_meta(s: SampleScore) -> dict[str, Any]:
    """The sample's metadata; this task's samples always carry it, so its absence means a foreign or damaged log."""
    if s.sample_metadata is None:
        raise CharbenchError(f"sample {s.sample_id} has no metadata (trait_1, trait_2, ...); score a log written by "
                             "charbench/revealed_preferences or its judge validation.")
    return s.sample_metadata


def _pair(meta: dict, index: dict[str, int], prefix: str = "") -> tuple[int, int] | None:
    winner, loser = meta.get(f"{prefix}winner"), meta.get(f"{prefix}loser")
    return (index[winner], index[loser]) if winner in index and loser in index else None


def _spread_metrics(name: str, point: np.ndarray, draws: np.ndarray) -> dict[str, float]:
    spread = np.std(draws, axis=1)
    nc = noise_corrected_spread(point, draws)
    return {
        f"{name}_sd": float(np.std(point)),
        f"{name}_sd_low": float(np.percentile(spread, 2.5)), f"{name}_sd_high": float(np.percentile(spread, 97.5)),
        f"{name}_sd_nc": nc["value"], f"{name}_sd_nc_low": nc["low"], f"{name}_sd_nc_high": nc["high"],
        f"{name}_noise_share": nc["noise_share"],
    }


def elo_summary(scores: list[SampleScore], n_boot: int = 200, seed: int = 0, n_orderings: int = 50) -> dict[str, float]:
    """Everything the ``trait_elo`` metric reports; one function so the contract's point statistic agrees.

    Raw ratings come from the real judgements; null ratings from the same judge on the null-control replies;
    the prior-corrected rating is raw minus null, from samples where both judgements are valid. All three are
    bootstrapped together over prompts (each sample is a prompt with its real and null reply), so the
    corrected interval carries the covariance between the two fits.
    """
    n = len(scores)
    traits = sorted({sample_meta(s)[k] for s in scores for k in ("trait_1", "trait_2")} if scores else set())
    index = {t: i for i, t in enumerate(traits)}
    real = [_pair(s.score.metadata or {}, index) for s in scores]
    has_null = any("null_winner" in (s.score.metadata or {}) for s in scores)
    null = [_pair(s.score.metadata or {}, index, "null_") for s in scores] if has_null else [None] * n
    truncated = sum(1 for s in scores if (s.score.metadata or {}).get("problem") == "truncated")
    null_truncated = sum(1 for s in scores if (s.score.metadata or {}).get("null_problem") == "truncated")
    valid = [i for i in range(n) if real[i] is not None]
    out: dict[str, float] = {
        "n_matches": float(n), "n_valid": float(len(valid)), "invalid": float(n - len(valid)),
        "invalid_rate": (n - len(valid)) / n if n else float("nan"), "truncated": float(truncated),
    }
    k = len(traits)
    if k < 2 or not valid:
        return out
    appearances = np.bincount(np.array([real[i] for i in valid]).ravel(), minlength=k)
    # The prompt is the independent unit: when n_matches exceeds the prompt set, prompts repeat, and their
    # matches are resampled together (each sample gets its prompt's multiplicity).
    prompt_ids = [str(sample_meta(s).get("prompt_id", s.sample_id)) for s in scores]
    unit_index = {u: i for i, u in enumerate(dict.fromkeys(prompt_ids))}
    unit_of = np.array([unit_index[u] for u in prompt_ids])
    weights = resample_weights(len(unit_index), n_boot, seed)[:, unit_of] if n_boot > 0 else None

    def fitted(matches: np.ndarray, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Point ratings and their bootstrap draws; without a bootstrap (the leaderboard's paired resamples call
        this hundreds of times) the point stands in for the draws instead of being fitted a second time."""
        point = theta_to_elo(fit_bradley_terry_counts(win_matrix(matches, k)))
        return point, (bradley_terry_draws(matches, k, weights[:, rows]) if weights is not None else point[None, :])

    real_arr = np.array([real[i] for i in valid])
    elo, draws = fitted(real_arr, valid)
    out.update(_spread_metrics("elo", elo, draws))
    out["appearances_per_trait_min"] = float(appearances.min())
    out["few_matches_warning"] = float(appearances.min() < MIN_APPEARANCES_PER_TRAIT
                                       or not out["elo_noise_share"] <= MAX_NOISE_SHARE)
    low, high = np.percentile(draws, 2.5, axis=0), np.percentile(draws, 97.5, axis=0)
    online = online_elo(real_arr, k, n_orderings=n_orderings, seed=seed) if n_orderings else None
    for i, t in enumerate(traits):
        out[f"elo/{t}"], out[f"elo_low/{t}"], out[f"elo_high/{t}"] = float(elo[i]), float(low[i]), float(high[i])
        if online is not None:
            out[f"online_elo/{t}"] = float(online[i])
    if not has_null:
        return out
    null_valid = [i for i in range(n) if null[i] is not None]
    both = [i for i in valid if null[i] is not None]
    out.update({"null_n_valid": float(len(null_valid)), "null_invalid": float(n - len(null_valid)),
                "null_truncated": float(null_truncated),
                "corrected_n_valid": float(len(both)), "corrected_invalid": float(n - len(both))})
    if not both:
        return out
    null_elo, null_draws = fitted(np.array([null[i] for i in null_valid]), null_valid)
    out.update(_spread_metrics("null_elo", null_elo, null_draws))
    # Corrected = raw minus null, each refitted on the samples where both are valid, under the same resample.
    both_real, both_null = fitted(np.array([real[i] for i in both]), both), fitted(np.array([null[i] for i in both]), both)
    corrected = both_real[0] - both_null[0] + 1000.0
    corrected_draws = both_real[1] - both_null[1] + 1000.0
    out.update(_spread_metrics("corrected_elo", corrected, corrected_draws))
    c_low, c_high = np.percentile(corrected_draws, 2.5, axis=0), np.percentile(corrected_draws, 97.5, axis=0)
    for i, t in enumerate(traits):
        out[f"null_elo/{t}"] = float(null_elo[i])
        out[f"corrected_elo/{t}"] = float(corrected[i])
        out[f"corrected_elo_low/{t}"], out[f"corrected_elo_high/{t}"] = float(c_low[i]), float(c_high[i])
    return out


@metric
def trait_elo(n_boot: int = 200, seed: int = 0) -> Metric:
    """Bradley-Terry Elo per trait with bootstrap intervals, online Elo, raw / noise-corrected / null /
    prior-corrected spreads, n, invalid and truncated counts."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        return elo_summary(scores, n_boot=n_boot, seed=seed)

    return compute


async def _judge(judge_method: str, judge, user: str, response: str, traits: tuple[str, str], seed: int,
                 temperature: float, max_tokens: int) -> tuple[str | None, str | None, str, dict]:
    """(chosen, problem, reply, detail) for one response."""
    if judge_method == "likelihood":
        chosen, detail = await trait_likelihood_choice(judge, user, response, list(traits))
        return chosen, None if chosen else "tie or empty", "", detail
    chosen, reply, problem = await judge_trait_choice(
        judge, user, response, traits, seed=seed, config=judge_config(temperature, max_tokens))
    return chosen, problem, reply, {}


@scorer(metrics=[trait_elo()])
def trait_choice(judge_method: str = "likelihood", judge_temperature: float = JUDGE_TEMPERATURE,
                 judge_max_tokens: int = JUDGE_MAX_TOKENS):
    """Ask the ``judge`` role which of the sample's two traits the response (and the null reply) embodied."""
    if judge_method not in JUDGE_METHODS:
        raise TaskParameterError(f"judge_method={judge_method!r}; choose one of {JUDGE_METHODS}.")
    if judge_max_tokens < 1:
        raise TaskParameterError(f"judge_max_tokens must be a positive integer, got {judge_max_tokens}.")

    async def score(state: TaskState, target: Target) -> Score:
        judge = get_model(role="judge", required=True)
        traits = (state.metadata["trait_1"], state.metadata["trait_2"])
        seed = hash_id(str(state.sample_id))
        chosen, problem, reply, detail = await _judge(judge_method, judge, state.input_text, state.output.completion,
                                                      traits, seed, judge_temperature, judge_max_tokens)
        valid = chosen is not None
        meta = {"winner": chosen, "loser": (traits[1] if chosen == traits[0] else traits[0]) if valid else None,
                "problem": problem, "judge_method": judge_method, **detail}
        if "null_response" in state.metadata:
            n_chosen, n_problem, _, n_detail = await _judge(judge_method, judge, state.input_text,
                                                            state.metadata["null_response"], traits, seed,
                                                            judge_temperature, judge_max_tokens)
            meta.update({"null_winner": n_chosen, "null_problem": n_problem,
                         "null_loser": (traits[1] if n_chosen == traits[0] else traits[0]) if n_chosen else None,
                         **{f"null_{k}": v for k, v in n_detail.items()}})
        return Score(
            value={"valid": float(valid), "first_wins": float(chosen == traits[0]) if valid else float("nan")},
            answer=chosen or "INVALID",
            explanation=reply[-2000:] if reply else None,
            metadata=meta,
        )

    return score
