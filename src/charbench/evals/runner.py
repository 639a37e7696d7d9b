"""Run a suite on checkpoints: one Inspect eval set per (task, variant), planned and checked before any work.

* **Plan first.** :func:`plan_suite` turns a suite into steps (task, arguments, model variant, judge) without
  loading a model or a dataset; :func:`validate_plan` refuses unknown tasks, bad arguments, missing
  checkpoints and impossible variants in one line naming the fix. ``charbench run --dry-run`` prints the plan.
* **The model says what it is.** Every variant is a model string plus model arguments (``-M method=...``), so
  the variant is in the model name of every log (``charbench/smollm2+prompted``), also for the multi-persona
  tasks, and ``inspect_ai.analysis.evals_df`` tells variants apart.
* **Trained variants** (suite ``trained:``, :mod:`charbench.evals.trained`): a checkpoint runs as the model
  under test on single-persona tasks and as one model role per persona (``method=trained``) on per-persona tasks;
  its responses join the persona classifier's training data; pairwise tasks (a contract with an ``opponent``
  role) run once per persona it speaks for and per entry ``opponents:``. Each step records the row name and card
  summary in its eval metadata, so the leaderboard names the row from the card.
* **One judge per suite.** The judge (suite ``judge:`` or ``--judge``; default the embedded base model) is the
  same model for every variant and is recorded in every log as the ``judge`` role. The default judge may not
  also be a model under test: letting the base model judge its own variants must be asked for by name.
* **Nothing vanishes.** Errored and unscored samples stay in the log and are counted per step (and in
  ``charbench-run.json``); a step over ``max_error_rate`` is marked and the run exits non-zero.
* **Resumable at the sample level.** Each step is an Inspect eval set in its own folder, so a re-run keeps the
  finished samples of an interrupted, cancelled or crashed log and runs only the rest.
* **One writer per log dir**: a lock file with the writer's pid; a lock left by a dead process is replaced.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charbench.errors import CharbenchError
from charbench.evals.suites import BUILT_IN_VARIANTS, DEFAULT_MAX_CONNECTIONS, Suite
from charbench.evals.trained import (
    OPPONENT_KEY,
    PERSONA_ARG,
    PERSONA_KEY,
    POOL_KEY,
    VARIANT_KEY,
    TrainedCheckpoint,
    TrainedVariant,
    load_trained,
    persona_name,
)

if TYPE_CHECKING:  # Inspect is imported lazily at run time, so the CLI starts fast
    from inspect_ai.util import DisplayType

VARIANTS = BUILT_IN_VARIANTS
DEFAULT_JUDGE = "charbench/smollm2"
DEFAULT_MAX_ERROR_RATE = 0.05
LOCK_NAME = ".charbench-run.lock"
SUMMARY_NAME = "charbench-run.json"
EMBEDDED_ALIASES = ("smollm2", "smollm2-135m")
GENERATE_KEYS = ("max_tokens", "temperature", "top_p", "seed")
# Task arguments that say which data a step reads; the dry run shows them on their own line.
DATASET_KEYS = ("prompt_set", "source", "revision", "n_prompts", "n_matches", "limit", "traits", "constitution")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+@-]+", "_", text).strip("_")


@dataclass(frozen=True)
class ModelSpec:
    """An Inspect model string plus the model arguments that make it a variant."""

    model: str
    args: dict = field(default_factory=dict)

    @property
    def is_charbench(self) -> bool:
        return self.model.startswith("charbench/")

    @property
    def label(self) -> str:
        """The model name the logs will show (the provider puts the variant into it)."""
        if not self.is_charbench or not self.args:
            return self.model
        from charbench.models.provider import DEFAULT_STEER_COEF, variant_label

        method = str(self.args.get("method", "prompted" if self.args.get("persona") else "base"))
        coef = float(self.args.get("steer_coef", DEFAULT_STEER_COEF)) if method == "steered" else None
        return "charbench/" + variant_label(self.model.removeprefix("charbench/"), method, self.args.get("persona"), coef)

    def get(self):
        from inspect_ai.model import get_model

        return get_model(self.model, **self.args)


@dataclass
class Step:
    """One Inspect eval: its folder under the log dir, the task and arguments, the model and its roles."""

    name: str
    task: str
    task_args: dict
    model: ModelSpec
    roles: dict[str, ModelSpec] = field(default_factory=dict)
    purpose: str = "eval"  # "eval", or "classifier-data" for the persona classifier's training responses
    metadata: dict = field(default_factory=dict)  # recorded in the log's eval metadata (trained card, opponent)


@dataclass
class RunPlan:
    suite: Suite
    models: list[str]
    judge: ModelSpec
    judge_named: bool
    steps: list[Step]
    classifiers: dict[str, Path]  # model under test -> folder of its persona classifier
    trained: dict[str, TrainedVariant] = field(default_factory=dict)  # the suite's trained variants, checked


@dataclass
class StepResult:
    """What a step left behind, with every sample that produced no score counted."""

    step: str
    task: str
    model: str
    status: str
    log: str | None
    expected: int
    samples: int
    errored: int
    unscored: int
    over_threshold: bool

    @property
    def missing(self) -> int:
        return max(self.expected - self.samples, 0)

    @property
    def failed_samples(self) -> int:
        return self.errored + self.unscored + self.missing

    def line(self) -> str:
        flag = "  OVER ERROR THRESHOLD" if self.over_threshold else ""
        return (f"[charbench] {self.step}: {self.status}, {self.samples}/{self.expected} samples, "
                f"{self.errored} errored, {self.unscored} unscored, {self.missing} missing{flag} ({self.log})")


# -- planning -----------------------------------------------------------------------------------------------
def _contract(task: str):
    from charbench.tasks.contract import contract_for

    contract = contract_for(task)
    if contract is None:
        raise CharbenchError(f"task {task} declares no contract (src/charbench/tasks/<folder>/contract.py); "
                             "the runner reads what the task needs from it")
    return contract


def _variant_args(variant: str, persona: str | None, steer_coef: float) -> dict:
    """Model arguments of a variant; ``persona=None`` is the per-sample variant of the multi-persona tasks."""
    if variant == "base":
        return {}
    args: dict[str, Any] = {"method": variant}
    if persona:
        args["persona"] = persona
    if variant == "steered":
        args["steer_coef"] = steer_coef
    return args


def _entry_opponents(entry: dict) -> list[str]:
    """An entry's coherence opponents: ``opponents:`` (a list), else the single ``opponent:`` (default steered)."""
    if "opponents" in entry:
        return list(entry["opponents"])
    return [entry.get("opponent", "steered")]


