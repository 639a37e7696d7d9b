"""Plots written to files (matplotlib, no display)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


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
        values = group["value"].to_numpy(float)
        low = np.nan_to_num(values - group["low"].to_numpy(float))
        high = np.nan_to_num(group["high"].to_numpy(float) - values)
        ax.errorbar(values, y, xerr=[low, high], fmt="o", capsize=3)
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
    ax.errorbar(sel["delta"], y, xerr=[sel["delta"] - sel["low"], sel["high"] - sel["delta"]], fmt="none", ecolor="k", capsize=2)
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
    ax.errorbar(sel["elo"], y, xerr=[np.nan_to_num(sel["elo"] - sel["low"]), np.nan_to_num(sel["high"] - sel["elo"])],
                fmt="o", capsize=2)
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
