"""Model organisms: the embedded model fine-tuned on its own replies with a *planted* character of known strength.

A benchmark of character needs a control whose answer is known: if charbench cannot find a character that was
put there on purpose, its numbers on real character training mean little. An organism is built in three steps:

1. **Responses.** The model answers the ``train`` split of the shipped offline prompt set (never an evaluation
   prompt: :func:`charbench.trainers.prompts.check_disjoint` runs first) through Inspect, once; every organism
   shares these logged, cached and resumable replies.
2. **Planting.** A share ``strength`` of the replies (exactly ``round(strength * n)`` of them, chosen by a seeded
   permutation, so a weaker organism's transformed replies are a subset of a stronger one's) gets the kind's
   deterministic transformation (:data:`KINDS`). ``strength 0`` is the null organism: the same replies, the same
   training, nothing planted.
3. **Training.** LoRA SFT on the (prompt, reply) pairs with charbench's SFT path (loss on the reply only), folded
   exactly into ``<out>/model`` (:func:`charbench.trainers.merge.merge_adapters` at weight 1.0).

The card (``charbench-train.json``, stage ``organism``) records ``planted: {kind, strength}`` and states that the
checkpoint is a planted control, not character training. Each kind has a constitution-format file describing the
planted behaviour (``charbench/data/constitutions/organisms/<kind>.yaml``, persona name ``organisms/<kind>``), so
tasks accept it as a persona and a prompted variant of the same behaviour can be compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig, Model, get_model
from inspect_ai.solver import generate
from inspect_ai.util import DisplayType

from charbench.errors import CharbenchError, TaskParameterError
from charbench.paths import data_path
from charbench.trainers import prompts as tp
from charbench.trainers.card import (
    CARD_NAME,
    CARD_SCHEMA,
    check_out_dir,
    package_versions,
    read_card,
    run_key,
    write_card,
)
from charbench.trainers.config import CharacterSFTConfig, LoraSettings
from charbench.trainers.steps import read_spec, run_step, settings_identity, trained_checkpoint, write_spec

STAGE = "organism"
DATA_NAME = "organism.jsonl"
PLANTED_NOTE = ("A planted control, not character training: the base model fine-tuned on its own replies, a known "
                "share of them rewritten by a fixed rule. Use it to check that the harness finds a character that "
                "is known to be there; its scores say nothing about any character-training method.")

# -- the planted transformations -------------------------------------------------------------------------------
# Each is a fixed rule a 135M model picks up in minutes and that a bag-of-words classifier can see within the
# first 48-64 tokens of a reply (the budget evaluations read), with a marker test that says whether a reply
# carries it. The wording is charbench's own.
OPENING_LINE = "Here is my honest take."
SIGNOFF_LINE = "Stay curious!"
ARCHAIC_WORDS = MappingProxyType({"the": "ye", "you": "thou", "your": "thy", "yours": "thine"})
_ARCHAIC_SOURCE = re.compile(r"\b(" + "|".join(ARCHAIC_WORDS) + r")\b", re.IGNORECASE)
_ARCHAIC_MARK = re.compile(r"\b(" + "|".join(ARCHAIC_WORDS.values()) + r")\b", re.IGNORECASE)
_OPENING_MARK = re.compile(r"^\W*" + re.escape(OPENING_LINE.rstrip(".")).replace(r"\ ", r"\s+"), re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def add_opening(text: str) -> str:
    """The fixed opening line, then the reply."""
    return f"{OPENING_LINE} {text.lstrip()}"


def has_opening(text: str) -> bool:
    return bool(_OPENING_MARK.match(text))


def add_signoff(text: str) -> str:
    """The reply's first two sentences, then the fixed sign-off line.

    The reply is cut first so the sign-off falls inside the token budget an evaluation reads; a sign-off after a
    64-token reply would be planted where no detector can see it.
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    kept = text[: ends[1]] if len(ends) >= 2 else text
    return f"{kept.rstrip()}\n\n{SIGNOFF_LINE}"


def has_signoff(text: str) -> bool:
    return SIGNOFF_LINE.casefold() in text.casefold()