def check_entries(suite: Suite, trained: dict[str, TrainedVariant] | None = None) -> None:
    """Each suite entry names a known task and known variants (checked before anything reads them)."""
    from charbench import tasks

    known = sorted(tasks.__all__)
    allowed = (*VARIANTS, *(trained or {}))
    for index, entry in enumerate(suite.tasks):
        if not isinstance(entry, dict) or "task" not in entry or not isinstance(entry.get("variants"), list):
            raise CharbenchError(f"suite {suite.name}: entry {index + 1} needs task: and a variants: list, got {entry}")
        if entry["task"] not in known:
            raise CharbenchError(f"suite {suite.name}: unknown task '{entry['task']}'; known tasks: {', '.join(known)}")
        bad = [v for v in entry["variants"] if v not in allowed]
        if bad or not entry["variants"]:
            raise CharbenchError(f"suite {suite.name}: task {entry['task']} has variants {entry['variants']}; "
                                 f"each must be one of {allowed}")
        if not isinstance(entry.get("args", {}), dict):
            raise CharbenchError(f"suite {suite.name}: task {entry['task']}: args: must be a mapping of task arguments")
        if "opponents" in entry and "opponent" in entry:
            raise CharbenchError(f"suite {suite.name}: task {entry['task']} gives both opponent: and opponents:; "
                                 "keep one (opponents: [base, prompted, steered] compares against each)")
        opponents = entry.get("opponents", [entry.get("opponent", "steered")])
        if not isinstance(opponents, list) or not opponents or any(o not in allowed for o in opponents):
            raise CharbenchError(f"suite {suite.name}: task {entry['task']} has opponents {opponents!r}; give a list "
                                 f"whose names are each one of {allowed}")


