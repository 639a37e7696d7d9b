"""Leaderboard tables: long CSV, wide display table, Markdown."""

from __future__ import annotations

import math

import pandas as pd

from charbench.leaderboard.headline import headline_values
from charbench.leaderboard.logs import RunRecord


def leaderboard_frame(runs: list[RunRecord]) -> pd.DataFrame:
    """Long format: one row per (variant, headline metric), newest run wins when a pair repeats."""
    rows = [row for run in runs for row in headline_values(run)]
    columns = ["variant", "task", "column", "metric", "value", "low", "high", "n", "invalid", "log"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.drop_duplicates(subset=["variant", "column"], keep="last").reset_index(drop=True)


def format_cell(value: float, low: float, high: float, n: float, invalid: float) -> str:
    if value is None or math.isnan(value):
        text = "–"  # no estimate, but say why: n and the invalid share still show
    else:
        text = f"{value:.3g}"
    if not (math.isnan(value) or math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3g}, {high:.3g}]"
    if not math.isnan(n):
        text += f" n={int(n)}"
    if not math.isnan(invalid) and invalid > 0:
        text += f" inv={invalid:.3g}"
    if text == "–" and math.isnan(n) and math.isnan(invalid):
        return "–"
    return text


def wide_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows are variants, columns headline metrics, cells 'value [low, high] n=… inv=…'."""
    if frame.empty:
        return pd.DataFrame()
    cells = frame.assign(cell=[format_cell(r.value, r.low, r.high, r.n, r.invalid) for r in frame.itertuples()])
    wide = cells.pivot(index="variant", columns="column", values="cell").fillna("–")
    wide.columns.name = None
    return wide


def markdown_table(wide: pd.DataFrame) -> str:
    if wide.empty:
        return "_no charbench runs found_\n"
    header = ["variant", *wide.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, row in wide.iterrows():
        lines.append("| " + " | ".join([str(variant), *[str(v) for v in row.values]]) + " |")
    return "\n".join(lines) + "\n"
