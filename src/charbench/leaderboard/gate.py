"""The CI gate: rules on absolute values and on paired deltas with confidence.

Exit codes: 0 all rules pass, 1 a rule fails, 2 a rule cannot be evaluated (a missing metric never passes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from inspect_ai.log import read_eval_log

from charbench.errors import CharbenchError
from charbench.leaderboard.logs import RunRecord, read_runs
from charbench.stats import paired_delta

PASS, FAIL, ERROR = "pass", "fail", "cannot evaluate"
RULE_KEYS = {"metric", "min", "max", "max_drop", "min_delta", "paired", "level", "name"}


@dataclass
class RuleResult:
    name: str
    verdict: str
    detail: str


def load_rules(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.exists():
        raise CharbenchError(f"gate rules file {p} does not exist; see docs/ci.md for the format")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise CharbenchError(f"{p}: not valid YAML ({exc}). Fix the syntax; see docs/ci.md for an example") from exc
    rules = raw.get("rules") if isinstance(raw, dict) else None
    if not isinstance(rules, list) or not rules:
        raise CharbenchError(f"{p}: expected a top-level 'rules:' list with at least one rule")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or "metric" not in rule or "." not in str(rule["metric"]):
            raise CharbenchError(f"{p}: rule {i} needs 'metric: <task>.<metric key>', e.g. break_character.f1_adversarial_mean")
        unknown = set(rule) - RULE_KEYS
        if unknown:
            raise CharbenchError(f"{p}: rule {i} has unknown key(s) {sorted(unknown)}; allowed: {sorted(RULE_KEYS)}")
    return rules


def _find(runs: list[RunRecord], task: str) -> RunRecord | None:
    matches = [r for r in runs if r.task == task]
    return matches[-1] if matches else None


def _per_sample(path: str) -> dict[str, float]:
    log = read_eval_log(path)
    out = {}
    for s in log.samples or []:
        for score in (s.scores or {}).values():
            v = score.value
            if isinstance(v, str):
                v = 1.0 if v == "C" else 0.0 if v == "I" else float("nan")
            if isinstance(v, (int, float)) and not math.isnan(float(v)):
                out[f"{s.id}:{s.epoch}"] = float(v)
            break
    return out


def evaluate_rule(rule: dict, candidate: list[RunRecord], baseline: list[RunRecord]) -> RuleResult:
    task, key = str(rule["metric"]).split(".", 1)
    name = rule.get("name") or str(rule["metric"])
    cand = _find(candidate, task)
    if cand is None or key not in cand.metrics or math.isnan(cand.metrics[key]):
        return RuleResult(name, ERROR, f"candidate has no {task} run with metric '{key}'")
    value = cand.metrics[key]
    if rule.get("paired") or "max_drop" in rule or "min_delta" in rule:
        base = _find(baseline, task)
        if base is None:
            return RuleResult(name, ERROR, f"baseline has no {task} run")
        a, b = _per_sample(cand.path), _per_sample(base.path)
        shared = sorted(set(a) & set(b))
        if not shared:
            return RuleResult(name, ERROR, f"candidate and baseline {task} runs share no sample ids")
        est = paired_delta([a[k] for k in shared], [b[k] for k in shared], level=float(rule.get("level", 0.95)))
        if math.isnan(est.low):
            return RuleResult(name, ERROR, f"paired delta over n={est.n} has no interval")
        detail = f"delta {est.value:+.4f} [{est.low:+.4f}, {est.high:+.4f}] n={est.n}"
        if "max_drop" in rule:
            ok = est.low > -float(rule["max_drop"])
            return RuleResult(name, PASS if ok else FAIL, f"{detail}; needs lower bound > -{rule['max_drop']}")
        ok = est.low > float(rule.get("min_delta", 0.0))
        return RuleResult(name, PASS if ok else FAIL, f"{detail}; needs lower bound > {rule.get('min_delta', 0.0)}")
    checks = []
    if "min" in rule:
        checks.append(value >= float(rule["min"]))
    if "max" in rule:
        checks.append(value <= float(rule["max"]))
    if not checks:
        return RuleResult(name, ERROR, "rule has neither min, max, max_drop nor min_delta")
    bounds = " and ".join(f"{k} {rule[k]}" for k in ("min", "max") if k in rule)
    return RuleResult(name, PASS if all(checks) else FAIL, f"value {value:.4f}; needs {bounds}")


def run_gate(candidate_dir: str | Path, baseline_dir: str | Path | None, rules_path: str | Path) -> tuple[int, list[RuleResult]]:
    rules = load_rules(rules_path)
    candidate = read_runs(candidate_dir)
    baseline = read_runs(baseline_dir) if baseline_dir else []
    results = [evaluate_rule(rule, candidate, baseline) for rule in rules]
    if any(r.verdict == ERROR for r in results):
        return 2, results
    return (1 if any(r.verdict == FAIL for r in results) else 0), results


def format_results(results: list[RuleResult]) -> str:
    width = max(len(r.name) for r in results) if results else 4
    lines = [f"{'rule'.ljust(width)}  verdict          detail", "-" * (width + 40)]
    lines += [f"{r.name.ljust(width)}  {r.verdict.ljust(15)}  {r.detail}" for r in results]
    return "\n".join(lines)
