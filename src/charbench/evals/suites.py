"""Loading suites and turning them into Inspect runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from charbench.errors import CharbenchError
from charbench.yamlio import load_yaml

SUITE_DIR = Path(str(resources.files("charbench").joinpath("evals", "suites")))
BUILT_IN_VARIANTS = ("base", "prompted", "steered")
TRAINED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TRAINED_FIX = ("Fix: trained: {my-dpo: runs/sarcastic-dpo} (a charbench train output folder), {my-dpo: {sarcastic: "
               "runs/s-dpo, humorous: runs/h-dpo}} (one per persona), or {my-dpo: {build: '<command>', "
               "checkpoints: <folder or mapping>}}")


# Samples in flight per step unless a suite says otherwise (see Suite.max_connections).
DEFAULT_MAX_CONNECTIONS = 32


@dataclass
class Suite:
    """One benchmark suite, read from YAML (see the built-in ``charbench/evals/suites/*.yaml``).

    Top-level fields are checked here, each problem named with the fix; the task entries are checked by the runner
    against the task registry, which this module does not import.

    Trained checkpoints enter a suite as named variants, usable in any entry's ``variants:`` (and coherence
    ``opponents:``) beside ``base``, ``prompted`` and ``steered``::

        personas: [sarcastic, remorseful]
        trained:
          sarcastic-dpo: runs/sarcastic-dpo               # one `charbench train` folder; its persona is its card's
          dpo:                                            # one checkpoint per persona (the paper's design)
            sarcastic: $CHARBENCH_HOME/train/sarcastic-dpo
            remorseful: ~/ckpts/remorseful-dpo
          full:                                           # the command that makes them, named in the errors
            build: make train-full
            checkpoints: {sarcastic: runs/sarcastic-full, remorseful: runs/remorseful-full}
        classifier: {kind: encoder, encoder: minilm, n_prompts: 8, methods: [prompted, dpo]}  # methods: optional
        tasks:
          - {task: break_character, variants: [prompted, steered, dpo]}
          - {task: coherence, variants: [dpo], opponents: [base, prompted, steered]}

    Each folder holds ``charbench-train.json`` (status ``complete``) and ``model/``. Paths expand ``~`` and
    environment variables; relative paths are relative to the suite file. The folders and cards are checked by
    the runner before any work (``charbench.evals.trained``).
    """

    name: str
    """Suite name; it names the run folder and appears in every log's metadata."""
    version: int
    """Bumped whenever a change would move the suite's numbers; logged beside the results."""
    personas: list[str]
    """Built-in persona names or constitution paths; the first is the persona of single-persona tasks."""
    classifier: dict
    """Persona-classifier settings for tasks that need one: ``kind``, ``encoder``, ``n_prompts``."""
    steer_coef: float
    """Total steering push for the ``steered`` variant, spread over the steered layers."""
    generate: dict
    """Generation settings passed to every task (``max_tokens``, ``temperature``, ``top_p``, ``seed``)."""
    tasks: list[dict] = field(default_factory=list)
    """Entries with ``task``, ``variants`` and optionally ``id``, ``args``, ``opponent``, ``opponent_steer_coef``."""
    judge: str | None = None
    """The judge of every task that has one, the same model for every variant (see charbench.evals.runner)."""
    revisions: dict = field(default_factory=dict)
    """Hub dataset -> commit, for steps that read the Hub (``--revision`` overrides; see charbench.evals.revisions)."""
    trained: dict = field(default_factory=dict)
    """Trained variants: name -> folder, persona -> folder mapping, or ``{build: <command>, checkpoints: ...}``."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Samples in flight per step: Inspect's ``max_connections`` for every model of the step, and the batch size of
    the transformers engine (larger batches are faster per token on CPU and GPU alike). ``charbench run
    --max-connections`` overrides it; raise it for a vLLM engine or an API with room for more."""
    base_dir: Path | None = None
    """The suite file's folder (relative ``trained:`` paths start there); set by :func:`load_suite`."""

    def __post_init__(self) -> None:
        where = f"suite {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise CharbenchError(f"suite name must be a non-empty string, got {self.name!r}. Fix: name: my-suite")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise CharbenchError(f"{where}: version must be a positive integer, got {self.version!r}. Fix: version: 1")
        if not isinstance(self.personas, list) or not self.personas or not all(isinstance(x, str) for x in self.personas):
            raise CharbenchError(f"{where}: personas must be a non-empty list of persona names or paths, got "
                                 f"{self.personas!r}. Fix: personas: [sarcastic, humorous]")
        for key in ("classifier", "generate"):
            if not isinstance(getattr(self, key), dict):
                raise CharbenchError(f"{where}: {key} must be a mapping, got {getattr(self, key)!r}. "
                                     "Fix: see the built-in suites for the keys")
        if isinstance(self.steer_coef, bool) or not isinstance(self.steer_coef, (int, float)):
            raise CharbenchError(f"{where}: steer_coef must be a number, got {self.steer_coef!r}. Fix: steer_coef: 0.5")
        if not isinstance(self.tasks, list) or not all(isinstance(e, dict) for e in self.tasks):
            raise CharbenchError(f"{where}: tasks must be a list of mappings, got {self.tasks!r}. "
                                 "Fix: - {task: coherence, variants: [prompted]}")
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int) or self.max_connections < 1:
            raise CharbenchError(f"{where}: max_connections must be a positive integer, got {self.max_connections!r}. "
                                 f"Fix: max_connections: {DEFAULT_MAX_CONNECTIONS}")
        if self.judge is not None and not isinstance(self.judge, str):
            raise CharbenchError(f"{where}: judge must be a model name, got {self.judge!r}. Fix: judge: provider/model")
        if not isinstance(self.revisions, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                           for k, v in self.revisions.items()):
            raise CharbenchError(f"{where}: revisions must map Hub datasets to commits, got {self.revisions!r}. "
                                 "Fix: revisions: {allenai/WildChat-1M: '<commit sha>'}")
        self._check_trained(where)
        methods = self.classifier.get("methods")
        if methods is not None and (not isinstance(methods, list) or not methods
                                    or not all(isinstance(m, str) for m in methods)):
            raise CharbenchError(f"{where}: classifier methods must be a non-empty list of variant names, got "
                                 f"{methods!r}. Fix: classifier: {{methods: [prompted, steered]}}")

    def _check_trained(self, where: str) -> None:
        """The shape of ``trained:``; the folders themselves are checked by the runner before any work."""
        if self.trained is None:
            self.trained = {}
        if not isinstance(self.trained, dict):
            raise CharbenchError(f"{where}: trained must be a mapping of variant names, got {self.trained!r}. {TRAINED_FIX}")
        for name, value in self.trained.items():
            if not isinstance(name, str) or not TRAINED_NAME.match(name):
                raise CharbenchError(f"{where}: trained variant name {name!r} must be letters, digits, '_', '.' or '-' "
                                     f"(it names step folders). {TRAINED_FIX}")
            if name in BUILT_IN_VARIANTS:
                raise CharbenchError(f"{where}: trained variant {name!r} clashes with the built-in variant of that "
                                     f"name; rename it (e.g. {name}-trained)")
            checkpoints = value.get("checkpoints") if isinstance(value, dict) and "build" in value else value
            if isinstance(value, dict) and "build" in value:
                if not isinstance(value["build"], str) or not value["build"].strip() or set(value) - {"build", "checkpoints"}:
                    raise CharbenchError(f"{where}: trained variant {name!r}: with build:, give exactly build: "
                                         f"'<shell command>' and checkpoints:, got {value!r}. {TRAINED_FIX}")
            if isinstance(checkpoints, str) and checkpoints.strip():
                continue
            if (isinstance(checkpoints, dict) and checkpoints
                    and all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in checkpoints.items())):
                continue
            raise CharbenchError(f"{where}: trained variant {name!r} must be a folder or a persona -> folder mapping, "
                                 f"got {checkpoints!r}. {TRAINED_FIX}")


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if not path.exists():
        path = SUITE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise CharbenchError(f"no suite '{name_or_path}'; built-in suites: {', '.join(suite_names())}, or pass a YAML path")
    raw = load_yaml(path, "suite", fix="Fix: a suite is a YAML mapping with name, version, personas, classifier, steer_coef, "
                    "generate, tasks and optionally judge, trained, revisions and max_connections; the built-in suites are examples.")
    if "base_dir" in raw:
        raise CharbenchError(f"{path}: base_dir is not a suite field (relative paths start at the suite file's folder); "
                             "remove it")
    try:
        return Suite(**raw, base_dir=path.resolve().parent)
    except TypeError as exc:
        raise CharbenchError(f"{path}: {exc}; a suite has name, version, personas, classifier, steer_coef, generate, "
                             "tasks and optionally judge, trained, revisions and max_connections") from exc
