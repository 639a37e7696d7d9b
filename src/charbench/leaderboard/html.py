"""The static leaderboard page.

A row per variant (persona and stage shown), headline columns grouped by area with the better direction
marked, every cell linked to its log, a delta-vs-baseline table, the headline plots (embedded once, so the
page stands alone) and links to the per-trait Elo plots. Everything that comes from a log (model names,
personas, arguments, paths) is escaped.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from charbench.leaderboard.table import ARROWS, column_order, format_cell


@dataclass
class Page:
    """What the page shows; paths are made relative to the page's folder for links."""

    frame: pd.DataFrame
    out_dir: Path
    plots: list[Path] = field(default_factory=list)  # embedded
    linked_plots: list[tuple[str, Path]] = field(default_factory=list)  # (caption, path)
    deltas: pd.DataFrame | None = None
    baseline: str | None = None
    skipped: list[str] = field(default_factory=list)
    superseded: list[tuple[str, str]] = field(default_factory=list)
    title: str = "charbench leaderboard"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _href(path: str | Path, out_dir: Path) -> str:
    try:
        rel = os.path.relpath(Path(path).resolve(), out_dir.resolve())
    except ValueError:  # another drive on Windows
        rel = str(Path(path).resolve())
    return esc(Path(rel).as_posix())


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    caption = path.stem.split("_", 1)[-1].replace("_", " ")
    return f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>'


def board_table(frame: pd.DataFrame, out_dir: Path) -> str:
    if frame.empty:
        return "<p>No charbench runs found.</p>"
    order = column_order(frame)
    areas: list[tuple[str, int]] = []
    for area, _ in order:
        if areas and areas[-1][0] == area:
            areas[-1] = (area, areas[-1][1] + 1)
        else:
            areas.append((area, 1))
    top = "".join(f'<th colspan="{span}" class="area">{esc(area)}</th>' for area, span in areas)
    better = dict(zip(frame["column"], frame["better"]))
    heads = "".join(f'<th title="{esc(better[c])} is better">{esc(c)} <span class="dir">{ARROWS[better[c]]}</span></th>'
                    for _, c in order)
    rows = []
    for variant, group in frame.groupby("variant", sort=True):
        first = group.iloc[0]
        cells = []
        for _, column in order:
            hit = group[group["column"] == column]
            if hit.empty:
                cells.append('<td class="empty">–</td>')
                continue
            r = hit.iloc[0]
            text = format_cell(r["value"], r["low"], r["high"], r["n"], r["invalid"], r["invalid_rate"])
            tip = f"{r['metric']} ({r['args']})" if r["args"] else r["metric"]
            cells.append(f'<td><a href="{_href(r["log"], out_dir)}" title="{esc(tip)}">{esc(text)}</a></td>')
        rows.append(f'<tr><th class="variant">{esc(variant)}</th><td>{esc(first["persona"] or "–")}</td>'
                    f'<td>{esc(first["stage"])}</td>{"".join(cells)}</tr>')
    return (f'<table class="board"><thead><tr><th rowspan="2">variant</th><th rowspan="2">persona</th>'
            f'<th rowspan="2">stage</th>{top}</tr><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _num(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3g}"


def delta_table(deltas: pd.DataFrame, out_dir: Path) -> str:
    if deltas.empty:
        return "<p>No variant has a run matching the baseline's.</p>"
    rows = []
    for r in deltas.itertuples(index=False):
        interval = f"[{_num(r.low)}, {_num(r.high)}]" if not math.isnan(r.low) else "–"
        n = f"{int(r.n)} {r.unit}" if not math.isnan(r.n) else "–"
        cls = {"significantly better": "better", "significantly worse": "worse"}.get(r.verdict, "")
        rows.append(f'<tr class="{cls}"><td>{esc(r.variant)}</td><td>{esc(r.area)}</td><td>{esc(r.label)} '
                    f'{ARROWS[r.better]}</td><td>{esc(r.args)}</td><td><a href="{_href(r.log, out_dir)}">{_num(r.delta)}</a>'
                    f'</td><td>{interval}</td><td>{esc(n)}</td><td>{esc(r.verdict)}</td></tr>')
    return ('<table class="board delta"><thead><tr><th>variant</th><th>area</th><th>metric</th><th>arguments</th>'
            '<th>delta</th><th>95% interval</th><th>n</th><th>verdict</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def leaderboard_html(page: Page) -> str:
    out = page.out_dir
    warn = "".join(f"<li>{esc(s)}</li>" for s in page.skipped)
    repeats = "".join(f'<li><a href="{_href(old, out)}">{esc(old)}</a> (newer: <a href="{_href(new, out)}">{esc(new)}</a>)</li>'
                      for old, new in page.superseded)
    if page.baseline is None:
        delta = "<p>No single base variant to compare against; name one with <code>--baseline</code>.</p>"
    else:
        delta = (f"<p>Each variant minus <b>{esc(page.baseline)}</b> on runs with the same task arguments, paired as "
                 f"each task declares (per sample, or a bootstrap over its independent unit).</p>"
                 + delta_table(page.deltas if page.deltas is not None else pd.DataFrame(), out))
    links = "".join(f'<li><a href="{_href(p, out)}">{esc(caption)}</a></li>' for caption, p in page.linked_plots)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(page.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table.board {{ border-collapse: collapse; font-size: 0.85rem; margin-bottom: 1rem; }}
table.board th, table.board td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }}
table.board thead th {{ background: #f3f3f3; }}
table.board th.area {{ text-align: center; border-left: 2px solid #fff; background: #e4ebf5; }}
table.board a {{ color: inherit; text-decoration: none; border-bottom: 1px dotted #999; }}
tr.better td {{ background: #eaf6ea; }} tr.worse td {{ background: #fbeaea; }}
.dir {{ color: #2a6; font-weight: bold; }}
figure {{ display: inline-block; margin: 0.5rem; }}
img {{ max-width: 560px; border: 1px solid #eee; }}
.note {{ color: #666; font-size: 0.85rem; }}
</style></head><body>
<h1>{esc(page.title)}</h1>
<p class="note">Cells: value [95% interval] n=… inv=… (invalid judgements plus errored samples); each links to its log.
↑ higher is better, ↓ lower is better. Built {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.
Results marked [fixture] come from charbench's offline fixture items and are not benchmark results.</p>
{board_table(page.frame, out)}
<h2>Against the baseline</h2>
{delta}
<h2>Plots</h2>
{''.join(_img(p) for p in page.plots) or '<p>No headline has an estimate to plot.</p>'}
{f'<h3>Per-trait Elo and comparisons</h3><ul>{links}</ul>' if links else ''}
{f'<h2>Repeated runs (older, not shown)</h2><ul>{repeats}</ul>' if repeats else ''}
{f'<h2>Skipped logs</h2><ul>{warn}</ul>' if warn else ''}
</body></html>
"""
