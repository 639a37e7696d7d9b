"""Whether two runs of a suite gave the same replies, scores and metrics, step by step (issue 14).

    .venv/bin/python bench/compare_replies.py RUN_A RUN_B

A speed change that should not change what the model says (batching, caches, a faster sampler) is checked by
running the same suite before and after it and comparing the logs: each step's samples (by id and epoch) for the
same reply text and the same score values, the largest difference between the float entries of their scores'
metadata (a judge's log-likelihoods, say), and the step's metrics (two undefined ones, NaN, count as the same). Steps present in one run only are listed.
Prints a Markdown table; exits 1 if a reply, a score or a metric differs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, read_eval_log

from charbench.errors import CharbenchError
from charbench.leaderboard.logs import log_paths


def step_logs(run: Path) -> dict[str, Path]:
    """The newest ``.eval`` log of each step folder under ``run`` (``<model>/<step>/*.eval``), by step folder."""
    logs: dict[str, Path] = {}
    for log in log_paths(run):  # sorted: within a folder, timestamped names put the newest last
        if log.suffix == ".eval":
            logs[log.parent.relative_to(run).as_posix()] = log
    return logs


def metadata_gap(a: Any, b: Any) -> float:
    """Largest absolute difference between the float entries two scores' metadata share."""
    left, right = a.metadata or {}, b.metadata or {}
    gaps = [abs(v - right[k]) for k, v in left.items() if isinstance(v, float) and isinstance(right.get(k), float)]
    return max(gaps, default=0.0)


def same_value(a: Any, b: Any) -> bool:
    """Equal, counting two undefined metrics (NaN: no valid sample, say) as the same."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def metrics(log: EvalLog) -> dict[str, float]:
    """Every metric by scorer and name (the leaderboard's ``metrics_of`` keys by name alone)."""
    return {f"{score.name}/{name}": metric.value for score in (log.results.scores if log.results else [])
            for name, metric in score.metrics.items()}


def compare_step(a: EvalLog, b: EvalLog) -> tuple[int, int, int, int, float, list[str]]:
    """(samples in both, same reply, same scores, samples in one only, largest metadata gap, differing metrics)."""
    left = {(s.id, s.epoch): s for s in a.samples or []}
    right = {(s.id, s.epoch): s for s in b.samples or []}
    both = left.keys() & right.keys()
    same_reply = sum(left[k].output.completion == right[k].output.completion for k in both)
    same_scores, gap = 0, 0.0
    for k in both:
        sa, sb = left[k].scores or {}, right[k].scores or {}
        same_scores += {n: v.value for n, v in sa.items()} == {n: v.value for n, v in sb.items()}
        gap = max([gap, *(metadata_gap(v, sb[n]) for n, v in sa.items() if n in sb)])
    ma, mb = metrics(a), metrics(b)
    differing = sorted(k for k in ma.keys() | mb.keys() if not same_value(ma.get(k), mb.get(k)))
    return len(both), same_reply, same_scores, len(left.keys() ^ right.keys()), gap, differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args()
    for run in (args.run_a, args.run_b):
        if not run.is_dir():
            raise SystemExit(f"{run} is not a folder: give the --log-dir of a charbench run")
    try:
        logs_a, logs_b = step_logs(args.run_a), step_logs(args.run_b)
    except CharbenchError as exc:
        raise SystemExit(str(exc)) from None
    if not logs_a or not logs_b:
        empty = args.run_a if not logs_a else args.run_b
        raise SystemExit(f"no step logs (<model>/<step>/*.eval) under {empty}: give the --log-dir of a charbench run")
    print("| step | samples | same reply | same scores | in one run only | largest metadata gap | metrics differing |")
    print("|---|---|---|---|---|---|---|")
    differs = False
    for step in sorted(logs_a.keys() | logs_b.keys()):
        if step not in logs_a or step not in logs_b:
            print(f"| {step} | only in {args.run_a if step in logs_a else args.run_b} | | | | | |")
            differs = True
            continue
        n, reply, scores, alone, gap, changed = compare_step(read_eval_log(str(logs_a[step])),
                                                             read_eval_log(str(logs_b[step])))
        differs |= reply < n or scores < n or alone > 0 or bool(changed)
        print(f"| {step} | {n} | {reply} | {scores} | {alone} | {gap:.2g} | {', '.join(changed) or 'none'} |")
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
