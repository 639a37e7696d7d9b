"""Compare revealed-preference runs: per-trait change with intervals, spread, Spearman, figures 3 and 4.

Per-trait changes are tested together: with ~144 traits, about 7 would cross a 95% interval by chance alone,
so the summary also counts changes that survive a Benjamini-Hochberg false-discovery-rate correction.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from inspect_ai.log import read_eval_log
from scipy.stats import false_discovery_control, norm, spearmanr

from charbench.errors import CharbenchError
from charbench.stats import bradley_terry_draws, resample_weights

# False discovery rate at which a per-trait change counts as significant after correction.
FDR = 0.05


def matches_from_log(path: str) -> tuple[list[str], list[tuple[str, str]], int]:
    """(traits, (winner, loser) names, invalid count) from a revealed_preferences log."""
    log = read_eval_log(path)
    if not log.eval.task.endswith("revealed_preferences"):
        raise CharbenchError(f"{path} is a {log.eval.task} log, not charbench/revealed_preferences")
    traits, matches, invalid = set(), [], 0
    for s in log.samples or []:
        traits.update([s.metadata["trait_1"], s.metadata["trait_2"]])
        # An errored or unscored sample has no scores: it is an invalid judgement, counted like the others.
        score = next(iter((s.scores or {}).values()), None)
        meta = (score.metadata if score is not None else None) or {}
        if meta.get("winner") and meta.get("loser"):
            matches.append((meta["winner"], meta["loser"]))
        else:
            invalid += 1
    return sorted(traits), matches, invalid


def elo_with_draws(traits: list[str], matches: list[tuple[str, str]], n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Elo point estimate and bootstrap draws (resampling matches) of one run."""
    index = {t: i for i, t in enumerate(traits)}
    arr = np.array([(index[w], index[l]) for w, l in matches], dtype=int).reshape(-1, 2)
    point = bradley_terry_draws(arr, len(traits), np.ones((1, len(arr))))[0]
    if not len(arr) or n_boot <= 0:
        return point, point[None, :]
    return point, bradley_terry_draws(arr, len(traits), resample_weights(len(arr), n_boot, seed))


def compare_elo_runs(log_a: str, log_b: str, n_boot: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Per trait (alphabetical): Elo in A and B and the change B - A with a 95% interval from independent
    bootstraps, a two-sided p-value and its Benjamini-Hochberg q-value; also the bootstrap draws of the change
    (draws x traits) for statistics over groups of traits.

    The p-value is a normal (Wald) test with the bootstrap standard error: a percentile p-value from 200
    draws cannot go below 1/201, which no trait could pass after correcting for 144 of them.
    """
    traits_a, m_a, _ = matches_from_log(log_a)
    traits_b, m_b, _ = matches_from_log(log_b)
    traits = sorted(set(traits_a) & set(traits_b))
    if len(traits) < 2:
        raise CharbenchError(f"{log_a} and {log_b} share fewer than two traits")
    keep = set(traits)
    pa, da = elo_with_draws(traits, [m for m in m_a if set(m) <= keep], n_boot, seed)
    pb, db = elo_with_draws(traits, [m for m in m_b if set(m) <= keep], n_boot, seed + 1)
    delta_draws = db - da
    se = delta_draws.std(axis=0, ddof=1) if len(delta_draws) > 1 else np.full(len(traits), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * norm.sf(np.abs(pb - pa) / se)
    p = np.where(np.isfinite(p), p, 1.0)  # no spread in the draws: no evidence of a change
    frame = pd.DataFrame({
        "trait": traits, "elo_a": pa, "elo_b": pb, "delta": pb - pa,
        "low": np.percentile(delta_draws, 2.5, axis=0), "high": np.percentile(delta_draws, 97.5, axis=0),
        "p_value": p, "q_value": false_discovery_control(p, method="bh"),
    })
    return frame, delta_draws


def group_shift(frame: pd.DataFrame, delta_draws: np.ndarray, group: list[str]) -> dict:
    """Mean change of ``group`` minus mean change of the other traits, with a 95% bootstrap interval.

    A positive control: prompting or training a persona should move its own traits up relative to the rest,
    even when no single trait's change is significant on its own.
    """
    traits = list(frame["trait"])
    unknown = sorted(set(group) - set(traits))
    if unknown:
        raise CharbenchError(f"group traits {unknown} are not in both runs (traits: {traits})")
    inside = np.isin(traits, group)
    if inside.all():
        raise CharbenchError("the group must leave at least one trait outside it")
    deltas = frame["delta"].to_numpy()
    stat = delta_draws[:, inside].mean(axis=1) - delta_draws[:, ~inside].mean(axis=1)
    return {"group": sorted(group), "shift": float(deltas[inside].mean() - deltas[~inside].mean()),
            "low": float(np.percentile(stat, 2.5)), "high": float(np.percentile(stat, 97.5)), "n_boot": len(stat)}


def spearman_between_runs(logs: list[str]) -> pd.DataFrame:
    ratings = {}
    for path in logs:
        traits, matches, _ = matches_from_log(path)
        point, _ = elo_with_draws(traits, matches, 0, 0)
        ratings[path] = dict(zip(traits, point))
    rows = []
    for a, b in combinations(logs, 2):
        shared = sorted(set(ratings[a]) & set(ratings[b]))
        rho = spearmanr([ratings[a][t] for t in shared], [ratings[b][t] for t in shared]).statistic if len(shared) > 2 else float("nan")
        rows.append({"run_a": a, "run_b": b, "spearman": float(rho), "n_traits": len(shared)})
    return pd.DataFrame(rows)


def write_comparison(log_a: str, log_b: str, out_dir: str | Path, k: int = 5, n_boot: int = 200,
                     group: list[str] | None = None) -> dict:
    from charbench.leaderboard.plots import elo_delta_plot, elo_distribution_plot

    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    table, draws = compare_elo_runs(log_a, log_b, n_boot)
    invalid = {"a": matches_from_log(log_a)[2], "b": matches_from_log(log_b)[2]}
    shift = group_shift(table, draws, group) if group else None
    table = table.sort_values("delta", ascending=False).reset_index(drop=True)
    table.to_csv(out / "elo_delta.csv", index=False)
    significant = table[(table["low"] > 0) | (table["high"] < 0)]
    summary = {
        "n_traits": len(table), "sd_a": float(table["elo_a"].std()), "sd_b": float(table["elo_b"].std()),
        "spearman_a_b": float(spearmanr(table["elo_a"], table["elo_b"]).statistic),
        "invalid_a": invalid["a"], "invalid_b": invalid["b"],
        "n_significant_changes": len(significant),
        "n_significant_changes_bh": int((table["q_value"] < FDR).sum()),
        "fdr_method": f"Benjamini-Hochberg at q < {FDR}, Wald p-values with bootstrap SE",
        "group_shift": shift,
        "top": table.head(k)[["trait", "delta", "low", "high", "q_value"]].to_dict("records"),
        "bottom": table.tail(k)[["trait", "delta", "low", "high", "q_value"]].to_dict("records"),
        "delta_plot": str(elo_delta_plot(table, k, "Largest preference changes (B - A)", out / "plots" / "elo_delta.png")),
        "distribution_plot": str(elo_distribution_plot({"A": table["elo_a"].to_numpy(), "B": table["elo_b"].to_numpy()},
                                                       out / "plots" / "elo_distribution.png")),
    }
    return summary
