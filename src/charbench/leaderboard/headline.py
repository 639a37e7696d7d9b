"""A run's headline cells, read through its task contract: value, interval, n and what went wrong."""

from __future__ import annotations

import math

from charbench.leaderboard.logs import RunRecord
from charbench.tasks.contract import ContractMetric

NAN = float("nan")
Z95 = 1.959963984540054


def metric_cell(run: RunRecord, m: ContractMetric) -> dict:
    """value, low, high, n, invalid (judgements), invalid_rate and errored samples of one declared metric."""
    metrics = run.metrics
    value = metrics.get(m.key, NAN)
    low = metrics.get(m.low, NAN) if m.low else NAN
    high = metrics.get(m.high, NAN) if m.high else NAN
    if m.se and m.se in metrics and math.isnan(low) and math.isnan(high):
        low, high = value - Z95 * metrics[m.se], value + Z95 * metrics[m.se]
    n = metrics.get(m.n, NAN) if m.n else NAN
    if math.isnan(n):
        n = float(run.completed_samples) if run.total_samples else NAN
    invalid = metrics.get(m.invalid, 0.0) if m.invalid else 0.0
    # Errored or unscored samples never reach the metric; they are invalid results all the same.
    invalid = (0.0 if math.isnan(invalid) else invalid) + run.errored
    return {"value": value, "low": low, "high": high, "n": n, "invalid": invalid,
            "invalid_rate": metrics.get(m.invalid_rate, NAN) if m.invalid_rate else NAN, "errored": run.errored}


def _pooled_suffix(run: RunRecord) -> str:
    return f" [mean of {len(run.pooled_over)} personas]" if run.pooled_over else ""


def headline_values(run: RunRecord) -> list[dict]:
    """One row per headline the run's contract declares."""
    rows = []
    for m in run.contract.headlines:
        rows.append({
            "variant": run.variant, "persona": run.persona or "", "stage": run.stage, "task": run.task,
            "args": ", ".join(f"{k}={v}" for k, v in run.row_args.items() if v != ""),
            "area": m.area, "label": m.label + (" [fixture]" if run.fixture else "") + _pooled_suffix(run),
            "better": m.better, "metric": f"{run.task}.{m.key}", **metric_cell(run, m), "log": run.path,
            "created": run.created, "identity": repr(run.identity),
            # a model organism's planted-trait strength (its training card), for calibration plots; NaN otherwise
            "planted_strength": run.planted_strength,
        })
    return rows