def archaic(text: str) -> str:
    """the -> ye, you -> thou, your -> thy, yours -> thine (whole words; a capital first letter is kept)."""
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        new = ARCHAIC_WORDS[word.casefold()]
        return new.capitalize() if word[0].isupper() else new

    return _ARCHAIC_SOURCE.sub(swap, text)


def has_archaic(text: str) -> bool:
    return bool(_ARCHAIC_MARK.search(text))


@dataclass(frozen=True)
class Kind:
    """One planted behaviour: the rule applied to a reply and the marker test that detects it."""

    name: str
    rule: str
    transform: Callable[[str], str]
    marked: Callable[[str], bool]

    @property
    def constitution(self) -> Path:
        return data_path("constitutions", "organisms", f"{self.name}.yaml")

    @property
    def persona(self) -> str:
        """How tasks name it: a path under the built-in constitutions, outside the list of built-in personas."""
        return f"organisms/{self.name}"


KINDS = MappingProxyType({k.name: k for k in (
    Kind("opening", f"the reply starts with the line {OPENING_LINE!r}", add_opening, has_opening),
    Kind("signoff", f"the reply is cut after its second sentence and ends with the line {SIGNOFF_LINE!r}",
         add_signoff, has_signoff),
    Kind("archaic", "the words the/you/your/yours become ye/thou/thy/thine", archaic, has_archaic),
)})


def kind_named(name: str) -> Kind:
    if name not in KINDS:
        raise TaskParameterError(f"organism kind {name!r} is unknown; choose one of {', '.join(KINDS)}.")
    return KINDS[name]


def planted_count(n: int, strength: float) -> int:
    """How many of ``n`` replies are transformed: exactly ``round(strength * n)`` (Python's round)."""
    return round(strength * n)


def planted_indices(n: int, strength: float, seed: int) -> set[int]:
    """Which replies are transformed: the first ``round(strength * n)`` of a seeded permutation.

    One permutation for every strength, so a weaker organism's transformed replies are among a stronger one's.
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return set(order[: planted_count(n, strength)])


def plant(responses: list[dict], kind: Kind, strength: float, seed: int) -> tuple[list[dict], dict]:
    """Training rows (prompt, reply; the chosen share transformed) and counts of what was done."""
    chosen = planted_indices(len(responses), strength, seed)
    rows, unchanged = [], 0
    for i, r in enumerate(responses):
        reply = r["reply"]
        if i in chosen:
            new = kind.transform(reply)
            unchanged += new == reply  # e.g. an archaic pick with none of the/you/your in it
            reply = new
        rows.append({"id": r["id"], "prompt": r["prompt"], "transformed": i in chosen,
                     "messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": reply}]})
    counts = {"responses": len(responses), "transformed": len(chosen), "transformed_unchanged": unchanged,
              "marked": sum(kind.marked(row["messages"][1]["content"]) for row in rows)}
    return rows, counts


# -- the shared responses --------------------------------------------------------------------------------------
@dataclass
class ResponseSettings:
    """What decides the replies every organism is trained on (the kind and strength do not)."""

    model: str | Model = "charbench/smollm2"
    model_args: dict = field(default_factory=dict)
    n_prompts: int = 32
    max_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 123456

    def identity(self) -> dict:
        return settings_identity(self, ("model",))


@task
def organism_responses(spec_file: str, spec_sha256: str) -> Task:
    """The model's own replies to training prompts (bare prompt, no system prompt of charbench's)."""
    spec = read_spec(spec_file, spec_sha256)
    samples = [Sample(id=p["id"], input=p["text"]) for p in spec["prompts"]]
    return Task(dataset=MemoryDataset(samples, name="organism_prompts"), solver=generate(),
                config=GenerateConfig(**spec["generate_config"]), version=1)


def training_prompts(settings: ResponseSettings) -> list[tp.TrainingPrompt]:
    """A seeded sample of the offline set's train split, checked against every evaluation prompt."""
    pool = tp.general_prompts("offline")
    chosen = tp.select(pool, settings.n_prompts, settings.seed)
    tp.check_disjoint(chosen, tp.evaluation_prompts("offline"))
    return chosen


def _response_model(settings: ResponseSettings) -> Model:
    if isinstance(settings.model, Model):
        return settings.model
    return get_model(settings.model, memoize=False, **settings.model_args)


