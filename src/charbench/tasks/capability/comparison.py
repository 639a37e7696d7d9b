"""Candidate vs baseline on the same items: paired accuracy deltas and the capability gate.

Pure functions on plain inputs (``{sample_id: 0/1}`` dicts), plus one reader for Inspect logs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from charbench.errors import CharbenchError
from charbench.stats import Estimate, _z, mean_estimate, paired_delta


class PairingError(CharbenchError, ValueError):
    """Two runs that cannot be paired item by item."""


def _check_binary(name: str, values: Mapping[Any, Any]) -> None:
    bad = [k for k, v in values.items() if v not in (0, 1, True, False)]
    if bad:
        raise ValueError(f"{name}: per-item correctness must be 0/1; items {bad[:5]} are not.")


def paired_accuracy_delta(candidate: Mapping[Any, int], baseline: Mapping[Any, int], level: float = 0.95) -> Estimate:
    """Candidate minus baseline accuracy on the same items: mean of per-item differences, paired SE
    sd(d)/sqrt(n) and a normal interval at ``level`` (as a fraction: 0.02 is two points)."""
    _check_binary("candidate", candidate)
    _check_binary("baseline", baseline)
    only_c, only_b = sorted(set(candidate) - set(baseline), key=str), sorted(set(baseline) - set(candidate), key=str)
    if only_c or only_b:
        raise PairingError(
            f"paired comparison needs the same items in both runs: {len(only_c)} only in the candidate "
            f"(e.g. {only_c[:3]}), {len(only_b)} only in the baseline (e.g. {only_b[:3]}). Run both with the same "
            "task, source, revision, n_shots, shots, seed and limit."
        )
    if not candidate:
        raise PairingError("paired comparison needs at least one item.")
    ids = sorted(candidate, key=str)
    return paired_delta([float(candidate[i]) for i in ids], [float(baseline[i]) for i in ids], level)


def mmlu_pooled(correct: Mapping[Any, int] | Sequence[int], level: float = 0.95) -> Estimate:
    """MMLU accuracy pooled over all items with the standard error of that mean, sd/sqrt(n_items).

    This is the sampling error of the headline number; the spread of per-subject accuracies (what the
    paper's +-3.3 was) describes how subjects differ, not how precisely the mean is known.
    """
    values = list(correct.values()) if isinstance(correct, Mapping) else list(correct)
    return mean_estimate([float(v) for v in values], level)


def subject_spread(correct: Mapping[Any, int], subject_of: Mapping[Any, str]) -> float:
    """Standard deviation (ddof=1) of per-subject accuracies: the across-subject spread, for contrast."""
    by_subject: dict[str, list[float]] = {}
    for item, value in correct.items():
        by_subject.setdefault(subject_of[item], []).append(float(value))
    means = [sum(v) / len(v) for v in by_subject.values()]
    if len(means) < 2:
        return float("nan")
    mu = sum(means) / len(means)
    return math.sqrt(sum((m - mu) ** 2 for m in means) / (len(means) - 1))


def lower_bound(delta: Estimate, level: float = 0.95) -> float:
    """Lower end of the two-sided normal interval of ``delta`` at ``level`` (from its SE)."""
    if math.isnan(delta.se):
        return float("nan")
    return delta.value - _z(level) * delta.se


def capability_drop_check(delta: Estimate, max_drop_points: float, level: float = 0.95) -> bool:
    """True when "the benchmark does not drop by more than ``max_drop_points`` points at ``level``
    confidence": the interval's lower bound is above -max_drop_points/100. Undecidable (no SE, n < 2) is
    False, so a gate never passes on too little data."""
    low = lower_bound(delta, level)
    return not math.isnan(low) and low > -max_drop_points / 100.0


def per_item_correct_from_log(log_path: str | Path | Any, scorer: str | None = None) -> dict[str, int]:
    """``{sample_id: 0/1}`` from a capability eval log (a path or an ``EvalLog``).

    Uses the score metadata's ``correct`` (the value "C"/"I" otherwise). Samples that errored or were not
    scored are left out, so pairing with a complete run fails loudly instead of silently.
    """
    from inspect_ai.log import EvalLog, read_eval_log

    log = log_path if isinstance(log_path, EvalLog) else read_eval_log(str(log_path))
    if not log.samples:
        raise PairingError(f"log {getattr(log, 'location', log_path)} has no samples (status {log.status}).")
    out: dict[str, int] = {}
    for sample in log.samples:
        if not sample.scores:
            continue
        name = scorer or next(iter(sample.scores))
        if name not in sample.scores:
            raise PairingError(f"sample {sample.id!r} has no score named {name!r} (has {list(sample.scores)}).")
        score = sample.scores[name]
        meta = score.metadata or {}
        correct = int(meta["correct"]) if "correct" in meta else int(score.value == "C")
        key = str(sample.id)
        if key in out:
            raise PairingError(f"sample id {key!r} appears twice in {log.location}: run capability tasks with epochs=1.")
        out[key] = correct
    return out


def shot_selection(metadata: Mapping[str, Any]) -> str:
    """The few-shot selection a log's task used. Logs written before the ``shots`` parameter (task version 1)
    have none recorded; their rule was per subject for MMLU and per item for the other few-shot tasks."""
    if "shots" in metadata:
        return str(metadata["shots"])
    if not metadata.get("n_shots"):
        return "none"
    return "per_subject" if metadata.get("benchmark") == "mmlu" else "per_item"


def paired_delta_from_logs(candidate_log: str | Path | Any, baseline_log: str | Path | Any,
                           level: float = 0.95) -> Estimate:
    """Paired accuracy delta of two logs of the same task on the same items."""
    from inspect_ai.log import EvalLog, read_eval_log

    logs = [log if isinstance(log, EvalLog) else read_eval_log(str(log)) for log in (candidate_log, baseline_log)]
    settings = []
    for log in logs:
        meta = log.eval.metadata or {}
        settings.append((log.eval.task, meta.get("n_shots"), shot_selection(meta), meta.get("source"),
                         meta.get("revision"), meta.get("seed")))
    if settings[0] != settings[1]:
        raise PairingError(
            f"the logs differ in (task, n_shots, shots, source, revision, seed): {settings[0]} vs {settings[1]}. "
            "Run both with the same task arguments (shots=fixed and shots=per_item put different examples "
            "before each item)."
        )
    return paired_accuracy_delta(per_item_correct_from_log(logs[0]), per_item_correct_from_log(logs[1]), level)