def _classifier_methods(suite: Suite, contracts: dict) -> list[str]:
    """The variants whose responses train the persona classifier: all those the classifier-needing entries use,
    trained ones included (the paper used four methods), or the suite's ``classifier: {methods: [...]}``."""
    used = sorted({v for e in suite.tasks if contracts[e["task"]].needs_classifier for v in e["variants"]})
    chosen = suite.classifier.get("methods")
    if chosen is None or not used:
        return used
    bad = [m for m in chosen if m not in used]
    if bad:
        raise CharbenchError(f"suite {suite.name}: classifier methods {bad} are not variants of any entry that needs "
                             f"the persona classifier; choose from {used}")
    return list(dict.fromkeys(chosen))


def _persona_ref(checkpoint: TrainedCheckpoint, suite: Suite) -> str:
    """How tasks and the prompted/steered variants load a checkpoint's persona: the suite's spelling when the suite
    lists it, else the card's constitution source (a user's file) or its name (a built-in)."""
    for persona in suite.personas:
        if persona_name(persona) == checkpoint.persona:
            return persona
    source = (checkpoint.card.get("constitution") or {}).get("source")
    return str(source) if source and Path(str(source)).is_file() else checkpoint.persona


@dataclass
class _Planner:
    """What every step of one model under test shares: the suite, its trained variants, the judge."""

    suite: Suite
    model: str
    trained: dict[str, TrainedVariant]
    judge: ModelSpec
    generate_args: dict

    def single(self, variant: str, persona: str, where: str) -> tuple[ModelSpec, dict]:
        """Model under test (and eval metadata) of a variant on a single-persona task."""
        if variant in self.trained:
            checkpoint = self.trained[variant].checkpoint_for(persona, where)
            return ModelSpec(checkpoint.model), self.trained[variant].metadata([checkpoint])
        return ModelSpec(self.model, _variant_args(variant, persona, self.suite.steer_coef)), {}

    def per_persona(self, variant: str, where: str) -> tuple[ModelSpec, dict, dict[str, ModelSpec], dict]:
        """(model, extra task args, persona roles, eval metadata) of a variant on a multi-persona task."""
        if variant not in self.trained:
            spec, extra = _persona_model(self.model, variant, self.suite.steer_coef)
            return spec, extra, {}, {}
        tv = self.trained[variant]
        if not tv.per_persona and len(self.suite.personas) > 1:
            raise CharbenchError(
                f"trained variant {variant} is one checkpoint (persona {next(iter(tv.checkpoints))}), but {where} gives "
                f"each of the suite's {len(self.suite.personas)} personas its own model. Fix: trained: {{{variant}: "
                f"{{{', '.join(f'{p}: <folder>' for p in self.suite.personas)}}}}}, or drop {variant} from that entry")
        checkpoints = {p: tv.checkpoint_for(p, where) for p in self.suite.personas}
        roles = {p: ModelSpec(c.model) for p, c in checkpoints.items()}
        # Each sample's persona answers through its role. The run's own model stays the base --model: it is what a
        # task's neutral turn falls back to (prefill_attack's reference), and it never speaks for a persona.
        return ModelSpec(self.model), {"method": "trained"}, roles, tv.metadata(list(checkpoints.values()))

    def opponent(self, opponent: str, persona: str, coef: float, where: str) -> tuple[ModelSpec, str]:
        """The opponent's model and the label the leaderboard shows for it."""
        if opponent in self.trained:
            checkpoint = self.trained[opponent].checkpoint_for(persona, where)
            return ModelSpec(checkpoint.model), self.trained[opponent].row_name
        label = f"steered@{coef:g}" if opponent == "steered" else opponent
        return ModelSpec(self.model, _variant_args(opponent, persona, coef)), label

    def step_roles(self, contract) -> dict[str, ModelSpec]:
        return {"judge": self.judge} if "judge" in contract.roles else {}

    def classifier_step(self, prefix: str, method: str, classifier: Path) -> Step:
        spec, extra, roles, metadata = self.per_persona(method, "the persona classifier's training data")
        return Step(f"{prefix}/persona_responses-{method}", "persona_responses",
                    {"personas": self.suite.personas, "n_prompts": self.suite.classifier.get("n_prompts", 12),
                     **self.generate_args, **extra}, spec, roles, purpose="classifier-data", metadata=metadata)

    def entry_steps(self, prefix: str, entry: dict, contract, classifier: Path | None) -> list[Step]:
        name, args = entry["task"], dict(entry.get("args", {}))
        base_name = f"{prefix}/{entry.get('id', name)}"  # an entry's id names its steps: one task may appear twice
        steps: list[Step] = []
        for variant in entry["variants"]:
            where = f"task {entry.get('id', name)}"
            if "opponent" in contract.roles:
                steps += self.opponent_steps(base_name, entry, contract, variant, where)
                continue
            task_args = dict(args)
            roles = self.step_roles(contract)
            if contract.per_persona:
                spec, extra, persona_roles, metadata = self.per_persona(variant, where)
                task_args.update(personas=self.suite.personas, **self.generate_args, **extra)
                roles.update(persona_roles)
            else:
                default = self.suite.personas[0]
                tv = self.trained.get(variant)
                if tv is not None and not tv.per_persona:
                    default = _persona_ref(next(iter(tv.checkpoints.values())), self.suite)
                spec, metadata = self.single(variant, args.get("constitution") or default, where)
            if contract.needs_classifier:
                task_args["classifier"] = str(classifier)
            steps.append(Step(f"{base_name}-{variant}", name, task_args, spec, roles, metadata=metadata))
        return steps

    def opponent_steps(self, base_name: str, entry: dict, contract, variant: str, where: str) -> list[Step]:
        """Pairwise tasks: one step per opponent; a trained variant once per persona it was trained on, so its win
        rate against each opponent can be averaged over the suite's personas, as the paper reports it."""
        args = dict(entry.get("args", {}))
        coef = float(entry.get("opponent_steer_coef", self.suite.steer_coef))
        listed = "opponents" in entry
        tv = self.trained.get(variant)
        if tv is None:
            personas = [args.get("constitution") or self.suite.personas[0]]
        elif tv.per_persona:
            personas = list(self.suite.personas)
        else:
            personas = [_persona_ref(next(iter(tv.checkpoints.values())), self.suite)]
        steps = []
        for persona in personas:
            spec, metadata = self.single(variant, persona, where)
            for opponent in _entry_opponents(entry):
                if opponent == variant and listed:
                    continue  # a variant against itself measures nothing
                task_args = dict(args)
                task_args.setdefault("max_tokens", self.generate_args.get("max_tokens", 64))
                if tv is not None:
                    task_args[PERSONA_ARG] = persona
                opponent_spec, label = self.opponent(opponent, persona, coef, where)
                roles = {**self.step_roles(contract), "opponent": opponent_spec}
                step_metadata = {**metadata, OPPONENT_KEY: label}
                step_name = f"{base_name}-{variant}"
                if tv is not None and tv.per_persona:
                    step_name += f"-{_slug(persona_name(persona))}"
                    step_metadata.update({POOL_KEY: True, PERSONA_KEY: persona_name(persona)})
                if listed:
                    step_name += f"-vs-{opponent}"
                steps.append(Step(step_name, entry["task"], task_args, spec, roles, metadata=step_metadata))
        return steps


