"""Which metric of each task is its headline, and how its interval and n are read."""

from __future__ import annotations

from dataclasses import dataclass

from charbench.leaderboard.logs import RunRecord


@dataclass(frozen=True)
class Headline:
    column: str
    value: str
    low: str | None = None
    high: str | None = None
    se: str | None = None
    n: str | None = None
    invalid: str | None = None


HEADLINES: dict[str, list[Headline]] = {
    "break_character": [
        Headline("break-character F1 (adv. mean)", "f1_adversarial_mean", "f1_adversarial_low", "f1_adversarial_high", n="n_adversarial"),
        Headline("F1 default split", "f1/default", "f1_low/default", "f1_high/default", n="n/default"),
    ],
    "prefill_attack": [Headline("prefill-attack F1", "f1/default", "f1_low/default", "f1_high/default", n="n/default")],
    "revealed_preferences": [Headline("trait Elo spread (SD)", "elo_sd", "elo_sd_low", "elo_sd_high", n="n_valid", invalid="invalid")],
    "coherence": [Headline("coherence win rate", "judge/win_rate", "judge/win_rate_low", "judge/win_rate_high", n="judge/n_consistent", invalid="judge/no_verdict_rate")],
    "value_conflict": [Headline("value priority adherence", "priority_adherence", "priority_adherence_low", "priority_adherence_high", n="n_samples", invalid="invalid")],
    "reflective_stability": [Headline("retention margin", "retention_margin", "retention_margin_low", "retention_margin_high", n="n", invalid="invalid")],
    **{t: [Headline(f"{t} acc", "accuracy", se="stderr", n="n")] for t in ("truthfulqa_mc", "winogrande", "hellaswag", "arc_challenge", "mmlu")},
}


def headline_values(run: RunRecord) -> list[dict]:
    """One row per headline of the run: column, value, low, high, n, invalid (NaN where absent)."""
    nan = float("nan")
    rows = []
    for h in HEADLINES.get(run.task, []):
        m = run.metrics
        value = m.get(h.value, nan)
        low, high = m.get(h.low, nan) if h.low else nan, m.get(h.high, nan) if h.high else nan
        if h.se and h.se in m:
            low, high = value - 1.96 * m[h.se], value + 1.96 * m[h.se]
        rows.append({
            "variant": run.variant, "task": run.task, "column": h.column + (" [fixture]" if run.fixture else ""),
            "metric": f"{run.task}.{h.value}", "value": value, "low": low, "high": high,
            "n": m.get(h.n, run.n_samples) if h.n else run.n_samples, "invalid": m.get(h.invalid, nan) if h.invalid else nan,
            "log": run.path,
        })
    return rows
