"""Reading charbench logs: corrupt, partial or foreign logs are skipped with a warning naming them.

What a run measured is read from the task contract recorded in its log (``charbench.tasks.contract``), or
from the task folder's contract for logs written before contracts were recorded. Nothing here knows a
task by name.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from inspect_ai.log import EvalLog, read_eval_log

from charbench.errors import CharbenchError
from charbench.evals.trained import OPPONENT_KEY, PERSONA_KEY, POOL_KEY, TRAINED_KEY, VARIANT_KEY
from charbench.tasks.contract import METADATA_KEY, TaskContract, contract_for
from charbench.trainers.card import CARD_NAME, card_row_name, card_summary, read_card


@dataclass
class RunRecord:
    """One successful run of a charbench task, as the leaderboard and the gate see it.

    Args:
        path: the log file.
        task: short task name (``break_character``).
        model: the model name as logged; it carries the variant (checkpoint, method, persona).
        model_args: the model's ``-M`` arguments (persona, method, steering coefficient...).
        metrics: every metric of the run's results.
        contract: what the task declares about its metrics and row identity.
        task_args: the task's arguments (defaults included).
        total_samples, completed_samples: from the log's results; the difference errored or went unscored.
        created: when the run started (ISO text), to order repeats.
        named_variant: the row name the runner recorded (a trained checkpoint's, from its card), else None.
        trained: the cards of the trained checkpoints the run used (``charbench.evals.trained``), else None.
        opponent: the variant a pairwise task compared the model with, when the runner recorded it.
        pool_persona: set on one persona's run of a result averaged over the suite's personas.
        pooled_over: the personas a pooled record averages (``charbench.leaderboard.pooled``).
    """

    path: str
    task: str
    model: str
    metrics: dict[str, float]
    contract: TaskContract
    model_args: dict = field(default_factory=dict)
    task_args: dict = field(default_factory=dict)
    total_samples: int = 0
    completed_samples: int = 0
    created: str = ""
    named_variant: str | None = None
    trained: dict | None = None
    opponent: str | None = None
    pool_persona: str | None = None
    pooled_over: tuple[str, ...] = ()

    @property
    def variant(self) -> str:
        """The row name: a trained checkpoint's name from its card, else the model name without the provider
        prefix (checkpoint plus variant, as the provider names it)."""
        if self.named_variant:
            return self.named_variant
        return self.model.split("/", 1)[-1] if self.model.startswith("charbench/") else self.model

    @property
    def trained_checkpoints(self) -> dict[str, dict]:
        """persona -> card summary of each trained checkpoint the run used (empty for base/prompted/steered)."""
        checkpoints = (self.trained or {}).get("checkpoints")
        return checkpoints if isinstance(checkpoints, dict) else {}

    @property
    def persona(self) -> str | None:
        if self.pooled_over:
            return None  # a mean over personas
        if self.pool_persona:
            return self.pool_persona
        checkpoints = self.trained_checkpoints
        if checkpoints:
            return next(iter(checkpoints)) if len(checkpoints) == 1 else None
        persona = self.model_args.get("persona")
        return str(persona).rsplit("/", 1)[-1].removesuffix(".yaml") if persona else None

    @property
    def stage(self) -> str:
        """How the variant got its character: base, prompted, steered (from the model), or the training stage
        of a trained checkpoint (``dpo``, ``full``, ``sr-only``, ``si-only``, from its card)."""
        stages = {str(c.get("stage")) for c in self.trained_checkpoints.values()}
        if stages:
            return ",".join(sorted(stages))
        return str(self.model_args.get("method") or ("prompted" if self.persona else "base"))

    @property
    def planted_strength(self) -> float:
        """A model organism's planted-trait strength from its card (NaN if none, or if its checkpoints differ)."""
        values = {c.get("planted_strength") for c in self.trained_checkpoints.values()}
        if len(values) != 1 or None in values:
            return math.nan
        return float(values.pop())  # type: ignore[arg-type]

    @property
    def errored(self) -> int:
        """Samples that errored or were never scored; they count as invalid beside every metric."""
        return max(0, self.total_samples - self.completed_samples)

    @property
    def errored_share(self) -> float:
        return self.errored / self.total_samples if self.total_samples else math.nan

    @property
    def fixture(self) -> bool:
        arg = self.contract.fixture_arg
        return arg is not None and self.task_args.get(arg[0], arg[1]) == arg[1]

    @property
    def row_args(self) -> dict[str, str]:
        """The task arguments that make this run a different result from another run of the same model, and the
        opponent a pairwise run was compared with."""
        args = {k: _arg_text(self.task_args.get(k)) for k in self.contract.row_args}
        if self.opponent:
            args["opponent"] = self.opponent
        return args

    @property
    def identity(self) -> tuple:
        """Runs with equal identity are repeats of one measurement; any other difference is a new row."""
        return (self.variant, self.task, tuple(sorted(self.row_args.items())))


def _arg_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _short_task(name: str) -> str:
    return name.split("/")[-1]


def log_contract(log: EvalLog) -> TaskContract:
    """The contract recorded in the log, else the task folder's (logs from before contracts were recorded)."""
    recorded = (log.eval.metadata or {}).get(METADATA_KEY)
    contract = contract_for(log.eval.task)
    if recorded:
        # The recorded contract says what this run measured; a comparison figure added to the task since
        # is drawing code, not a measurement, so the current one is used.
        own = TaskContract.from_metadata(recorded)
        if own.compare is None and contract is not None and contract.compare:
            return dataclasses.replace(own, compare=contract.compare)
        return own
    if contract is None:
        raise CharbenchError(f"task {log.eval.task} records no contract and none is registered; add "
                             f"src/charbench/tasks/<folder>/contract.py (see CONTRIBUTING.md)")
    return contract


def metrics_of(log: EvalLog) -> dict[str, float]:
    out: dict[str, float] = {}
    for score in (log.results.scores if log.results else []):
        for name, m in score.metrics.items():
            out[name] = float(m.value)
    return out


def trained_from_model(model: str, model_args: dict) -> tuple[str | None, dict | None]:
    """(row name, cards) of a ``charbench//<folder>/model`` run made outside ``charbench run`` (plain ``inspect
    eval``): read from the card beside the checkpoint, if it is still there. The runner records both instead."""
    if not model.startswith("charbench//") or model_args.get("method", "base") != "base" or model_args.get("persona"):
        return None, None
    folder = Path(model.removeprefix("charbench/")).parent
    try:
        card = read_card(folder) if (folder / CARD_NAME).is_file() else None
    except CharbenchError:
        return None, None
    if card is None:
        return None, None
    summary = card_summary(card, folder)
    return card_row_name(card), {"variant": None, "per_persona": False, "checkpoints": {summary["constitution"]: summary}}


def record_from_log(log: EvalLog, path: str) -> RunRecord:
    results = log.results
    meta = log.eval.metadata or {}
    model_args = dict(log.eval.model_args or {})
    named, trained = meta.get(VARIANT_KEY), meta.get(TRAINED_KEY)
    if not named:
        named, trained = trained_from_model(log.eval.model, model_args)
    return RunRecord(
        path=path, task=_short_task(log.eval.task), model=log.eval.model, metrics=metrics_of(log),
        contract=log_contract(log), model_args=model_args, task_args=dict(log.eval.task_args or {}),
        total_samples=int(results.total_samples) if results else 0,
        completed_samples=int(results.completed_samples) if results else 0,
        created=str(log.eval.created or ""),
        named_variant=str(named) if named else None, trained=trained if isinstance(trained, dict) else None,
        opponent=str(meta[OPPONENT_KEY]) if meta.get(OPPONENT_KEY) else None,
        pool_persona=str(meta.get(PERSONA_KEY)) if meta.get(POOL_KEY) else None,
    )


def _looks_like_json_log(path: Path) -> bool:
    """A JSON file is a candidate log only if it opens like one (classifier folders hold other JSON)."""
    try:
        head = path.open("rb").read(4096)
    except OSError:
        return True  # let the reader report it
    return b'"eval"' in head and b'"status"' in head


def log_paths(location: str | Path, exclude: Path | None = None) -> list[Path]:
    p = Path(location)
    if p.is_file():
        return [p]
    if not p.exists():
        raise CharbenchError(f"log location {p} does not exist; pass a folder of Inspect logs or a .eval file")
    if not p.is_dir():
        raise CharbenchError(f"log location {p} is neither a folder nor a log file")
    found = [*p.rglob("*.eval"), *(j for j in p.rglob("*.json") if _looks_like_json_log(j))]
    if exclude is not None:
        found = [f for f in found if exclude.resolve() not in f.resolve().parents]
    return sorted(found)


def read_runs(location: str | Path, include_partial: bool = False, exclude: Path | None = None) -> list[RunRecord]:
    """Every successful charbench run under ``location``; anything else is skipped with a warning."""
    runs = []
    for path in log_paths(location, exclude):
        if path.suffix == ".json" and path.name in ("logs.json", "eval-set.json"):
            continue  # Inspect's own eval-set bookkeeping, not a log
        try:
            log = read_eval_log(str(path), header_only=True)
        except Exception as exc:
            warnings.warn(f"skipping {path}: not a readable Inspect log ({type(exc).__name__}: {exc})", stacklevel=2)
            continue
        if not log.eval.task.startswith("charbench/"):
            warnings.warn(f"skipping {path}: task {log.eval.task} is not a charbench task", stacklevel=2)
            continue
        if log.status != "success" and not include_partial:
            warnings.warn(f"skipping {path}: run status is {log.status}, not success", stacklevel=2)
            continue
        try:
            runs.append(record_from_log(log, str(path)))
        except CharbenchError as exc:
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
    return runs
