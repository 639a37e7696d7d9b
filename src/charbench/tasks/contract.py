"""The task contract: what a task states about its own results, so central code never has to guess.

Each task folder declares its contracts in ``<folder>/contract.py`` as ``CONTRACTS = (TaskContract(...), ...)``
and its ``task.py`` attaches the matching one to the Task (``metadata=contract_metadata(CONTRACT)``), so the
contract is recorded in every log. The leaderboard, the CI gate and the comparison commands read the contract
from the log and fall back to :func:`contract_for` (the registry built from the task folders) for logs written
before contracts existed. Adding a task therefore changes nothing central.

Example (the shortest complete contract)::

    CONTRACT = TaskContract(
        task="my_task",
        row_args=("condition",),
        metrics=(
            ContractMetric(key="accuracy", label="my task accuracy", area="capability", better="higher",
                           se="stderr", paired=PerSample()),
        ),
    )
    CONTRACTS = (CONTRACT,)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from charbench.errors import CharbenchError

METADATA_KEY = "charbench_contract"
Better = Literal["higher", "lower", "neither"]
AREAS = ("character", "robustness", "preferences", "values", "stability", "coherence", "capability")


@dataclass(frozen=True)
class PerSample:
    """Pair candidate and baseline sample by sample (same sample id and epoch) on one per-sample value.

    Args:
        key: key inside a dict-valued ``Score.value``; ``None`` for a scalar value (``C``/``I`` read as 1/0).
        scorer: the scorer whose score is read; ``None`` when the task has a single scorer.
    """

    key: str | None = None
    scorer: str | None = None
    kind: Literal["per_sample"] = "per_sample"


@dataclass(frozen=True)
class BootstrapOver:
    """Pair by resampling the independent unit: the same units are drawn for both runs and the metric is
    recomputed on each side from its per-sample scores.

    Used for metrics that are not a mean of per-sample values (macro-F1, Elo spread, adherence rates over
    scenarios). The unit is what the task's own interval resamples, so the gate's interval matches it.

    Args:
        unit: sample-metadata field naming the independent unit (``prompt_id``, ``scenario_id``...), or
            ``id`` for the sample id.
        statistic: ``module:function`` inside ``charbench``; the function takes a list of Inspect
            ``SampleScore`` and returns a dict of point values keyed like the log's metrics (no inner bootstrap).
    """

    unit: str
    statistic: str
    kind: Literal["bootstrap"] = "bootstrap"


Paired = PerSample | BootstrapOver


@dataclass(frozen=True)
class ContractMetric:
    """One metric the task stands behind: its keys in the log's results and how to read and compare it.

    Args:
        key: the metric's name in the log (``log.results.scores[*].metrics``).
        label: the leaderboard column label.
        area: the leaderboard column group (one of ``AREAS``).
        better: ``higher``, ``lower`` or ``neither`` (no direction is better, e.g. a spread).
        low, high: metric keys of a logged interval; or ``se`` for a standard error (a normal 95% interval).
        n: metric key of the number the estimate rests on (default: the run's completed samples).
        invalid: metric key of the count of invalid judgements / unparsed replies (errored samples are added).
        invalid_rate: metric key of the invalid share, for tasks that log a share rather than a count.
        paired: how a paired gate rule compares two runs on this metric (``None``: only absolute rules).
        headline: shown on the leaderboard (every declared metric can be gated on).
    """

    key: str
    label: str
    area: str
    better: Better = "higher"
    low: str | None = None
    high: str | None = None
    se: str | None = None
    n: str | None = None
    invalid: str | None = None
    invalid_rate: str | None = None
    paired: Paired | None = None
    headline: bool = True

    def __post_init__(self) -> None:
        if self.area not in AREAS:
            raise CharbenchError(f"metric {self.key}: area {self.area!r} is not one of {AREAS}; add it to AREAS if it is new")
        if self.better not in ("higher", "lower", "neither"):
            raise CharbenchError(f"metric {self.key}: better={self.better!r}; choose higher, lower or neither")


@dataclass(frozen=True)
class TaskContract:
    """Everything central code needs to know about a task's results.

    Args:
        task: the registered task name without the ``charbench/`` prefix.
        metrics: the metrics the task declares; gate rules may name only these.
        row_args: task arguments whose values make two runs different results (condition, mode, split...);
            runs that agree on the model and on these are repeats of one measurement.
        fixture_arg: ``(argument, value)`` that marks a run on charbench's offline fixture items.
        per_persona: each sample names its persona; the runner gives the model under test only the method.
        needs_classifier: the task takes ``classifier=``, which the runner trains from ``persona_responses``.
        roles: model roles the runner fills from the suite (``judge``, ``opponent``).
        compare: ``module:function(log_a, log_b, out_dir) -> dict`` drawing the task's own comparison of two
            runs (keys ending in ``_plot`` are figure paths); the leaderboard links them for each variant.
        hub_dataset: the Hugging Face Hub dataset the task reads with ``source='hub'`` (its commit comes from the
            task's ``revision`` argument); the runner requires a pinned revision for it (charbench.evals.revisions).
    """

    task: str
    metrics: tuple[ContractMetric, ...]
    row_args: tuple[str, ...] = ()
    fixture_arg: tuple[str, Any] | None = None
    version: int = 1
    # What the runner (charbench.evals.runner) provides: the persona comes from each sample (the model under
    # test states the method), a persona classifier trained first, and model roles filled from the suite.
    per_persona: bool = False
    needs_classifier: bool = False
    roles: tuple[str, ...] = ()
    compare: str | None = None
    hub_dataset: str | None = None
    metric_index: dict[str, ContractMetric] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {m.key: m for m in self.metrics}
        if len(index) != len(self.metrics):
            raise CharbenchError(f"contract {self.task}: a metric key is declared twice")
        object.__setattr__(self, "metric_index", index)

    @property
    def headlines(self) -> tuple[ContractMetric, ...]:
        return tuple(m for m in self.metrics if m.headline)

    def metric(self, key: str) -> ContractMetric:
        if key not in self.metric_index:
            raise CharbenchError(
                f"{self.task} declares no metric '{key}'; declared: {', '.join(self.metric_index)} "
                f"(see src/charbench/tasks/{self.task}/contract.py)"
            )
        return self.metric_index[key]

    def to_metadata(self) -> dict:
        data = asdict(self)
        data.pop("metric_index", None)
        return data

    @classmethod
    def from_metadata(cls, data: dict) -> TaskContract:
        try:
            metrics = []
            for m in data["metrics"]:
                m = dict(m)
                p = m.get("paired")
                if p is not None:
                    p = dict(p)
                    kind = p.pop("kind")
                    m["paired"] = PerSample(**p) if kind == "per_sample" else BootstrapOver(**p)
                metrics.append(ContractMetric(**m))
            fixture = data.get("fixture_arg")
            return cls(task=data["task"], metrics=tuple(metrics), row_args=tuple(data.get("row_args", ())),
                       fixture_arg=tuple(fixture) if fixture else None, version=int(data.get("version", 1)),
                       per_persona=bool(data.get("per_persona", False)),
                       needs_classifier=bool(data.get("needs_classifier", False)),
                       roles=tuple(data.get("roles", ())), compare=data.get("compare"),
                       hub_dataset=data.get("hub_dataset"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CharbenchError(f"a log's recorded task contract is malformed ({exc}); rebuild it from the task "
                                 "with contract_for(<task>) or re-run the task") from exc


def contract_metadata(contract: TaskContract) -> dict:
    """The entry a task puts in its Task metadata so the contract is recorded in the log."""
    return {METADATA_KEY: contract.to_metadata()}


def all_contracts() -> dict[str, TaskContract]:
    """Every contract declared by a task folder (``charbench/tasks/<folder>/contract.py``)."""
    from charbench import tasks

    found: dict[str, TaskContract] = {}
    for info in pkgutil.iter_modules(tasks.__path__):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"charbench.tasks.{info.name}.contract")
        except ModuleNotFoundError as exc:
            if exc.name == f"charbench.tasks.{info.name}.contract":
                continue  # a helper package without tasks
            raise
        for contract in getattr(module, "CONTRACTS", ()):
            if contract.task in found:
                raise CharbenchError(f"task {contract.task} has two contracts (second in {module.__name__})")
            found[contract.task] = contract
    return found


def contract_for(task: str) -> TaskContract | None:
    """The registered contract of ``task`` (with or without the ``charbench/`` prefix), or None."""
    return all_contracts().get(task.split("/")[-1])


def resolve_callable(path: str) -> Callable[..., Any]:
    """Import a contract's ``module:function``; only charbench code is imported (a log is data, not code)."""
    module_name, _, name = path.partition(":")
    if not module_name.startswith("charbench.") or not name:
        raise CharbenchError(f"{path!r} must be 'charbench.<module>:<function>'")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise CharbenchError(f"{path!r} cannot be imported ({exc}); is charbench up to date?") from exc


def resolve_statistic(path: str) -> Callable[[list], dict[str, float]]:
    """A ``BootstrapOver.statistic``: per-sample scores in, point values keyed like the log's metrics out."""
    return resolve_callable(path)
