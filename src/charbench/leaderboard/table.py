"""Leaderboard tables: long CSV, wide display table (a row per variant, columns grouped by area), Markdown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from charbench.leaderboard.headline import headline_values
from charbench.leaderboard.logs import RunRecord
from charbench.tasks.contract import AREAS

ARROWS = {"higher": "↑", "lower": "↓", "neither": ""}
COLUMNS = ["variant", "persona", "stage", "task", "args", "area", "column", "label", "better", "metric", "value", "low",
           "high", "n", "invalid", "invalid_rate", "errored", "log", "created", "identity", "planted_strength"]


@dataclass
class Board:
    """The runs the board shows, one per identity, and the older repeats it set aside (listed on the page)."""

    runs: list[RunRecord]
    frame: pd.DataFrame
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (older log, newer log kept)


def newest_per_identity(runs: list[RunRecord]) -> tuple[list[RunRecord], list[tuple[str, str]]]:
    """Repeats of one measurement (same model, task and distinguishing args): the newest is shown."""
    by_identity: dict[tuple, list[RunRecord]] = {}
    for run in runs:
        by_identity.setdefault(run.identity, []).append(run)
    kept, superseded = [], []
    for group in by_identity.values():
        group = sorted(group, key=lambda r: (r.created, r.path))
        kept.append(group[-1])
        superseded += [(old.path, group[-1].path) for old in group[:-1]]
    return kept, superseded


def _varying_args(runs: list[RunRecord]) -> dict[str, list[str]]:
    """Per task, the distinguishing args whose values differ between its runs: they name its columns."""
    out: dict[str, list[str]] = {}
    for task in {r.task for r in runs}:
        of_task = [r for r in runs if r.task == task]
        # the contract's row args, then any the runner added (a pairwise run's opponent)
        keys = list(dict.fromkeys(k for r in of_task for k in r.row_args))
        out[task] = [k for k in keys if len({r.row_args.get(k) for r in of_task}) > 1]
    return out


def leaderboard_frame(runs: list[RunRecord]) -> Board:
    """Long format: one row per (run, headline metric); runs that differ in any distinguishing arg stay apart."""
    kept, superseded = newest_per_identity(runs)
    varying = _varying_args(kept)
    rows = []
    for run in kept:
        suffix = ", ".join(f"{k}={run.row_args[k]}" for k in varying[run.task])
        for row in headline_values(run):
            row["column"] = row["label"] + (f" ({suffix})" if suffix else "")
            rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return Board(kept, frame, superseded)


def format_cell(value: float, low: float, high: float, n: float, invalid: float, invalid_rate: float = math.nan) -> str:
    text = "–" if value is None or math.isnan(value) else f"{value:.3g}"  # no estimate: n and invalid still say why
    if not (math.isnan(value) or math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3g}, {high:.3g}]"
    if not math.isnan(n):
        text += f" n={int(n)}"
    if not math.isnan(invalid) and invalid > 0:
        text += f" inv={invalid:.3g}"
    if not math.isnan(invalid_rate) and invalid_rate > 0:
        text += f" inv={invalid_rate:.1%}"
    return text


def column_order(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(area, column) pairs: areas in the contract's order, columns by label within an area."""
    pairs = frame[["area", "column", "better"]].drop_duplicates(["area", "column"])
    rank = {a: i for i, a in enumerate(AREAS)}
    ordered = sorted(pairs.itertuples(index=False), key=lambda p: (rank.get(p.area, len(rank)), p.column))
    return [(p.area, p.column) for p in ordered]


def header(frame: pd.DataFrame, column: str) -> str:
    better = frame.loc[frame["column"] == column, "better"].iloc[0]
    return f"{column} {ARROWS[better]}".strip()


def wide_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows are variants (with persona and stage), columns '<area>: <headline> ↑/↓', cells 'value [low, high] n= inv='."""
    if frame.empty:
        return pd.DataFrame()
    cells = frame.assign(cell=[format_cell(r.value, r.low, r.high, r.n, r.invalid, r.invalid_rate) for r in frame.itertuples()])
    wide = cells.pivot(index="variant", columns="column", values="cell").fillna("–")
    order = column_order(frame)
    wide = wide[[c for _, c in order]]
    wide.columns = [f"{area}: {header(frame, c)}" for area, c in order]
    info = frame.drop_duplicates("variant").set_index("variant")[["persona", "stage"]]
    wide.insert(0, "stage", info["stage"].reindex(wide.index))
    wide.insert(0, "persona", info["persona"].reindex(wide.index).replace("", "–"))
    wide.columns.name = None
    return wide


def markdown_table(wide: pd.DataFrame) -> str:
    if wide.empty:
        return "_no charbench runs found_\n"
    header_row = ["variant", *wide.columns]
    lines = ["| " + " | ".join(header_row) + " |", "|" + "---|" * len(header_row)]
    for variant, row in wide.iterrows():
        lines.append("| " + " | ".join([str(variant), *[str(v) for v in row.values]]) + " |")
    return "\n".join(lines) + "\n"
