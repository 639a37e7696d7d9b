"""Build every leaderboard output from a log folder."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from charbench.leaderboard.html import leaderboard_html
from charbench.leaderboard.logs import read_runs
from charbench.leaderboard.plots import headline_plot
from charbench.leaderboard.table import leaderboard_frame, markdown_table, wide_table


@dataclass
class LeaderboardOutputs:
    markdown: str
    html_path: Path
    csv_path: Path
    markdown_path: Path
    skipped: list[str]


def build_leaderboard(log_dir: str | Path, out_dir: str | Path) -> LeaderboardOutputs:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = read_runs(log_dir)
    skipped = [str(w.message) for w in caught if str(w.message).startswith("skipping")]
    for message in skipped:
        warnings.warn(message, stacklevel=2)
    frame = leaderboard_frame(runs)
    wide = wide_table(frame)
    md = markdown_table(wide)
    plots = headline_plot(frame, out / "plots") if not frame.empty else []
    plots += sorted(Path(log_dir).glob("**/plots/*.png")) if Path(log_dir).is_dir() else []
    csv_path, md_path, html_path = out / "leaderboard.csv", out / "leaderboard.md", out / "index.html"
    frame.to_csv(csv_path, index=False)
    md_path.write_text(md)
    html_path.write_text(leaderboard_html(wide, plots, skipped))
    return LeaderboardOutputs(md, html_path, csv_path, md_path, skipped)
