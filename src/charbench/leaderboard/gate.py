"""The CI gate: rules on absolute values and on paired deltas with confidence.

Exit codes: 0 all rules pass, 1 a rule fails, 2 a rule cannot be evaluated (a missing metric, an ambiguous
run, too many errored samples: none of these ever passes). Rules may name only metrics the task's contract
declares, and a paired rule compares exactly that metric, paired as the contract says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from charbench.errors import CharbenchError
from charbench.leaderboard.logs import RunRecord, read_runs
from charbench.leaderboard.paired import SampleReader, paired_estimate
from charbench.yamlio import load_yaml

PASS, FAIL, ERROR = "pass", "fail", "cannot evaluate"


@dataclass
class GateRule:
    """One rule of a gate file (``rules:`` list in YAML; see docs/ci.md).

    Args:
        metric: ``<task>.<metric key>``, a key the task's contract declares (``break_character.f1/default``).
        name: label in the report (default: ``metric``).
        min, max: absolute bounds on the candidate's value.
        max_drop: paired: the interval of candidate - baseline must exclude a worsening larger than this
            (direction from the contract: for a lower-is-better metric a rise is a worsening).
        min_delta: paired: the interval must show an improvement larger than this (0: a significant improvement).
        max_change: paired: the whole interval must lie within +-max_change (for metrics with no better direction).
        paired: paired comparison with ``min_delta`` 0 when no other paired bound is given.
        level: interval level.
        where: task arguments that pick one run when a log folder holds several (``{condition: feel}``).
        max_errored: largest share of errored or unscored samples tolerated in either run (default 0).
        n_boot: resamples for metrics paired by bootstrap.
    """

    metric: str
    name: str = ""
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    min_delta: float | None = None
    max_change: float | None = None
    paired: bool = False
    level: float = 0.95
    where: dict[str, str] = field(default_factory=dict)
    max_errored: float = 0.0
    n_boot: int = 500

    @property
    def task(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.metric.split(".", 1)[1]

    @property
    def is_paired(self) -> bool:
        return self.paired or any(v is not None for v in (self.max_drop, self.min_delta, self.max_change))


RULE_KEYS = tuple(f.name for f in fields(GateRule))


@dataclass
class RuleResult:
    name: str
    verdict: str
    detail: str


def _rule(raw: object, i: int, p: Path) -> GateRule:
    if not isinstance(raw, dict) or "." not in str(raw.get("metric", "")):
        raise CharbenchError(f"{p}: rule {i} needs 'metric: <task>.<metric key>', e.g. break_character.f1_adversarial_mean")
    unknown = set(raw) - set(RULE_KEYS)
    if unknown:
        raise CharbenchError(f"{p}: rule {i} has unknown key(s) {sorted(unknown)}; allowed: {sorted(RULE_KEYS)}")
    where = raw.get("where") or {}
    if not isinstance(where, dict):
        raise CharbenchError(f"{p}: rule {i}: 'where' must map task arguments to values, e.g. {{condition: feel}}")
    try:
        rule = GateRule(**{**raw, "metric": str(raw["metric"]), "where": {str(k): str(v) for k, v in where.items()}})
        for name in ("min", "max", "max_drop", "min_delta", "max_change", "level", "max_errored"):
            if getattr(rule, name) is not None:
                setattr(rule, name, float(getattr(rule, name)))
        rule.n_boot = int(rule.n_boot)
    except (TypeError, ValueError) as exc:
        raise CharbenchError(f"{p}: rule {i} ({raw.get('metric')}): a bound is not a number ({exc})") from exc
    if not 0 <= rule.max_errored <= 1:
        raise CharbenchError(f"{p}: rule {i}: max_errored is a share between 0 and 1, got {rule.max_errored}")
    rule.name = str(rule.name or rule.metric)
    return rule


def load_rules(path: str | Path) -> list[GateRule]:
    p = Path(path)
    raw = load_yaml(p, "gate rules file", fix="See docs/ci.md for the format and an example.")
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise CharbenchError(f"{p}: expected a top-level 'rules:' list with at least one rule")
    return [_rule(r, i, p) for i, r in enumerate(rules)]


def _describe(run: RunRecord) -> str:
    args = ", ".join(f"{k}={v}" for k, v in run.row_args.items())
    return f"{run.variant} ({args or 'no distinguishing args'}) in {run.path}"


def find_run(runs: list[RunRecord], task: str, where: dict[str, str], side: str) -> RunRecord:
    """The one run of ``task`` matching ``where``; several or none is an error that lists what is there."""
    of_task = [r for r in runs if r.task == task]
    matches = [r for r in of_task if all(r.row_args.get(k, str(r.task_args.get(k))) == v for k, v in where.items())]
    if not matches:
        found = "; ".join(_describe(r) for r in of_task) or "none"
        raise CharbenchError(f"{side} has no {task} run{f' with {where}' if where else ''} (runs of {task}: {found})")
    if len(matches) > 1:
        listing = "; ".join(_describe(r) for r in matches)
        if len({r.identity for r in matches}) == 1:
            raise CharbenchError(f"{side} holds {len(matches)} repeats of one {task} run ({listing}); keep one log")
        varying = sorted({k for r in matches for k in r.row_args if len({m.row_args.get(k) for m in matches}) > 1})
        raise CharbenchError(f"{side} holds {len(matches)} {task} runs ({listing}); pick one with where: "
                             f"{{{', '.join(f'{k}: ...' for k in varying) or 'model'}}}")
    return matches[0]


def _errored_check(run: RunRecord, rule: GateRule, side: str) -> None:
    if run.total_samples and run.errored_share > rule.max_errored:
        raise CharbenchError(f"{side} {run.task} run has {run.errored} of {run.total_samples} samples errored or "
                             f"unscored ({run.errored_share:.1%} > max_errored {rule.max_errored:.1%}); see {run.path}")


def _paired_verdict(rule: GateRule, better: str, est) -> tuple[bool, str]:
    if rule.max_change is not None:
        c = rule.max_change
        return est.low > -c and est.high < c, f"needs interval within +-{c}"
    if better == "neither":
        raise CharbenchError(f"{rule.metric} has no better direction (contract: better=neither); bound it with "
                             "max_change (paired) or min/max")
    if rule.max_drop is not None:
        d = rule.max_drop
        if better == "higher":
            return est.low > -d, f"needs lower bound > -{d}"
        return est.high < d, f"needs upper bound < {d} (lower is better)"
    d = rule.min_delta or 0.0
    if better == "higher":
        return est.low > d, f"needs lower bound > {d}"
    return est.high < -d, f"needs upper bound < {-d} (lower is better)"


def evaluate_rule(rule: GateRule, candidate: list[RunRecord], baseline: list[RunRecord],
                  reader: SampleReader | None = None) -> RuleResult:
    try:
        return _evaluate(rule, candidate, baseline, reader or SampleReader())
    except CharbenchError as exc:
        return RuleResult(rule.name, ERROR, str(exc))


def _declared(run: RunRecord, rule: GateRule):
    """The declared metric the rule names; an interval bound of a declared metric may be bounded absolutely."""
    for m in run.contract.metrics:
        if rule.key in (m.low, m.high):
            if rule.is_paired:
                raise CharbenchError(f"{rule.key} is the interval bound of {m.key}; a paired rule compares the "
                                     f"metric itself: use metric: {rule.task}.{m.key}")
            return m
    return run.contract.metric(rule.key)  # an undeclared metric names the declared ones


def _evaluate(rule: GateRule, candidate: list[RunRecord], baseline: list[RunRecord], reader: SampleReader) -> RuleResult:
    cand = find_run(candidate, rule.task, rule.where, "candidate")
    metric = _declared(cand, rule)
    _errored_check(cand, rule, "candidate")
    value = cand.metrics.get(rule.key, math.nan)
    if math.isnan(value):
        raise CharbenchError(f"candidate {rule.task} run has no value for '{rule.key}' ({cand.path})")
    errored = f"; errored {cand.errored}/{cand.total_samples}" if cand.total_samples else ""
    if rule.is_paired:
        base = find_run(baseline, rule.task, {**cand.row_args, **rule.where}, "baseline")
        _errored_check(base, rule, "baseline")
        est = paired_estimate(metric, cand, base, reader, level=rule.level, n_boot=rule.n_boot)
        if math.isnan(est.low):
            raise CharbenchError(f"paired delta over n={est.n} {est.unit} has no interval (too few units)")
        ok, needs = _paired_verdict(rule, metric.better, est)
        return RuleResult(rule.name, PASS if ok else FAIL, f"{est}; {needs}{errored}")
    checks = []
    if rule.min is not None:
        checks.append(value >= rule.min)
    if rule.max is not None:
        checks.append(value <= rule.max)
    if not checks:
        raise CharbenchError("rule has neither min, max, max_drop, min_delta nor max_change")
    bounds = " and ".join(f"{k} {getattr(rule, k)}" for k in ("min", "max") if getattr(rule, k) is not None)
    return RuleResult(rule.name, PASS if all(checks) else FAIL, f"value {value:.4f}; needs {bounds}{errored}")


def run_gate(candidate_dir: str | Path, baseline_dir: str | Path | None, rules_path: str | Path) -> tuple[int, list[RuleResult]]:
    rules = load_rules(rules_path)
    candidate = read_runs(candidate_dir)
    if not candidate:
        raise CharbenchError(f"no successful charbench run under {candidate_dir}; point --candidate at the log folder")
    baseline = read_runs(baseline_dir) if baseline_dir else []
    if any(r.is_paired for r in rules) and not baseline:
        where = f"under {baseline_dir}" if baseline_dir else "(no --baseline given)"
        raise CharbenchError(f"paired rules need baseline runs and there are none {where}; pass --baseline <log folder>")
    reader = SampleReader()
    results = [evaluate_rule(rule, candidate, baseline, reader) for rule in rules]
    if any(r.verdict == ERROR for r in results):
        return 2, results
    return (1 if any(r.verdict == FAIL for r in results) else 0), results


def format_results(results: list[RuleResult]) -> str:
    width = max(len(r.name) for r in results) if results else 4
    lines = [f"{'rule'.ljust(width)}  verdict          detail", "-" * (width + 40)]
    lines += [f"{r.name.ljust(width)}  {r.verdict.ljust(15)}  {r.detail}" for r in results]
    return "\n".join(lines)
