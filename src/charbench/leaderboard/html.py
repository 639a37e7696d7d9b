"""A static leaderboard page: the table plus the plots, images embedded so the file stands alone."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(path.stem.split("_", 1)[-1].replace("_", " "))}</figcaption></figure>'


def leaderboard_html(wide: pd.DataFrame, plots: list[Path], skipped: list[str], title: str = "charbench leaderboard") -> str:
    table = wide.to_html(classes="board", border=0, escape=True) if not wide.empty else "<p>No charbench runs found.</p>"
    warn = "".join(f"<li>{html.escape(s)}</li>" for s in skipped)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table.board {{ border-collapse: collapse; font-size: 0.9rem; }}
table.board th, table.board td {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.7rem; text-align: left; }}
table.board thead th {{ background: #f3f3f3; }}
figure {{ display: inline-block; margin: 0.5rem; }}
img {{ max-width: 560px; border: 1px solid #eee; }}
.note {{ color: #666; font-size: 0.85rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Cells: value [95% interval] n=… inv=… (invalid judgements). Built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.
Results marked [fixture] come from charbench's offline fixture items and are not benchmark results.</p>
{table}
<h2>Plots</h2>
{''.join(_img(p) for p in plots)}
{f'<h2>Skipped logs</h2><ul>{warn}</ul>' if warn else ''}
</body></html>
"""
