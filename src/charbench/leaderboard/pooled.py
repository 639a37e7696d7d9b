"""Results averaged over the suite's personas (the paper reports a trained variant's coherence win rate this way).

The runner marks the steps of such a result (one per persona, the same prompts for each). Here they become one
record per (variant, task, other arguments): each headline metric is the mean of the per-persona values.

**The interval** resamples prompts, the independent unit: a draw picks prompts with replacement and takes every
persona's samples of each drawn prompt, so the correlation between personas answering the same prompt stays in
the interval. The personas are the suite's fixed list, not a sample of personas, so they are not resampled. A
metric without a bootstrap statistic in its contract gets the mean with no interval. **n** is the number of
prompts resampled; the per-persona figures are kept (``persona_rows``, the leaderboard's ``pooled.csv``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np
from inspect_ai.scorer import SampleScore

from charbench.evals.trained import PERSONA_ARG
from charbench.leaderboard.headline import metric_cell
from charbench.leaderboard.logs import RunRecord
from charbench.leaderboard.paired import SampleReader, _grouped_scores
from charbench.tasks.contract import BootstrapOver, ContractMetric, resolve_statistic

POOLED_COLUMNS = ["variant", "task", "args", "metric", "persona", "value", "low", "high", "n", "invalid", "log"]
MIN_FINITE_SHARE = 0.9  # fewer computable draws than this and the interval is not reported


def _group_key(run: RunRecord) -> tuple:
    args = tuple(sorted((k, v) for k, v in run.row_args.items() if k != PERSONA_ARG))
    return (run.variant, run.task, args)


def mean_over_personas(by_persona: dict[str, dict[str, list[SampleScore]]], statistic, key: str,
                       n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float, int]:
    """(mean, low, high, prompts) of ``statistic(...)[key]`` averaged over personas, prompts resampled jointly.

    ``by_persona`` maps persona -> unit (prompt) -> that persona's scores on it.
    """
    units = sorted({u for groups in by_persona.values() for u in groups})

    def mean(chosen: list[str]) -> float:
        values = [float(statistic([s for u in chosen for s in groups.get(u, [])]).get(key, math.nan))
                  for groups in by_persona.values()]
        return math.nan if any(math.isnan(v) for v in values) else sum(values) / len(values)

    point = mean(units)
    if math.isnan(point) or len(units) < 2:
        return point, math.nan, math.nan, len(units)
    rng = np.random.default_rng(seed)
    draws = [mean([units[i] for i in rng.integers(0, len(units), len(units))]) for _ in range(n_boot)]
    finite = [d for d in draws if not math.isnan(d)]
    if len(finite) < MIN_FINITE_SHARE * n_boot:
        return point, math.nan, math.nan, len(units)
    tail = (1 - level) / 2 * 100
    return point, float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)), len(units)


def _pooled_metrics(m: ContractMetric, runs: list[RunRecord], reader: SampleReader, n_boot: int) -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(m.paired, BootstrapOver):
        statistic = resolve_statistic(m.paired.statistic)
        by_persona = {r.persona or r.path: _grouped_scores(reader.samples(r.path), m.paired.unit) for r in runs}
        value, low, high, units = mean_over_personas(by_persona, statistic, m.key, n_boot=n_boot)
    else:  # no statistic to recompute on resampled prompts: the mean, honestly without an interval
        values = [r.metrics.get(m.key, math.nan) for r in runs]
        value = math.nan if any(math.isnan(v) for v in values) else sum(values) / len(values)
        low = high = math.nan
        units = sum(r.completed_samples for r in runs)
    out[m.key] = value
    for key, number in ((m.low, low), (m.high, high), (m.n, float(units))):
        if key:
            out[key] = number
    if m.invalid:
        out[m.invalid] = sum(r.metrics.get(m.invalid, 0.0) for r in runs)
    if m.invalid_rate:
        total = sum(r.total_samples for r in runs)
        rates = [(r.metrics.get(m.invalid_rate, math.nan), r.total_samples) for r in runs]
        out[m.invalid_rate] = sum(rate * n for rate, n in rates) / total if total else math.nan
    return out


def pool_record(runs: list[RunRecord], reader: SampleReader, n_boot: int = 1000) -> RunRecord:
    """One record standing for ``runs`` (one per persona): headline metrics averaged over the personas."""
    runs = sorted(runs, key=lambda r: r.persona or "")
    personas = tuple(r.persona or "?" for r in runs)
    metrics: dict[str, float] = {}
    for m in runs[0].contract.headlines:
        metrics.update(_pooled_metrics(m, runs, reader, n_boot))
    first = runs[0]
    checkpoints = {k: v for r in runs for k, v in r.trained_checkpoints.items()}
    trained = {**(first.trained or {}), "checkpoints": checkpoints} if checkpoints else first.trained
    return dataclasses.replace(
        first, metrics=metrics, trained=trained, task_args={**first.task_args, PERSONA_ARG: list(personas)},
        total_samples=sum(r.total_samples for r in runs), completed_samples=sum(r.completed_samples for r in runs),
        created=max(r.created for r in runs), pool_persona=None, pooled_over=personas)


def persona_rows(runs: list[RunRecord]) -> list[dict]:
    """The per-persona figures behind pooled records, each with its own interval and log (nothing hidden)."""
    rows = []
    for run in runs:
        if not run.pool_persona:
            continue
        args = ", ".join(f"{k}={v}" for k, v in run.row_args.items() if v != "" and k != PERSONA_ARG)
        for m in run.contract.headlines:
            cell = metric_cell(run, m)
            rows.append({"variant": run.variant, "task": run.task, "args": args, "metric": f"{run.task}.{m.key}",
                         "persona": run.pool_persona, "value": cell["value"], "low": cell["low"], "high": cell["high"],
                         "n": cell["n"], "invalid": cell["invalid"], "log": run.path})
    return rows


def pool_over_personas(runs: list[RunRecord], reader: SampleReader, n_boot: int = 1000) -> list[RunRecord]:
    """Runs marked as one persona of a mean are replaced by one pooled record per group; others pass through."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    out = []
    for run in runs:
        if run.pool_persona:
            groups[_group_key(run)].append(run)
        else:
            out.append(run)
    return out + [pool_record(group, reader, n_boot) for group in groups.values()]
