"""User-prompt sets.

``offline`` ships with the package (written for charbench, with a fixed train/eval split that share no
prompt). ``wildchat``, ``pure-dove`` and ``lima`` are the paper's sources, loaded from the Hugging Face Hub
at a pinned revision for users who can reach it (``pip install charbench[hub]``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from charbench.errors import TaskParameterError
from charbench.paths import data_path

SPLITS = ("train", "eval", "all")


@dataclass(frozen=True)
class HubPromptSource:
    repo: str
    revision: str | None
    split: str
    text_field: str
    config: str | None = None


# Revisions are pinned so two runs read the same prompts; update them deliberately.
HUB_SOURCES = {
    # LIMA's main branch as of 2025 (the dataset is gated: log in with a token that has access).
    "lima": HubPromptSource("GAIR/lima", "68958e98267f5fb4a52a03ebcdae4ae59213fa7c", "train", "conversations"),
    # No revision verified from this offline machine: the loader refuses a floating ref, so pass
    # ``prompt_revision=<commit sha>`` (or set the field here once checked).
    "wildchat": HubPromptSource("allenai/WildChat-1M", None, "train", "conversation"),
    "pure-dove": HubPromptSource("LDJnr/Pure-Dove", None, "train", "conversation"),
}
PROMPT_SETS = ("offline", *HUB_SOURCES)


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    category: str
    split: str


@cache
def _offline() -> tuple[Prompt, ...]:
    path = data_path("prompts", "offline_prompts.jsonl")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple(Prompt(r["id"], r["text"], r["category"], r["split"]) for r in rows)


def _first_user_turn(record: dict, field: str) -> str | None:
    turns = record.get(field)
    if isinstance(turns, list) and turns:
        first = turns[0]
        if isinstance(first, dict):
            return first.get("content") or first.get("input")
        return str(first)
    return None


def _hub(name: str, limit: int | None, revision: str | None = None) -> tuple[Prompt, ...]:
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise TaskParameterError(f"prompt_set={name} reads the Hugging Face Hub: pip install 'charbench[hub]'") from exc
    src = HUB_SOURCES[name]
    revision = revision or src.revision
    if not revision:
        raise TaskParameterError(
            f"prompt_set={name} has no pinned revision; pass prompt_revision=<commit sha of {src.repo}> "
            "so that runs are reproducible (a floating branch is refused)."
        )
    ds = load_dataset(src.repo, src.config, split=src.split, revision=revision)
    out = []
    for i, record in enumerate(ds):
        text = _first_user_turn(record, src.text_field)
        if text:
            # Hub sets have no split of ours: a stable hash decides, so the split is fixed across runs.
            split = "train" if (hash_id(f"{name}-{i}") % 5) < 3 else "eval"
            out.append(Prompt(f"{name}-{i}", text, "hub", split))
        if limit and len(out) >= limit:
            break
    return tuple(out)


def hash_id(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def load_prompt_set(
    name: str = "offline", split: str = "eval", limit: int | None = None, revision: str | None = None
) -> list[Prompt]:
    """Prompts of one set and split (``train`` for classifier training and steering, ``eval`` for tests)."""
    if name not in PROMPT_SETS:
        raise TaskParameterError(f"prompt_set={name!r} is unknown; choose one of {PROMPT_SETS}.")
    if split not in SPLITS:
        raise TaskParameterError(f"split={split!r} is unknown; choose one of {SPLITS}.")
    if name == "offline" and revision is not None:
        raise TaskParameterError(f"prompt_revision={revision!r} only applies to Hub prompt sets; the offline set "
                                 "ships with charbench. Drop prompt_revision or choose prompt_set=wildchat/pure-dove/lima.")
    prompts = _offline() if name == "offline" else _hub(name, None, revision)
    chosen = [p for p in prompts if split == "all" or p.split == split]
    return chosen[:limit] if limit else chosen
