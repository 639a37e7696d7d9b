"""Calibration plot: each detector's output against the planted strength of the model organisms.

A detector that works draws rising lines from the null organism (strength 0) to the strongest one; a flat line
at chance is a detector that cannot see the planted character. ``charbench organisms report`` writes the plot
to ``<out>/plots/organism_calibration.png``; ``charbench leaderboard`` links every ``plots/*.png`` under its log
folder, so a report written there appears on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHANCE = {"vs_base_accuracy": 0.5}
LABELS = {"marker_rate": "marker rate (ground truth)", "vs_base_accuracy": "organism vs base accuracy (TF-IDF)",
          "break_character_f1_default": "break-character F1, default split"}


def calibration_plot(points: Sequence[dict], out: Path) -> Path:
    """``points``: dicts with kind, strength, detector, value, low, high. One panel per detector, one line per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    detectors = sorted({p["detector"] for p in points})
    fig, axes = plt.subplots(1, max(len(detectors), 1), figsize=(4.2 * max(len(detectors), 1), 3.4), squeeze=False)
    for ax, detector in zip(axes[0], detectors, strict=False):
        for kind in sorted({p["kind"] for p in points}):
            rows = sorted((p for p in points if p["detector"] == detector and p["kind"] == kind),
                          key=lambda p: p["strength"])
            x = [p["strength"] for p in rows]
            y = [p["value"] for p in rows]
            err = [[max(p["value"] - p["low"], 0) for p in rows], [max(p["high"] - p["value"], 0) for p in rows]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=kind)
        if detector in CHANCE:
            ax.axhline(CHANCE[detector], color="k", lw=0.8, ls="--", label="chance")
        ax.set_xlabel("planted strength (share of training replies transformed)")
        ax.set_title(LABELS.get(detector, detector), fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def frame_points(frame) -> list[dict]:
    """Calibration points from a leaderboard frame: every headline cell of a row with a planted strength."""
    if "planted_strength" not in frame.columns:
        return []
    rows = frame[frame["planted_strength"].notna() & frame["value"].notna()]
    return [{"kind": "organisms", "strength": float(r.planted_strength), "detector": str(r.column),
             "value": float(r.value), "low": float(r.low), "high": float(r.high)}
            for r in rows.itertuples()]


def leaderboard_calibration_plot(frame, out_dir: Path) -> list[Path]:
    """The board's own calibration plot (headline metric against planted strength), when it holds organisms
    at two or more strengths; nothing otherwise."""
    points = frame_points(frame)
    if len({p["strength"] for p in points}) < 2:
        return []
    return [calibration_plot(points, out_dir / "calibration_planted_strength.png")]
