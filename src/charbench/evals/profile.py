"""Where a run's time went, per step, read back from its Inspect logs (the runner keeps no timers of its own).

For each log (one suite step):

* ``wall``: the eval's start to its end (``EvalStats.started_at`` / ``completed_at``);
* ``setup``: the eval's start to its first sample's first event (models loaded inside the task, steering
  vectors, the dataset);
* ``model``: time in which some sample was in a solver or a call to a model that is not a judge role: the
  model under test generating (and an ``opponent``), or scoring log-likelihoods inside a solver;
* ``judge``: time, outside ``model``, in which some sample was in a scorer or a call to a judge role
  (``judge``, ``judge2``, ...): generating judges, likelihood judges and the log-likelihood scorers of the
  capability tasks all run there;
* ``other``: the rest of ``wall``: Inspect's scheduling, log writing, metrics.

Samples run concurrently, so each figure is the length of a union of intervals (wall-clock seconds), not a
sum over samples; model + judge + setup + other = wall. ``gap`` is the time between the previous step's end
and this step's start when the logs are read as one run: work the runner does between evals (building role
models, training the persona classifier).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charbench.errors import CharbenchError

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog

Interval = tuple[float, float]


def union_length(intervals: Iterable[Interval]) -> float:
    """Total length covered by the intervals (overlaps counted once)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


@dataclass(frozen=True)
class StepProfile:
    step: str
    task: str
    model: str
    samples: int
    started: float  # POSIX seconds
    completed: float
    setup: float
    model_time: float
    judge_time: float
    model_calls: int
    judge_calls: int

    @property
    def wall(self) -> float:
        return self.completed - self.started

    @property
    def other(self) -> float:
        return max(0.0, self.wall - self.setup - self.model_time - self.judge_time)


def _is_judge(role: str | None) -> bool:
    return bool(role) and str(role).startswith("judge")


def _seconds(value: str | datetime | None) -> float | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.timestamp()


def sample_intervals(events: Sequence[Any]) -> tuple[list[Interval], list[Interval], int, int, float | None]:
    """(model intervals, judge intervals, model calls, judge calls, first event time) of one sample's events."""
    model: list[Interval] = []
    judge: list[Interval] = []
    model_calls = judge_calls = 0
    open_spans: dict[str, tuple[str, float]] = {}
    first: float | None = None
    for event in events:
        start = event.timestamp.timestamp()
        first = start if first is None else min(first, start)
        if event.event == "span_begin" and event.type in ("solvers", "scorers"):
            open_spans[event.id] = (event.type, start)
        elif event.event == "span_end" and event.id in open_spans:
            kind, began = open_spans.pop(event.id)
            (model if kind == "solvers" else judge).append((began, start))
        elif event.event == "model":
            end = event.completed.timestamp() if event.completed else start + (event.working_time or 0.0)
            if _is_judge(event.role):
                judge.append((start, end))
                judge_calls += 1
            else:
                model.append((start, end))
                model_calls += 1
    return model, judge, model_calls, judge_calls, first


def profile_log(log: EvalLog) -> StepProfile | None:
    """The time breakdown of one eval log read with its samples; None when it holds no time at all (an eval
    that has not started a sample yet, whose header has no start time)."""
    model: list[Interval] = []
    judge: list[Interval] = []
    model_calls = judge_calls = 0
    firsts: list[float] = []
    last_event = None
    for sample in log.samples or []:
        m, j, mc, jc, first = sample_intervals(sample.events)
        model += m
        judge += j
        model_calls += mc
        judge_calls += jc
        if first is not None:
            firsts.append(first)
        ends = [end for _start, end in m + j]
        if ends:
            last_event = max(ends) if last_event is None else max(last_event, *ends)
    started = _seconds(log.stats.started_at) or (min(firsts) if firsts else None)
    if started is None:
        return None
    completed = _seconds(log.stats.completed_at) or last_event or started
    # The header's times are rounded to the second; the events are not, so the step spans both.
    started = min(started, *firsts) if firsts else started
    completed = max(completed, last_event) if last_event is not None else completed
    model_time = union_length(model)
    judge_time = union_length(model + judge) - model_time
    step = str((log.eval.metadata or {}).get("charbench_step") or log.eval.task)
    return StepProfile(
        # a log that is still running or ended in error says so, since its wall time is not a whole step's
        step=step if log.status == "success" else f"{step} ({log.status})",
        task=log.eval.task.removeprefix("charbench/"), model=log.eval.model, samples=len(log.samples or []),
        started=started, completed=completed, setup=(min(firsts) - started) if firsts else 0.0,
        model_time=model_time, judge_time=judge_time, model_calls=model_calls, judge_calls=judge_calls,
    )


def log_paths(log_dir: str | Path) -> list[str]:
    """Every Inspect log under ``log_dir`` (recursively); a clear error when there is none."""
    from inspect_ai.log import list_eval_logs

    root = Path(log_dir).expanduser()
    if not root.is_dir():
        raise CharbenchError(f"log folder {log_dir} does not exist or is not a folder. Fix: pass the folder given to "
                             "charbench run --log-dir (or inspect eval --log-dir).")
    found = [info.name for info in list_eval_logs(str(root), recursive=True)]
    if not found:
        raise CharbenchError(f"log folder {log_dir} holds no Inspect logs. Fix: run a suite into it first "
                             "(charbench run --suite smoke --model charbench/smollm2 --log-dir ...).")
    return found


def profile_logs(paths: Sequence[str]) -> list[StepProfile]:
    """One profile per log that holds any time, in the order the steps started."""
    from inspect_ai.log import read_eval_log

    profiles = [profile_log(read_eval_log(path)) for path in paths]
    return sorted((p for p in profiles if p is not None), key=lambda p: p.started)


def format_profile(profiles: Sequence[StepProfile]) -> str:
    """A Markdown table, one row per step, then the run's totals (seconds)."""
    if not profiles:
        return "no steps to profile"
    header = ("| step | model | samples | wall s | setup | model | judge | other | gap before |\n"
              "|---|---|---|---|---|---|---|---|---|")
    rows, previous_end = [header], None
    for p in profiles:
        gap = "" if previous_end is None else f"{max(0.0, p.started - previous_end):.1f}"
        rows.append(f"| {p.step} | {p.model} | {p.samples} | {p.wall:.1f} | {p.setup:.1f} | {p.model_time:.1f} | "
                    f"{p.judge_time:.1f} | {p.other:.1f} | {gap} |")
        previous_end = p.completed
    span = profiles[-1].completed - profiles[0].started
    gaps = span - sum(p.wall for p in profiles)
    total = {name: sum(getattr(p, name) for p in profiles) for name in ("wall", "setup", "model_time", "judge_time", "other")}
    rows.append(f"| **all {len(profiles)} steps** | | {sum(p.samples for p in profiles)} | {total['wall']:.1f} | "
                f"{total['setup']:.1f} | {total['model_time']:.1f} | {total['judge_time']:.1f} | {total['other']:.1f} | "
                f"{max(0.0, gaps):.1f} |")
    rows.append(f"\nFirst step start to last step end: {span:.1f} s ({span / 60:.1f} min); model = solvers and calls "
                "to the model under test, judge = scorers and judge-role calls (wall-clock unions over concurrent "
                "samples).")
    return "\n".join(rows)
