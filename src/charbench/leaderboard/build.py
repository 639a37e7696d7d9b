"""Build every leaderboard output from a log folder."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from charbench.errors import CharbenchError
from charbench.leaderboard.calibration import leaderboard_calibration_plot
from charbench.leaderboard.delta import delta_frame, pick_baseline
from charbench.leaderboard.html import Page, leaderboard_html
from charbench.leaderboard.logs import RunRecord, log_paths, read_runs
from charbench.leaderboard.paired import SampleReader
from charbench.leaderboard.plots import headline_plot, trait_elo_plot
from charbench.leaderboard.pooled import POOLED_COLUMNS, persona_rows, pool_over_personas
from charbench.leaderboard.table import leaderboard_frame, markdown_table, newest_per_identity, wide_table
from charbench.stats import single_threaded_blas
from charbench.tasks.contract import resolve_callable


@dataclass
class LeaderboardOutputs:
    markdown: str
    html_path: Path
    csv_path: Path
    markdown_path: Path
    delta_path: Path | None
    skipped: list[str]
    superseded: list[tuple[str, str]]
    pooled_path: Path | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def _check_output(out: Path) -> None:
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise CharbenchError(f"cannot write the leaderboard to {out}: {probe} is not a writable folder; pass --out <folder>")


def _comparisons(runs: list[RunRecord], baseline: str, out: Path, notes: list[str]) -> list[tuple[str, Path]]:
    """The figures a task draws for two of its runs (its contract's ``compare``), each variant against the baseline."""
    base_runs = {(r.task, tuple(sorted(r.row_args.items()))): r for r in runs if r.variant == baseline}
    linked = []
    for run in runs:
        base = base_runs.get((run.task, tuple(sorted(run.row_args.items()))))
        if run.variant == baseline or base is None or not run.contract.compare:
            continue
        args = ", ".join(f"{k}={v}" for k, v in run.row_args.items() if v != "")
        try:
            summary = resolve_callable(run.contract.compare)(base.path, run.path, out / _slug(f"{run.variant}_{args}"))
        except CharbenchError as exc:
            notes.append(f"no {run.task} comparison for {run.variant} ({args}): {exc}")
            continue
        for key, value in summary.items():
            if key.endswith("_plot") and isinstance(value, (str, Path)):
                linked.append((f"{run.task} {key.removesuffix('_plot')}: {run.variant} vs {baseline} ({args})", Path(value)))
    return linked


def build_leaderboard(log_dir: str | Path, out_dir: str | Path, baseline: str | None = None,
                      n_boot: int = 200) -> LeaderboardOutputs:
    """Tables, plots and the page for the runs under ``log_dir``.

    Args:
        baseline: the variant (model name without ``charbench/``) every other variant is compared with;
            default: the only base-stage variant, if there is exactly one.
        n_boot: resamples for deltas paired by bootstrap.
    """
    out = Path(out_dir)
    _check_output(out)
    paths = log_paths(log_dir, exclude=out)  # validates the log location before anything is written
    if not paths:
        raise CharbenchError(f"no Inspect logs (*.eval, *.json) under {log_dir}; run `charbench run` or "
                             "`inspect eval charbench/<task>` with --log-dir there first")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(log_dir, exclude=out)
    skipped = [str(w.message) for w in caught if str(w.message).startswith("skipping")]
    for message in skipped:
        warnings.warn(message, stacklevel=2)
    if not runs:
        raise CharbenchError(f"none of the {len(paths)} logs under {log_dir} is a successful charbench run "
                             f"({len(skipped)} skipped: {skipped[0] if skipped else 'see warnings'})")
    out.mkdir(parents=True, exist_ok=True)
    reader = SampleReader()
    kept, superseded = newest_per_identity(runs)
    per_persona = persona_rows(kept)
    board = leaderboard_frame(pool_over_personas(kept, reader))  # one row stands for a result's personas
    board.superseded = superseded + board.superseded
    frame = board.frame
    md = markdown_table(wide_table(frame).rename(index=lambda v: v.replace("|", "\\|")))
    plots = headline_plot(frame, out / "plots") if not frame.empty else []
    plots += leaderboard_calibration_plot(frame, out / "plots") if not frame.empty else []  # model organisms

    linked: list[tuple[str, Path]] = []
    for run in board.runs:
        args = ", ".join(f"{k}={v}" for k, v in run.row_args.items() if v != "")
        path = trait_elo_plot(run.metrics, f"{run.variant} ({args})", out / "plots" / "elo" / f"{_slug(run.variant + '_' + args)}.png")
        if path is not None:
            linked.append((f"per-trait Elo: {run.variant} ({args})", path))
    for extra in sorted({p.resolve() for p in Path(log_dir).glob("**/plots/*.png")} if Path(log_dir).is_dir() else []):
        if out.resolve() not in extra.parents:  # the board's own plots are listed once, above
            linked.append((f"from the logs: {extra.relative_to(Path(log_dir).resolve())}", extra))

    chosen = pick_baseline(board.runs, baseline)
    if chosen:
        linked += _comparisons(board.runs, chosen, out / "plots" / "compare", skipped)
    with single_threaded_blas():  # entered once: the bootstraps refit Bradley-Terry thousands of times
        deltas = delta_frame(board.runs, chosen, reader, n_boot=n_boot) if chosen else None
    csv_path, md_path, html_path = out / "leaderboard.csv", out / "leaderboard.md", out / "index.html"
    frame.drop(columns=["identity"]).to_csv(csv_path, index=False)
    pooled_path = None
    if per_persona:  # the per-persona figures behind the rows averaged over personas
        pooled_path = out / "pooled.csv"
        pd.DataFrame(per_persona, columns=POOLED_COLUMNS).to_csv(pooled_path, index=False)
    delta_path = None
    if deltas is not None:
        delta_path = out / "deltas.csv"
        deltas.to_csv(delta_path, index=False)
    md_path.write_text(md)
    page = Page(frame=frame, out_dir=out, plots=plots, linked_plots=linked, deltas=deltas if deltas is not None else pd.DataFrame(),
                baseline=chosen, skipped=skipped, superseded=board.superseded)
    html_path.write_text(leaderboard_html(page))
    return LeaderboardOutputs(md, html_path, csv_path, md_path, delta_path, skipped, board.superseded, pooled_path)
