"""Loading suites and turning them into Inspect runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from charbench.errors import CharbenchError
from charbench.yamlio import load_yaml

SUITE_DIR = Path(str(resources.files("charbench").joinpath("evals", "suites")))


@dataclass
class Suite:
    name: str
    version: int
    personas: list[str]
    classifier: dict
    steer_coef: float
    generate: dict
    tasks: list[dict] = field(default_factory=list)
    # The judge of every task that has one, the same model for every variant (see charbench.evals.runner).
    judge: str | None = None


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if not path.exists():
        path = SUITE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise CharbenchError(f"no suite '{name_or_path}'; built-in suites: {', '.join(suite_names())}, or pass a YAML path")
    raw = load_yaml(path, "suite", fix="Fix: a suite is a YAML mapping with name, version, personas, classifier, steer_coef, "
                    "generate, tasks and optionally judge; the built-in suites are examples.")
    try:
        return Suite(**raw)
    except TypeError as exc:
        raise CharbenchError(f"{path}: {exc}; a suite has name, version, personas, classifier, steer_coef, generate, tasks and optionally judge") from exc
