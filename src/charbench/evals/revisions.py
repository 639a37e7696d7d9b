"""Which Hugging Face Hub datasets a planned suite reads, and at which revision.

A step reads the Hub when its prompt set is a Hub set (``prompt_set: wildchat``, revision in the task argument
``prompt_revision``) or when its task contract names a Hub dataset and the step asks for it (``source: hub``,
revision in ``revision``; the capability tasks). Each such step gets its revision from, first to last: the suite
entry's own args, ``--revision REPO=REV`` on the command line, the suite's ``revisions:`` mapping, the pin shipped
in ``charbench.prompts``. A step left without one, or given a branch name, is refused before anything loads, with
the option that fixes it; a ``--revision`` that no step reads is refused too (a typo would otherwise run the
floating default it meant to pin).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from charbench.errors import CharbenchError

FLOATING_REFS = ("main", "master", "refs/heads/main", "refs/heads/master")


@dataclass(frozen=True)
class HubData:
    """One Hub dataset a step reads, the task argument that carries its revision, and where the revision came from."""

    repo: str
    argument: str
    revision: str | None
    origin: str  # "entry", "--revision", "suite", "pinned" or "missing"

    def describe(self) -> str:
        return f"{self.repo}@{self.revision or 'MISSING'} ({self.argument}, {self.origin})"


def parse_revision_options(values: Iterable[str] | None) -> dict[str, str]:
    """``--revision REPO=REV`` options as a mapping, each checked for its form."""
    revisions: dict[str, str] = {}
    for value in values or ():
        repo, sep, revision = value.partition("=")
        if not sep or "/" not in repo or not revision.strip():
            raise CharbenchError(f"--revision {value!r} is not REPO=REVISION; write e.g. "
                                 "--revision allenai/WildChat-1M=<commit sha>")
        revisions[repo.strip()] = revision.strip()
    return revisions


def step_hub_data(task_args: Mapping[str, Any], hub_dataset: str | None,
                  revisions: Mapping[str, str], suite_revisions: Mapping[str, str]) -> list[HubData]:
    """The Hub datasets one step reads (none for the shipped offline data)."""
    from charbench.prompts import HUB_SOURCES

    wanted: list[tuple[str, str, str | None]] = []  # (repo, revision argument, pinned revision)
    prompt_set = task_args.get("prompt_set")
    if isinstance(prompt_set, str) and prompt_set in HUB_SOURCES:
        source = HUB_SOURCES[prompt_set]
        wanted.append((source.repo, "prompt_revision", source.revision))
    if hub_dataset and task_args.get("source") == "hub":
        wanted.append((hub_dataset, "revision", None))
    found = []
    for repo, argument, pinned in wanted:
        for origin, revision in (("entry", task_args.get(argument)), ("--revision", revisions.get(repo)),
                                 ("suite", suite_revisions.get(repo)), ("pinned", pinned)):
            if revision:
                found.append(HubData(repo, argument, str(revision), origin))
                break
        else:
            found.append(HubData(repo, argument, None, "missing"))
    return found


def check_hub_data(step_name: str, data: Iterable[HubData]) -> None:
    """Refuse a Hub dataset without a revision, or at a branch that moves."""
    for item in data:
        if item.revision is None:
            raise CharbenchError(
                f"step {step_name} reads {item.repo} from the Hugging Face Hub and no revision is pinned for it. "
                f"Fix: --revision {item.repo}=<commit sha> (or revisions: {{{item.repo}: <commit sha>}} in the suite); "
                "runs at a floating branch are not reproducible")
        if item.revision in FLOATING_REFS:
            raise CharbenchError(
                f"step {step_name} reads {item.repo} at the branch {item.revision!r}, which moves. Fix: pin a commit "
                f"sha or tag with --revision {item.repo}=<commit sha>")


def check_unused(revisions: Mapping[str, str], used: set[str]) -> None:
    """A ``--revision`` for a dataset no step reads is a mistake (most often a misspelt repository)."""
    unused = sorted(set(revisions) - used)
    if unused:
        reads = ", ".join(sorted(used)) or "no Hub dataset"
        raise CharbenchError(f"--revision given for {', '.join(unused)}, which no step of this suite reads from the Hub "
                             f"(it reads: {reads}). Fix: spell the repository as listed, or drop the option")


def _step_data(step: Any, revisions: Mapping[str, str], suite_revisions: Mapping[str, str]) -> list[HubData]:
    from charbench.tasks.contract import contract_for

    contract = contract_for(step.task)
    return step_hub_data(step.task_args, contract.hub_dataset if contract else None, revisions, suite_revisions)


def pin_revisions(plan: Any, revisions: Mapping[str, str] | None = None) -> None:
    """Write each Hub dataset's revision into its step's task arguments, so the log records it.

    ``revisions`` are the ``--revision`` options; the suite's ``revisions:`` and charbench's pins fill the rest.
    A revision no step reads is refused; a step still without one is refused by :func:`check_plan_revisions`.
    """
    revisions = dict(revisions or {})
    suite_revisions = dict(getattr(plan.suite, "revisions", None) or {})
    used: set[str] = set()
    for step in plan.steps:
        for item in _step_data(step, revisions, suite_revisions):
            used.add(item.repo)
            if item.revision:
                step.task_args[item.argument] = item.revision
    check_unused(revisions, used)


def check_plan_revisions(plan: Any) -> None:
    """Every Hub dataset of every step has a fixed revision (run after :func:`pin_revisions`)."""
    for step in plan.steps:
        check_hub_data(step.name, _step_data(step, {}, {}))


def describe_step_data(step: Any) -> str:
    """The dry run's line for a step's Hub data."""
    data = _step_data(step, {}, {})
    return ", ".join(f"{d.repo}@{d.revision or 'MISSING'}" for d in data) or "none (data shipped with charbench)"


def missing_revisions_note(plan: Any) -> str:
    """The dry run's last line: the Hub datasets still without a revision, and the options that pin them."""
    missing = sorted({d.repo for step in plan.steps for d in _step_data(step, {}, {}) if not d.revision})
    if not missing:
        return "hub data: every Hub dataset has a fixed revision"
    fix = " ".join(f"--revision {repo}=<commit sha>" for repo in missing)
    return f"hub data: {len(missing)} Hub datasets have no revision, and the run will refuse them. Fix: {fix}"