def plan_suite(suite: Suite, models: list[str], log_dir: str | Path, judge: str | None = None) -> RunPlan:
    """Every step of ``suite`` on ``models``, without loading a model, a dataset or a task.

    Trained variants' folders and cards are read and checked here (one line naming the variant, the path and the
    fix), before anything runs.
    """
    trained = load_trained(suite)
    check_entries(suite, trained)
    if trained and len(models) > 1:
        raise CharbenchError(f"suite {suite.name} has trained variants ({', '.join(trained)}), which are compared with "
                             f"one base model; got {len(models)} --model values. Fix: pass one --model (the base the "
                             "trained checkpoints started from), and run the others separately")
    root = Path(log_dir)
    judge_named = bool(judge or suite.judge)
    judge_spec = ModelSpec(judge or suite.judge or DEFAULT_JUDGE)
    generate_args = {k: v for k, v in suite.generate.items() if k in GENERATE_KEYS}
    steps: list[Step] = []
    classifiers: dict[str, Path] = {}
    contracts = {entry["task"]: _contract(entry["task"]) for entry in suite.tasks}
    for model in models:
        under_test = _slug(model)
        planner = _Planner(suite, model, trained, judge_spec, generate_args)
        classifier_methods = _classifier_methods(suite, contracts)
        if classifier_methods:
            classifiers[model] = root / f"classifier-{under_test}"
            steps += [planner.classifier_step(under_test, m, classifiers[model]) for m in classifier_methods]
        for entry in suite.tasks:
            steps += planner.entry_steps(under_test, entry, contracts[entry["task"]], classifiers.get(model))
    return RunPlan(suite, list(models), judge_spec, judge_named, steps, classifiers, trained)


