"""Each variant against a baseline variant, metric by metric, paired as each task's contract says."""

from __future__ import annotations

import math

import pandas as pd

from charbench.errors import CharbenchError
from charbench.leaderboard.logs import RunRecord
from charbench.leaderboard.paired import SampleReader, paired_estimate

DELTA_COLUMNS = ["variant", "task", "args", "area", "label", "better", "metric", "delta", "low", "high", "n", "unit",
                 "verdict", "log", "baseline_log"]


def pick_baseline(runs: list[RunRecord], baseline: str | None) -> str | None:
    """The named variant, else the only base-stage variant; None when there is no single obvious one."""
    variants = sorted({r.variant for r in runs})
    if baseline is not None:
        if baseline not in variants:
            raise CharbenchError(f"baseline variant {baseline!r} has no runs here; variants: {', '.join(variants)}")
        return baseline
    base = sorted({r.variant for r in runs if r.stage == "base"})
    return base[0] if len(base) == 1 else None


def _verdict(better: str, low: float, high: float) -> str:
    if math.isnan(low):
        return "no interval"
    if low <= 0 <= high:
        return "no significant change"
    up = low > 0
    if better == "neither":
        return "significantly higher" if up else "significantly lower"
    return "significantly better" if up == (better == "higher") else "significantly worse"


def delta_frame(runs: list[RunRecord], baseline: str, reader: SampleReader, n_boot: int = 200) -> pd.DataFrame:
    """One row per (variant, headline) with a run of the baseline variant under the same distinguishing args."""
    base_runs = {(r.task, tuple(sorted(r.row_args.items()))): r for r in runs if r.variant == baseline}
    rows = []
    for run in runs:
        if run.variant == baseline:
            continue
        base = base_runs.get((run.task, tuple(sorted(run.row_args.items()))))
        for m in run.contract.headlines:
            row = {"variant": run.variant, "task": run.task, "area": m.area, "label": m.label, "better": m.better,
                   "args": ", ".join(f"{k}={v}" for k, v in run.row_args.items() if v != ""),
                   "metric": f"{run.task}.{m.key}", "log": run.path, "baseline_log": base.path if base else ""}
            nan = math.nan
            if base is None:
                rows.append({**row, "delta": nan, "low": nan, "high": nan, "n": nan, "unit": "",
                             "verdict": "no baseline run with these arguments"})
                continue
            try:
                est = paired_estimate(m, run, base, reader, n_boot=n_boot)
            except CharbenchError as exc:
                rows.append({**row, "delta": nan, "low": nan, "high": nan, "n": nan, "unit": "", "verdict": f"not paired: {exc}"})
                continue
            rows.append({**row, "delta": est.value, "low": est.low, "high": est.high, "n": est.n, "unit": est.unit,
                         "verdict": _verdict(m.better, est.low, est.high)})
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)