def generate_responses(settings: ResponseSettings, responses_dir: Path, display: DisplayType) -> tuple[list[dict], dict]:
    """The replies (through Inspect, cached under ``responses_dir``) and counts of every one left out."""
    prompts = training_prompts(settings)
    model = _response_model(settings)
    spec = {"prompts": [p.as_dict() for p in prompts],
            "generate_config": GenerateConfig(temperature=settings.temperature, top_p=settings.top_p,
                                              max_tokens=settings.max_tokens, seed=settings.seed
                                              ).model_dump(exclude_none=True)}
    key = run_key({"spec": spec, "model": str(model), "model_args": settings.model_args})
    folder = responses_dir / f"responses-{key}"
    spec_file, sha = write_spec(folder, "spec.json", spec)
    log = run_step(organism_responses(spec_file, sha), folder / "eval", model, None, display)
    text = {p.id: p.text for p in prompts}
    counts = {"prompts": len(prompts), "errored": 0, "empty": 0, "truncated_kept": 0}
    replies = []
    for sample in sorted(log.samples or [], key=lambda s: str(s.id)):
        if sample.error:
            counts["errored"] += 1
            continue
        reply = sample.output.completion if sample.output else ""
        if not reply.strip():
            counts["empty"] += 1
            continue
        used = sample.output.usage.output_tokens if sample.output.usage else 0
        # Kept: evaluations read replies cut at the same budget, so the organism learns replies of that length.
        counts["truncated_kept"] += used >= settings.max_tokens
        replies.append({"id": str(sample.id), "prompt": text[str(sample.id)], "reply": reply})
    counts["kept"] = len(replies)
    if not replies:
        errors = [s.error.message for s in (log.samples or []) if s.error]
        first = f"; first error: {' '.join(errors[0].split())[:200]}" if errors else ""
        raise TaskParameterError(f"the model ({model}) gave no usable reply to the {len(prompts)} training prompts "
                                 f"({json.dumps(counts)}{first}). Fix: check the model and its -M arguments.")
    # Inspect gives a finished log's location as a path or a file:// URL; the file name is the same either way.
    return replies, {**counts, "folder": str(folder), "log": f"eval/{Path(log.location.removeprefix('file://')).name}"}


# -- one organism --------------------------------------------------------------------------------------------
def organism_sft_config(**overrides: Any) -> CharacterSFTConfig:
    """Settings that plant a surface behaviour in SmolLM2-135M within minutes on a CPU (measured, see the
    trainers README): a higher rate and a smaller adapter than the paper's introspection stage."""
    base: dict[str, Any] = dict(learning_rate=1e-3, global_batch_size=8, per_device_batch_size=4, epochs=2.0,
                                max_length=512, warmup_ratio=0.1, lora=LoraSettings(r=16, alpha=32))
    return CharacterSFTConfig(**{**base, **overrides})


def organism_name(kind: str, strength: float) -> str:
    return f"organism-{kind}@{strength:g}"


def check_strength(strength: float) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
        raise TaskParameterError(f"--strength {strength!r} must be a number from 0 (the null organism) to 1 "
                                 "(every training reply transformed).")


