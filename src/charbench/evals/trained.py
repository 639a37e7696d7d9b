"""A suite's trained variants: ``charbench train`` output folders, resolved and checked before any work.

A trained variant is one folder (one checkpoint, whose persona is its card's constitution) or one folder per
persona (the paper's design: each persona trained separately). Each folder holds ``charbench-train.json`` with
status ``complete`` and the merged checkpoint in ``model/``, which runs as ``charbench//<abs folder>/model``.

Its leaderboard row is named from the cards, never from a path: a single checkpoint by its card
(``sarcastic-dpo-3f2a1c``: constitution, stage, short run key), a per-persona mapping by the suite's variant name
and the cards' common stage (``paper: {sarcastic: ..., remorseful: ...}`` of DPO runs is ``paper-dpo``). The
runner records the name and the cards in each step's eval metadata (:data:`VARIANT_KEY`, :data:`TRAINED_KEY`),
where ``charbench.leaderboard.logs`` reads them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from charbench.errors import CharbenchError
from charbench.evals.suites import Suite
from charbench.paths import charbench_home
from charbench.trainers.card import CARD_NAME, card_constitution, card_row_name, card_stage, card_summary, read_card

VARIANT_KEY = "charbench_variant"  # eval metadata: the leaderboard row name of the model under test
TRAINED_KEY = "charbench_trained"  # eval metadata: the cards of the trained checkpoints a step ran
OPPONENT_KEY = "charbench_opponent"  # eval metadata: the variant the model under test was compared with
POOL_KEY = "charbench_pool_personas"  # eval metadata: this step is one persona of a mean over the suite's personas
PERSONA_KEY = "charbench_persona"  # eval metadata: the persona of such a step
PERSONA_ARG = "constitution"  # the task argument naming a single-persona task's persona


def persona_name(persona: str) -> str:
    """A persona as a card names it: the constitution's own name (a built-in name or a file's ``name:``)."""
    from charbench.constitutions import load_constitution

    try:
        return load_constitution(persona).name
    except CharbenchError:
        return persona.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")


def expand_path(text: str, base_dir: Path | None) -> Path:
    """``~`` and environment variables expanded (``$CHARBENCH_HOME`` defaults as charbench's own home does);
    a relative path starts at the suite file's folder."""
    if "CHARBENCH_HOME" not in os.environ:
        text = text.replace("${CHARBENCH_HOME}", str(charbench_home())).replace("$CHARBENCH_HOME", str(charbench_home()))
    path = Path(os.path.expandvars(os.path.expanduser(text)))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path.resolve()


@dataclass(frozen=True)
class TrainedCheckpoint:
    """One finished ``charbench train`` folder."""

    folder: Path
    card: dict

    @property
    def model(self) -> str:
        """The Inspect model string of its merged checkpoint (``charbench//abs/folder/model``)."""
        return f"charbench/{self.folder / 'model'}"

    @property
    def persona(self) -> str:
        return card_constitution(self.card)

    @property
    def name(self) -> str:
        return card_row_name(self.card)

    @property
    def stage(self) -> str:
        return card_stage(self.card)

    def summary(self) -> dict:
        return card_summary(self.card, self.folder)


@dataclass(frozen=True)
class TrainedVariant:
    """A suite's ``trained:`` entry: its checkpoints by persona name, and how to build them."""

    name: str
    checkpoints: dict[str, TrainedCheckpoint]  # persona name (as its card names it) -> checkpoint
    per_persona: bool  # given as a persona -> folder mapping
    build: str | None = None

    @property
    def stage(self) -> str:
        return next(iter(self.checkpoints.values())).stage

    @property
    def row_name(self) -> str:
        """One checkpoint: its card's name. A mapping: the suite's variant name and the stage."""
        if not self.per_persona:
            return next(iter(self.checkpoints.values())).name
        return f"{self.name}-{self.stage}"

    def fix(self) -> str:
        return (f"Fix: run `{self.build}` (the suite's build: command for {self.name})" if self.build else
                "Fix: make it with `charbench train distill` (then `charbench train introspect` for an introspection "
                "variant) and point trained: at its --out folder")

    def checkpoint_for(self, persona: str, where: str) -> TrainedCheckpoint:
        """The checkpoint that speaks for ``persona``; a single checkpoint speaks for the persona it was trained on."""
        if not self.per_persona:
            return next(iter(self.checkpoints.values()))
        found = self.checkpoints.get(persona_name(persona))
        if found is None:
            raise CharbenchError(
                f"trained variant {self.name} has no checkpoint for persona {persona}, which {where} uses (it has "
                f"{', '.join(sorted(self.checkpoints))}). Fix: add {persona}: <charbench train folder> to trained: "
                f"{self.name}, or drop {self.name} from that entry")
        return found

    def metadata(self, checkpoints: list[TrainedCheckpoint]) -> dict:
        """What the step's log records: the row name, and the card of every checkpoint it runs."""
        return {VARIANT_KEY: self.row_name,
                TRAINED_KEY: {"variant": self.name, "per_persona": self.per_persona,
                              "checkpoints": {c.persona: c.summary() for c in checkpoints}}}


def _load_checkpoint(variant: str, text: str, base_dir: Path | None, fix: str) -> TrainedCheckpoint:
    folder = expand_path(text, base_dir)
    what = f"trained variant {variant}: {folder}"
    if not folder.exists():
        raise CharbenchError(f"{what} does not exist. {fix}")
    if not folder.is_dir():
        raise CharbenchError(f"{what} is a file, not a charbench train output folder. {fix}")
    if not (folder / CARD_NAME).exists():
        raise CharbenchError(f"{what} holds no {CARD_NAME}, so it is not a charbench train output folder. {fix}")
    try:
        card = read_card(folder)
    except CharbenchError as exc:
        raise CharbenchError(f"{what}: its {CARD_NAME} cannot be read ({exc}). {fix}") from exc
    assert card is not None  # read_card returns None only when the file is absent, checked above
    if card.get("status") != "complete":
        raise CharbenchError(f"{what} is a {card.get('stage')} run with status {card.get('status')!r}, not complete "
                             f"(interrupted, or --data-only). {fix}; repeating the same charbench train command resumes it")
    if not (folder / "model").is_dir():
        raise CharbenchError(f"{what}: the card says complete but model/ is missing. {fix}")
    return TrainedCheckpoint(folder, card)


def load_trained_variant(name: str, value: object, base_dir: Path | None) -> TrainedVariant:
    """One ``trained:`` entry, its folders and cards checked (the shape was checked by the Suite)."""
    build = value.get("build") if isinstance(value, dict) and "build" in value else None
    spec = value.get("checkpoints") if isinstance(value, dict) and "build" in value else value
    partial = TrainedVariant(name, {}, isinstance(spec, dict), build)
    fix = partial.fix()
    if isinstance(spec, str):
        checkpoint = _load_checkpoint(name, spec, base_dir, fix)
        return TrainedVariant(name, {checkpoint.persona: checkpoint}, False, build)
    assert isinstance(spec, dict)
    checkpoints: dict[str, TrainedCheckpoint] = {}
    for persona, text in spec.items():
        checkpoint = _load_checkpoint(name, text, base_dir, fix)
        wanted = persona_name(persona)
        if checkpoint.persona != wanted:
            raise CharbenchError(f"trained variant {name}: {checkpoint.folder} was trained toward "
                                 f"{checkpoint.persona!r}, but is listed for persona {persona!r}. Fix: list it under "
                                 f"{checkpoint.persona}, or point {persona} at a checkpoint trained toward it")
        checkpoints[wanted] = checkpoint
    stages = sorted({c.stage for c in checkpoints.values()})
    if len(stages) > 1:
        raise CharbenchError(f"trained variant {name} mixes stages {', '.join(stages)} across its personas; one variant "
                             "is one training recipe. Fix: give each stage its own trained: name")
    return TrainedVariant(name, checkpoints, True, build)


def load_trained(suite: Suite) -> dict[str, TrainedVariant]:
    """Every trained variant of ``suite``, each folder and card checked."""
    return {name: load_trained_variant(name, value, suite.base_dir) for name, value in (suite.trained or {}).items()}