def _persona_model(model: str, variant: str, steer_coef: float) -> tuple[ModelSpec, dict]:
    """The model (and any task argument) of a per-sample persona variant of a multi-persona task."""
    if model.startswith("charbench/"):
        return ModelSpec(model, _variant_args(variant, None, steer_coef)), {}
    # Other providers cannot carry a persona method; the task applies the prompted persona itself.
    return ModelSpec(model), {"method": variant}


def _task_fn(name: str):
    from charbench import tasks

    return getattr(tasks, name)


# -- validation ---------------------------------------------------------------------------------------------
def _check_model(model: str, what: str) -> None:
    if "/" not in model:
        raise CharbenchError(f"{what} '{model}' is not an Inspect model string; use provider/name, e.g. "
                             "charbench/smollm2, charbench//abs/path/to/ckpt or vllm/org/name")
    if model.startswith("charbench/"):
        name = model.removeprefix("charbench/")
        if name in EMBEDDED_ALIASES:
            return  # prepared on first use; nothing to check without converting it
        from charbench.models.embedded import resolve_checkpoint

        try:
            resolve_checkpoint(name)
        except CharbenchError as exc:
            raise CharbenchError(f"{what}: {exc}") from exc


def validate_plan(plan: RunPlan) -> None:
    """Refuse, before any work, everything that would otherwise fail partway through the suite."""
    from charbench import tasks

    for model in plan.models:
        _check_model(model, "--model")
    _check_model(plan.judge.model, "judge")
    if not plan.judge_named and plan.judge.model in plan.models and any("judge" in s.roles for s in plan.steps):
        raise CharbenchError(
            f"the default judge {plan.judge.model} is also a model under test, so it would judge its own variants. "
            f"Fix: name it on purpose (--judge {plan.judge.model}, or judge: in the suite), or pass another --judge")
    seen: set[str] = set()
    for step in plan.steps:
        if step.name in seen:
            raise CharbenchError(f"suite {plan.suite.name}: two steps are both named {step.name}; give one entry an id:")
        seen.add(step.name)
        contract = _contract(step.task)
        for spec in (step.model, *step.roles.values()):
            method = spec.args.get("method", "base")
            if method != "base" and not spec.is_charbench and not (contract.per_persona and method == "prompted"):
                raise CharbenchError(
                    f"step {step.name}: variant {method} of {spec.model} needs a charbench/ model (the charbench "
                    "provider applies the persona or the steering); run this variant on charbench/<checkpoint> or "
                    "drop it from the suite")
        if contract.per_persona and step.task_args.get("method") == "steered":
            raise CharbenchError(f"step {step.name}: the steered variant needs a charbench/ model (transformers hooks); "
                                 f"{step.model.model} cannot be steered. Drop steered from this entry's variants")
        task_fn = getattr(tasks, step.task)
        try:
            inspect.signature(task_fn).bind(**step.task_args)
        except TypeError as exc:
            params = ", ".join(inspect.signature(task_fn).parameters)
            raise CharbenchError(f"step {step.name}: arguments {sorted(step.task_args)} do not fit {step.task} ({exc}); "
                                 f"its parameters: {params}") from exc


