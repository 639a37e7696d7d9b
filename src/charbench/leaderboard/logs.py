"""Reading charbench logs: corrupt, partial or foreign logs are skipped with a warning naming them."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from inspect_ai.log import EvalLog, read_eval_log


@dataclass
class RunRecord:
    path: str
    task: str  # short task name, e.g. "break_character"
    model: str
    checkpoint: str
    method: str
    persona: str | None
    metrics: dict[str, float]
    task_args: dict = field(default_factory=dict)
    fixture: bool = False
    n_samples: float = float("nan")  # scored samples, the n of metrics that do not log their own

    @property
    def variant(self) -> str:
        return f"{self.checkpoint}" if self.method == "base" else f"{self.checkpoint}+{self.method}"


def _short_task(name: str) -> str:
    return name.split("/")[-1]


def _method(log: EvalLog) -> tuple[str, str | None]:
    task_args = log.eval.task_args or {}
    model_args = log.eval.model_args or {}
    persona = model_args.get("persona") or task_args.get("constitution")
    if "method" in task_args:
        return str(task_args["method"]), persona
    if "method" in model_args:
        return str(model_args["method"]), persona
    if model_args.get("persona"):
        return "prompted", persona
    if task_args.get("constitution") and _short_task(log.eval.task) == "revealed_preferences":
        return "prompted", persona
    return "base", persona


def metrics_of(log: EvalLog) -> dict[str, float]:
    out: dict[str, float] = {}
    for score in (log.results.scores if log.results else []):
        for name, m in score.metrics.items():
            out[name] = float(m.value)
    return out


def record_from_log(log: EvalLog, path: str) -> RunRecord:
    model = log.eval.model.split("/", 1)[-1] if log.eval.model.startswith("charbench/") else log.eval.model
    method, persona = _method(log)
    return RunRecord(
        path=path, task=_short_task(log.eval.task), model=log.eval.model, checkpoint=model.split("+")[0],
        method=method, persona=persona, metrics=metrics_of(log), task_args=dict(log.eval.task_args or {}),
        n_samples=float(log.results.completed_samples) if log.results else float("nan"),
        fixture=bool((log.eval.metadata or {}).get("fixture") or (log.eval.task_args or {}).get("source", "fixtures") == "fixtures"
                     and _short_task(log.eval.task) in CAPABILITY_TASKS),
    )


CAPABILITY_TASKS = ("truthfulqa_mc", "winogrande", "hellaswag", "arc_challenge", "mmlu")


def _looks_like_json_log(path: Path) -> bool:
    """A JSON file is a candidate log only if it opens like one (classifier folders hold other JSON)."""
    try:
        head = path.open("rb").read(4096)
    except OSError:
        return True  # let the reader report it
    return b'"eval"' in head and b'"status"' in head


def log_paths(location: str | Path) -> list[Path]:
    p = Path(location)
    if p.is_file():
        return [p]
    if not p.exists():
        raise FileNotFoundError(f"log location {p} does not exist; pass a folder of Inspect logs or a .eval file")
    return sorted([*p.rglob("*.eval"), *(j for j in p.rglob("*.json") if _looks_like_json_log(j))])


def read_runs(location: str | Path, include_partial: bool = False) -> list[RunRecord]:
    """Every successful charbench run under ``location``; anything else is skipped with a warning."""
    runs = []
    for path in log_paths(location):
        if path.suffix == ".json" and path.name in ("logs.json", "eval-set.json"):
            continue  # Inspect's own eval-set bookkeeping, not a log
        try:
            log = read_eval_log(str(path), header_only=True)
        except Exception as exc:  # a corrupt or truncated file must not stop the leaderboard
            warnings.warn(f"skipping {path}: not a readable Inspect log ({type(exc).__name__}: {exc})", stacklevel=2)
            continue
        if not log.eval.task.startswith("charbench/"):
            warnings.warn(f"skipping {path}: task {log.eval.task} is not a charbench task", stacklevel=2)
            continue
        if log.status != "success" and not include_partial:
            warnings.warn(f"skipping {path}: run status is {log.status}, not success", stacklevel=2)
            continue
        runs.append(record_from_log(log, str(path)))
    return runs
