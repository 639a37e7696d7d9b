"""Training prompts for distillation: the constitution's own, an optional model-written expansion, a general set.

None of them may be an evaluation prompt of any task: a model trained on the prompts it is later scored on
would show a gain that is memorisation, not character. ``check_disjoint`` enforces that before any training.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import asdict, dataclass

from charbench.constitutions import Constitution
from charbench.errors import TaskParameterError
from charbench.prompts import PROMPT_SETS, load_prompt_set

SOURCES = ("constitution", "expanded", "general")


@dataclass(frozen=True)
class TrainingPrompt:
    id: str
    text: str
    source: str  # one of SOURCES
    assertion: int | None = None  # index of the assertion an expanded prompt was written for

    def as_dict(self) -> dict:
        return asdict(self)


def normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.casefold()))


def too_similar(a: str, b: str, threshold: float = 0.5) -> bool:
    """Jaccard overlap of word sets above ``threshold``: near-copies add no variety, only weight."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return normalised(a) == normalised(b)
    return len(wa & wb) / len(wa | wb) > threshold


def text_id(text: str) -> str:
    return hashlib.sha256(normalised(text).encode()).hexdigest()[:12]


def constitution_prompts(constitution: Constitution) -> list[TrainingPrompt]:
    return [TrainingPrompt(f"c-{text_id(p)}", p, "constitution") for p in constitution.prompts]


def expansion_request(constitution: Constitution, assertion: str, n: int) -> str:
    """What the expander model is asked: ``n`` new user messages that would draw out one assertion."""
    examples = "\n".join(f"{i + 1}. {p}" for i, p in enumerate(constitution.prompts))
    return (
        f"An AI assistant is meant to have this character trait: \"{assertion}\"\n\n"
        f"Here are example messages a human user might send that give the assistant room to show its character:\n"
        f"{examples}\n\n"
        f"Write {n} new, varied user messages in the same spirit that would let the trait above show in a reply. "
        "Mix short requests, everyday questions and longer tasks. Do not mention the trait or that this is a test. "
        f"Answer with a numbered list only, one message per line, from 1 to {n}."
    )


_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.+?)\s*$")


def parse_numbered(text: str) -> list[str]:
    """The items of a numbered list; lines that are not list items (preambles, blank lines) are not prompts."""
    return [m.group(1).strip().strip('"') for line in text.splitlines() if (m := _NUMBERED.match(line))]


def dedupe(candidates: list[str], existing: list[str], limit: int | None = None,
           evaluation: set[str] | None = None) -> tuple[list[str], dict[str, int]]:
    """New prompts that are not copies or near-copies of one already kept; every rejection is counted."""
    kept: list[str] = []
    counts = {"offered": len(candidates), "duplicate": 0, "near_duplicate": 0, "evaluation_prompt": 0, "over_limit": 0}
    seen = {normalised(t) for t in existing}
    pool = list(existing)
    for text in candidates:
        norm = normalised(text)
        if evaluation is not None and norm in evaluation:
            counts["evaluation_prompt"] += 1
        elif norm in seen:
            counts["duplicate"] += 1
        elif any(too_similar(text, other) for other in pool):
            counts["near_duplicate"] += 1
        elif limit is not None and len(kept) >= limit:
            counts["over_limit"] += 1
        else:
            kept.append(text)
            seen.add(norm)
            pool.append(text)
    counts["kept"] = len(kept)
    return kept, counts


def general_prompts(prompt_set: str = "offline", revision: str | None = None) -> list[TrainingPrompt]:
    """The ``train`` split of a prompt set (the shipped offline set by default; Hub sets at a pinned revision)."""
    if prompt_set not in PROMPT_SETS:
        raise TaskParameterError(f"--prompt-set {prompt_set!r} is unknown; choose one of {PROMPT_SETS}.")
    return [TrainingPrompt(f"g-{p.id}", p.text, "general") for p in load_prompt_set(prompt_set, split="train", revision=revision)]


def evaluation_prompts(prompt_set: str = "offline", revision: str | None = None) -> set[str]:
    """Normalised texts that tasks score on: the ``eval`` split of the shipped set and of the chosen set."""
    texts = {normalised(p.text) for p in load_prompt_set("offline", split="eval")}
    if prompt_set != "offline":
        texts |= {normalised(p.text) for p in load_prompt_set(prompt_set, split="eval", revision=revision)}
    return texts


def check_disjoint(prompts: list[TrainingPrompt], evaluation: set[str]) -> None:
    overlap = [p for p in prompts if normalised(p.text) in evaluation]
    if overlap:
        shown = "; ".join(f"{p.source} prompt {p.text[:60]!r}" for p in overlap[:3])
        raise TaskParameterError(
            f"{len(overlap)} training prompt(s) are evaluation prompts of charbench tasks ({shown}). Training on them "
            "would inflate every score measured on them. Fix: remove them from the constitution's prompts, or pick "
            "another --prompt-set."
        )


def select(prompts: list[TrainingPrompt], n_prompts: int | None, seed: int) -> list[TrainingPrompt]:
    """Character prompts first (they are few and the point of the run), then a seeded sample of the rest."""
    if n_prompts is None or n_prompts >= len(prompts):
        return list(prompts)
    own = [p for p in prompts if p.source != "general"]
    general = [p for p in prompts if p.source == "general"]
    if n_prompts <= len(own):
        return own[:n_prompts]
    rng = random.Random(seed)
    return own + rng.sample(general, n_prompts - len(own))