def check_log_dir(log_dir: str | Path) -> Path:
    root = Path(log_dir)
    if root.exists() and not root.is_dir():
        raise CharbenchError(f"--log-dir {root} is a file; pass a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CharbenchError(f"--log-dir {root} cannot be created ({exc.strerror}); pass a writable folder") from exc
    if not os.access(root, os.W_OK):
        raise CharbenchError(f"--log-dir {root} is not writable; pass a writable folder")
    return root


def describe_plan(plan: RunPlan) -> str:
    """The dry run: every step with its model name as logged, roles (judge), data and revision."""
    from charbench.evals.revisions import describe_step_data

    lines = [f"suite {plan.suite.name} v{plan.suite.version}: {len(plan.steps)} steps on {', '.join(plan.models)}",
             f"judge: {plan.judge.label} ({'named' if plan.judge_named else 'default'}; the same for every variant)",
             f"max_connections: {plan.suite.max_connections} samples in flight per step"]
    for model, folder in plan.classifiers.items():
        lines.append(f"persona classifier for {model}: {folder} (trained from the classifier-data steps unless present)")
    for name, tv in plan.trained.items():
        lines.append(f"trained variant {name}: leaderboard row {tv.row_name}" + (f"; build: {tv.build}" if tv.build else ""))
        for persona, checkpoint in tv.checkpoints.items():
            lines.append(f"    {persona}: card {checkpoint.name}, stage {checkpoint.stage}, constitution "
                         f"{checkpoint.persona}, base {checkpoint.card.get('base_checkpoint')} ({checkpoint.model})")
    from charbench import tasks

    for step in plan.steps:
        # The task's own defaults too, so the dry run names the prompt set even where the suite leaves it unset.
        params = inspect.signature(getattr(tasks, step.task)).parameters
        defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        data = {k: step.task_args.get(k, defaults.get(k)) for k in DATASET_KEYS if k in step.task_args or k in defaults}
        roles = ", ".join(f"{r}={s.label}" for r, s in step.roles.items()) or "-"
        lines += [
            f"- {step.name}  [{step.purpose}]",
            f"    task: charbench/{step.task}  args: {json.dumps(step.task_args, sort_keys=True, default=str)}",
            f"    model: {step.model.label}  model_args: {json.dumps(step.model.args, sort_keys=True)}",
            f"    roles: {roles}",
            *([f"    row: {step.metadata[VARIANT_KEY]}"] if VARIANT_KEY in step.metadata else []),
            f"    dataset: {json.dumps(data, sort_keys=True, default=str)}",
            f"    hub data: {describe_step_data(step)}",
        ]
    return "\n".join(lines)


# -- one writer per log dir -----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@contextmanager
def log_dir_lock(root: Path) -> Iterator[Path]:
    """Hold ``root/.charbench-run.lock`` for the run; refuse while another live process holds it."""
    path = root / LOCK_NAME
    host = socket.gethostname()
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
                pid, holder_host = int(holder["pid"]), str(holder["host"])
            except (OSError, ValueError, KeyError, TypeError):
                raise CharbenchError(f"{path} exists but is not a charbench lock; if no charbench run uses {root}, "
                                     "delete the file and run again") from None
            if holder_host == host and not _alive(pid):
                print(f"[charbench] removing a stale lock of process {pid}, which is no longer running ({path})")
                path.unlink(missing_ok=True)
                continue
            raise CharbenchError(
                f"{root} is already being written by charbench run (pid {pid} on {holder_host}, since "
                f"{holder.get('started', '?')}). Wait for it to finish or use another --log-dir; if that process is "
                f"gone, delete {path}") from None
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, handle)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
        return
    raise CharbenchError(f"could not take the lock {path}; another run may have taken it just now. Try again")


