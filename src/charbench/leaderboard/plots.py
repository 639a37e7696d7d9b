"""Plots written to files (matplotlib, no display)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def draw_intervals(ax: Any, values: np.ndarray, y: np.ndarray, low: np.ndarray, high: np.ndarray,
                   marker: str | None = "o", color: str | None = None) -> None:
    """Each value as a point and its interval as a line from ``low`` to ``high``, drawn as given: a percentile
    bootstrap interval can leave out its own point estimate (a biased statistic such as a spread), which
    matplotlib's error bars cannot show (they take distances from the point and refuse negative ones)."""
    known = np.isfinite(low) & np.isfinite(high)
    ax.hlines(y[known], low[known], high[known], colors=color or "C0", lw=1.2)
    for edge in (low, high):
        ax.plot(edge[known], y[known], "|", color=color or "C0", ms=6)
    if marker:
        ax.plot(values, y, marker, color=color or "C0", ls="none")


def headline_plot(frame: pd.DataFrame, out: Path) -> list[Path]:
    """One panel per headline metric: each variant's value with its interval."""
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for i, (column, group) in enumerate(frame.groupby("column")):
        group = group[group["value"].notna()]
        if group.empty:
            continue  # nothing to draw; the table says why (n and invalid share)
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(group)))
        y = np.arange(len(group))
        draw_intervals(ax, group["value"].to_numpy(float), y, group["low"].to_numpy(float),
                       group["high"].to_numpy(float))
        ax.set_yticks(y, group["variant"])
        ax.set_title(column)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        slug = "".join(ch if ch.isalnum() else "_" for ch in column).strip("_")
        path = out / f"{i:02d}_{slug}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def elo_delta_plot(deltas: pd.DataFrame, k: int, title: str, out: Path) -> Path:
    """The paper's figure 3: the k traits with the largest rise and fall, with intervals."""
    top = deltas.nlargest(k, "delta")
    bottom = deltas.nsmallest(k, "delta")
    sel = pd.concat([top, bottom.iloc[::-1]]).drop_duplicates("trait")
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.35 * len(sel)))
    y = np.arange(len(sel))
    colors = ["tab:green" if d > 0 else "tab:red" for d in sel["delta"]]
    ax.barh(y, sel["delta"], color=colors, alpha=0.7)
    draw_intervals(ax, sel["delta"].to_numpy(float), y, sel["low"].to_numpy(float), sel["high"].to_numpy(float),
                   marker=None, color="k")
    ax.set_yticks(y, sel["trait"])
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("Elo change (95% bootstrap interval)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def elo_distribution_plot(ratings: dict[str, np.ndarray], out: Path) -> Path:
    """The paper's figure 4: distribution of trait Elo scores per run."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in ratings.items():
        ax.hist(values, bins=20, alpha=0.5, label=f"{label} (sd {np.std(values):.0f})")
    ax.set_xlabel("trait Elo")
    ax.set_ylabel("traits")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def trait_elo_plot(metrics: dict[str, float], title: str, out: Path, k: int = 12) -> Path | None:
    """One run's per-trait Elo with bootstrap intervals: the k highest and k lowest traits (as in figure 3)."""
    traits = sorted(key.split("/", 1)[1] for key in metrics if key.startswith("elo/"))
    if not traits:
        return None
    frame = pd.DataFrame({
        "trait": traits,
        "elo": [metrics[f"elo/{t}"] for t in traits],
        "low": [metrics.get(f"elo_low/{t}", np.nan) for t in traits],
        "high": [metrics.get(f"elo_high/{t}", np.nan) for t in traits],
    }).sort_values("elo", ascending=False)
    sel = pd.concat([frame.head(k), frame.tail(k)]).drop_duplicates("trait")
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.3 * len(sel)))
    y = np.arange(len(sel))
    draw_intervals(ax, sel["elo"].to_numpy(float), y, sel["low"].to_numpy(float), sel["high"].to_numpy(float))
    ax.set_yticks(y, sel["trait"])
    ax.invert_yaxis()
    ax.axvline(1000, color="k", lw=0.6)
    ax.set_xlabel("trait Elo (95% bootstrap interval)")
    ax.set_title(textwrap.fill(title, 70), fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