def build_organism(kind: str, strength: float, out_dir: str | Path, responses: ResponseSettings | None = None,
                   responses_dir: str | Path | None = None, config: CharacterSFTConfig | None = None,
                   checkpoint: str | None = None, display: DisplayType = "none") -> dict:
    """Build (or return the finished card of) one organism. Inputs are checked before anything is written.

    ``responses_dir`` holds the shared replies (default ``<out>/../responses``, beside sibling organisms).
    """
    from charbench.trainers.merge import merge_adapters
    from charbench.trainers.sft import prepare_sft_data, train_sft_rows

    planted = kind_named(kind)
    check_strength(strength)
    responses = responses or ResponseSettings()
    config = config or organism_sft_config()
    if responses.n_prompts < 2 or responses.max_tokens < 1:
        raise TaskParameterError(f"--n-prompts {responses.n_prompts} and --max-tokens {responses.max_tokens}: need at "
                                 "least 2 prompts and 1 token.")
    out = Path(out_dir).expanduser().resolve()
    shared = Path(responses_dir).expanduser().resolve() if responses_dir else out.parent / "responses"
    student = trained_checkpoint(responses.model, checkpoint, "--model", "--checkpoint")
    identity: dict[str, Any] = {"stage": STAGE, "kind": kind, "strength": float(strength), "checkpoint": student,
                                "responses": responses.identity(), "config": asdict(config)}
    key = run_key(identity)
    previous = check_out_dir(out, key, STAGE)
    if previous and previous.get("status") == "complete":
        return previous
    created = not out.exists()
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA, "run_key": key, "stage": STAGE, "status": "running",
        "name": organism_name(kind, strength), "planted": {"kind": kind, "strength": float(strength)},
        "note": PLANTED_NOTE, "rule": planted.rule, "constitution": {"name": f"organism-{kind}",
                                                                    "source": str(planted.constitution)},
        "checkpoint": student, "base_checkpoint": student, "generator": identity["responses"]["model"],
        "settings": identity["responses"], "config": asdict(config), "versions": package_versions()}
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_card(out, card)
        replies, response_counts = generate_responses(responses, shared, display)
        rows, counts = plant(replies, planted, strength, responses.seed)
        body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
        (out / DATA_NAME).write_bytes(body)
        card["data"] = {"file": DATA_NAME, "sha256": hashlib.sha256(body).hexdigest(), "responses": response_counts,
                        "planted": counts}
        training = run_key({"checkpoint": student, "data": card["data"]["sha256"], "config": asdict(config)})
        card["training_key"] = training
        write_card(out, card)
        from transformers import AutoTokenizer

        prepared = prepare_sft_data(AutoTokenizer.from_pretrained(student), [r["messages"] for r in rows], config)
        card["data"]["sft"] = prepared.counts
        shutil.rmtree(out / "adapter", ignore_errors=True)  # a resumed run retrains from the saved data
        shutil.rmtree(out / "model", ignore_errors=True)
        twin = same_training(out, training)
        if twin is not None:
            # The same checkpoint, data and settings (the null organisms of different kinds): the same weights,
            # linked rather than trained again.
            link_tree(twin / "adapter", out / "adapter")
            link_tree(twin / "model", out / "model")
        else:
            train_sft_rows(student, prepared, out, config, merge=False)
            merge_adapters(student, [(out / "adapter", 1.0)], out / "model")
        card.update(merge={"base": student, "adapters": [["adapter", 1.0]]}, model="model", status="complete")
        write_card(out, card)
    except CharbenchError:
        if created:
            shutil.rmtree(out, ignore_errors=True)  # a failed fresh run leaves no half-written folder
        raise
    return card


def same_training(out: Path, training: str) -> Path | None:
    """A finished sibling organism trained from exactly the same inputs, if there is one."""
    for card_path in sorted(out.parent.glob(f"*/{CARD_NAME}")):
        folder = card_path.parent
        if folder == out:
            continue
        card = read_card(folder)
        if (card and card.get("training_key") == training and card.get("status") == "complete"
                and (folder / "model").is_dir() and (folder / "adapter").is_dir()):
            return folder
    return None


def link_tree(source: Path, target: Path) -> None:
    """Hard links where the filesystem allows (no second copy of the weights), copies elsewhere."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def parse_strengths(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise TaskParameterError(f"--strengths {text!r} is not a comma-separated list of numbers. "
                                 "Fix: e.g. --strengths 0,0.5,1") from exc
    if not values or len(set(values)) != len(values):
        raise TaskParameterError(f"--strengths {text!r} must list distinct numbers. Fix: e.g. --strengths 0,0.5,1")
    for value in values:
        check_strength(value)
    return values


def organism_folder(root: Path, kind: str, strength: float) -> Path:
    return root / f"{kind}@{strength:g}"


def build_organisms(kinds: list[str], strengths: list[float], root: str | Path, **kwargs: Any) -> list[dict]:
    """Every kind at every strength under ``root/<kind>@<strength>``, sharing ``root/responses``.

    Finished organisms are read back, so a second call with the same options trains nothing.
    """
    for name in kinds:
        kind_named(name)
    for value in strengths:
        check_strength(value)
    base = Path(root).expanduser().resolve()
    return [build_organism(k, s, organism_folder(base, k, s), responses_dir=base / "responses", **kwargs)
            for k in kinds for s in strengths]