# -- running ------------------------------------------------------------------------------------------------
def count_samples(log_path: str, max_error_rate: float) -> tuple[str, int, int, int, int, bool]:
    """(status, expected, samples, errored, unscored, over threshold) of a finished or interrupted log."""
    from inspect_ai.log import read_eval_log, read_eval_log_sample_summaries

    header = read_eval_log(log_path, header_only=True)
    summaries = read_eval_log_sample_summaries(log_path)
    epochs = header.eval.config.epochs or 1
    expected = (header.eval.dataset.samples or len(summaries)) * epochs
    if header.eval.config.limit is not None and isinstance(header.eval.config.limit, int):
        expected = min(expected, header.eval.config.limit * epochs)
    errored = sum(1 for s in summaries if s.error)
    # A task without a scorer (classifier training data) has nothing to leave unscored.
    has_scorer = bool(header.results is not None and header.results.scores)
    unscored = sum(1 for s in summaries if not s.error and not s.scores and has_scorer)
    failed = errored + unscored + max(expected - len(summaries), 0)
    over = header.status != "success" or (expected > 0 and failed / expected > max_error_rate)
    return header.status, expected, len(summaries), errored, unscored, over


def run_step(step: Step, root: Path, seed: int, display: DisplayType, max_error_rate: float,
             retry_on_error: int = 1, judge: str | None = None, task_factory: Any = None,
             max_connections: int = DEFAULT_MAX_CONNECTIONS) -> StepResult:
    """Run (or resume, or skip when complete) one step as an Inspect eval set in its own folder.

    ``task_factory`` replaces the registered charbench task of that name (tests drive the machinery with a
    tiny task of their own).
    """
    from inspect_ai import eval_set
    from inspect_ai._util.error import PrerequisiteError

    step_dir = root / step.name
    print(f"[charbench] {step.name}: {step.model.label} on charbench/{step.task}")
    task = (task_factory or _task_fn(step.task))(**step.task_args)
    roles = {role: spec.get() if spec.args else spec.model for role, spec in step.roles.items()}
    # fail_on_error=0 would mean "never fail" to Inspect; a zero threshold means "fail on any error" here.
    threshold: bool | float = True if max_error_rate <= 0 else max_error_rate
    try:
        _ok, logs = eval_set(
            task, log_dir=str(step_dir), model=step.model.model, model_args=step.model.args, model_roles=roles or None,
            display=display, max_connections=max_connections, seed=seed, fail_on_error=threshold, continue_on_fail=True,
            retry_on_error=retry_on_error, retry_attempts=1, retry_wait=1, log_dir_allow_dirty=False,
            metadata={"charbench_step": step.name, "charbench_judge": judge, **step.metadata},
        )
    except PrerequisiteError as exc:
        # Typically the folder holds logs of another configuration of this step (the suite or model changed).
        message = " ".join(str(exc).split())
        raise CharbenchError(f"step {step.name}: {message} Fix: move {step_dir} aside or use a new --log-dir") from exc
    log = logs[0]
    status, expected, samples, errored, unscored, over = count_samples(log.location, max_error_rate)
    result = StepResult(step.name, step.task, step.model.label, status, log.location, expected, samples, errored,
                        unscored, over)
    print(result.line())
    return result


