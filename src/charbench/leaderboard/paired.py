"""Candidate minus baseline on one declared metric, paired the way the task's contract says.

``PerSample``: the mean of per-sample differences on the same sample ids and epochs (a paired t interval).
``BootstrapOver``: the same resampling units are drawn for both runs and the metric is recomputed on each
side, so the interval of a macro-F1 or an Elo spread accounts for the pairing and for the unit the task
itself resamples.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from inspect_ai.log import EvalSample, read_eval_log
from inspect_ai.scorer import SampleScore

from charbench.errors import CharbenchError
from charbench.leaderboard.logs import RunRecord
from charbench.stats import paired_delta
from charbench.tasks.contract import (
    BootstrapOver,
    ContractMetric,
    PerSample,
    resolve_statistic,
)


@dataclass(frozen=True)
class PairedEstimate:
    """delta = candidate - baseline with a percentile / t interval over ``n`` shared units."""

    value: float
    low: float
    high: float
    n: int
    unit: str

    @property
    def significant(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        return f"delta {self.value:+.4f} [{self.low:+.4f}, {self.high:+.4f}] n={self.n} {self.unit}"


class SampleReader:
    """Reads each log's samples once per command (the gate and the page may pair one log several times), and
    keeps each resample's statistic: every paired metric of a task draws the same resamples (one seed), and a
    baseline is paired with every candidate, so one statistic serves them all (it returns every metric)."""

    def __init__(self) -> None:
        self._samples: dict[str, list[EvalSample]] = {}
        self._statistics: dict[tuple[str, str, str, tuple[str, ...]], dict[str, float]] = {}

    def statistic(self, path: str, spec: BootstrapOver, groups: dict[str, list[SampleScore]],
                  chosen: list[str]) -> dict[str, float]:
        """``spec``'s statistic of the units ``chosen`` (with repeats) of the log at ``path``, computed once."""
        key = (path, spec.statistic, spec.unit, tuple(chosen))
        if key not in self._statistics:
            self._statistics[key] = resolve_statistic(spec.statistic)([s for u in chosen for s in groups[u]])
        return self._statistics[key]

    def samples(self, path: str) -> list[EvalSample]:
        if path not in self._samples:
            log = read_eval_log(path)
            if not log.samples:
                raise CharbenchError(f"{path} holds no samples (written header-only?); a paired rule needs them")
            self._samples[path] = list(log.samples)
        return self._samples[path]


def _score_of(sample: EvalSample, scorer: str | None):
    scores = sample.scores or {}
    if not scores:
        return None
    if scorer is None:
        return next(iter(scores.values()))
    return scores.get(scorer)


def _number(value: object, key: str | None) -> float:
    if isinstance(value, dict):
        if key is None:
            raise CharbenchError(f"the score is a dict ({sorted(value)}); the contract's PerSample needs key=<one of them>")
        value = value.get(key, math.nan)
    if isinstance(value, str):
        return 1.0 if value == "C" else 0.0 if value == "I" else math.nan
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _per_sample_values(samples: list[EvalSample], spec: PerSample) -> dict[str, float]:
    out = {}
    for s in samples:
        score = _score_of(s, spec.scorer)
        if score is None or s.error:
            continue  # errored: counted by the run's errored samples, never paired
        v = _number(score.value, spec.key)
        if not math.isnan(v):
            out[f"{s.id}:{s.epoch}"] = v
    return out


def _unit_of(sample: EvalSample, score, unit: str) -> str:
    if unit == "id":
        return str(sample.id)
    for meta in (sample.metadata or {}, score.metadata or {}):
        if unit in meta:
            return str(meta[unit])
    raise CharbenchError(f"sample {sample.id} has no '{unit}' in its metadata, the contract's resampling unit")


def _grouped_scores(samples: list[EvalSample], unit: str) -> dict[str, list[SampleScore]]:
    groups: dict[str, list[SampleScore]] = defaultdict(list)
    for s in samples:
        score = _score_of(s, None)
        if score is None or s.error:
            continue
        groups[_unit_of(s, score, unit)].append(SampleScore(score=score, sample_id=s.id, sample_metadata=s.metadata))
    return groups


def paired_estimate(metric: ContractMetric, candidate: RunRecord, baseline: RunRecord, reader: SampleReader,
                    level: float = 0.95, n_boot: int = 500, seed: int = 0) -> PairedEstimate:
    """candidate - baseline on ``metric``; raises CharbenchError naming why the two runs cannot be paired."""
    spec = metric.paired
    if spec is None:
        raise CharbenchError(f"{candidate.task} declares no paired quantity for {metric.key}; use an absolute rule (min/max)")
    cand, base = reader.samples(candidate.path), reader.samples(baseline.path)
    if isinstance(spec, PerSample):
        a, b = _per_sample_values(cand, spec), _per_sample_values(base, spec)
        shared = sorted(set(a) & set(b))
        if not shared:
            raise CharbenchError(f"candidate and baseline {candidate.task} runs share no scored sample ids")
        est = paired_delta([a[k] for k in shared], [b[k] for k in shared], level=level)
        return PairedEstimate(est.value, est.low, est.high, est.n, "samples")
    assert isinstance(spec, BootstrapOver)
    ga, gb = _grouped_scores(cand, spec.unit), _grouped_scores(base, spec.unit)
    units = sorted(set(ga) & set(gb))
    if not units:
        raise CharbenchError(f"candidate and baseline {candidate.task} runs share no '{spec.unit}' units")

    def delta(chosen: list[str]) -> float:
        va = reader.statistic(candidate.path, spec, ga, chosen).get(metric.key, math.nan)
        vb = reader.statistic(baseline.path, spec, gb, chosen).get(metric.key, math.nan)
        return float(va) - float(vb)

    point = delta(units)
    if math.isnan(point):
        raise CharbenchError(f"{candidate.task}.{metric.key} cannot be computed on the {len(units)} shared units")
    rng = np.random.default_rng(seed)
    draws = [delta([units[i] for i in rng.integers(0, len(units), len(units))]) for _ in range(n_boot)]
    finite = [d for d in draws if not math.isnan(d)]
    tail = (1 - level) / 2 * 100
    # Too few computable resamples would give an interval that looks precise but is not: refuse it.
    if len(units) < 2 or len(finite) < 0.9 * n_boot:
        return PairedEstimate(point, math.nan, math.nan, len(units), spec.unit)
    return PairedEstimate(point, float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail)),
                          len(units), spec.unit)