def _write_summary(root: Path, plan: RunPlan, results: list[StepResult], max_error_rate: float) -> None:
    previous = {}
    path = root / SUMMARY_NAME
    if path.exists():
        try:
            previous = {r["step"]: r for r in json.loads(path.read_text()).get("steps", [])}
        except (OSError, ValueError, AttributeError):
            previous = {}
    for r in results:
        previous[r.step] = {**asdict(r), "missing": r.missing}
    path.write_text(json.dumps({
        "suite": plan.suite.name, "suite_version": plan.suite.version, "judge": plan.judge.label,
        "max_error_rate": max_error_rate, "steps": list(previous.values()),
    }, indent=2))


def _train_classifier(plan: RunPlan, model: str, data_logs: list[str]) -> None:
    from charbench.classifiers import (
        PersonaClassifierConfig,
        train_encoder_classifier,
        train_tfidf_classifier,
    )
    from charbench.classifiers.data import training_data_from_logs

    out = plan.classifiers[model]
    spec = plan.suite.classifier
    texts, labels, prompt_ids = training_data_from_logs(data_logs)
    config = PersonaClassifierConfig(kind=spec.get("kind", "encoder"), encoder=spec.get("encoder", "minilm"))
    if config.encoder == "minilm":
        config.learning_rate, config.epochs = 1e-4, 3
    trainer = train_tfidf_classifier if config.kind == "tfidf" else train_encoder_classifier
    trainer(texts, labels, out, config, groups=prompt_ids)


def execute_plan(plan: RunPlan, log_dir: str | Path, display: DisplayType = "rich",
                 max_error_rate: float = DEFAULT_MAX_ERROR_RATE, task_factories: dict | None = None) -> list[StepResult]:
    """Run a validated plan under the log-dir lock; every step's counts are printed and kept in charbench-run.json.

    ``task_factories`` maps task names to task functions that replace the registered ones (tests).
    """
    from charbench.evals.revisions import check_plan_revisions

    check_plan_revisions(plan)  # every Hub dataset at a fixed revision (charbench run pins them from --revision)
    factories = task_factories or {}
    root = check_log_dir(log_dir)
    seed = int(plan.suite.generate.get("seed", 0))
    connections = plan.suite.max_connections
    results: list[StepResult] = []
    with log_dir_lock(root):
        for model in plan.models:
            model_steps = [s for s in plan.steps if s.name.startswith(_slug(model) + "/")]
            data_steps = [s for s in model_steps if s.purpose == "classifier-data"]
            if model in plan.classifiers and not (plan.classifiers[model] / "card.json").exists():
                data = [run_step(s, root, seed, display, max_error_rate, judge=plan.judge.label,
                                 max_connections=connections) for s in data_steps]
                results += data
                _write_summary(root, plan, results, max_error_rate)
                incomplete = [r for r in data if r.over_threshold]
                if incomplete:
                    raise CharbenchError(
                        f"classifier data step {incomplete[0].step} is incomplete ({incomplete[0].failed_samples} samples "
                        f"failed, see {incomplete[0].log}); run again to resume it before the classifier is trained")
                _train_classifier(plan, model, [r.log for r in data if r.log])
            for step in model_steps:
                if step.purpose != "eval":
                    continue
                results.append(run_step(step, root, seed, display, max_error_rate, judge=plan.judge.label,
                                        task_factory=factories.get(step.task), max_connections=connections))
                _write_summary(root, plan, results, max_error_rate)
    return results


def run_suite(suite: Suite, models: list[str], log_dir: str | Path, display: DisplayType = "rich", judge: str | None = None,
              max_error_rate: float = DEFAULT_MAX_ERROR_RATE) -> list[StepResult]:
    """Plan, validate and run ``suite``; returns one result per step, errored samples counted."""
    plan = plan_suite(suite, models, log_dir, judge)
    validate_plan(plan)
    return execute_plan(plan, log_dir, display, max_error_rate)
