"""The training card, ``charbench-train.json``: what a trained checkpoint is, so leaderboards can name it.

A card is written when a run starts (status ``running``) and completed at the end. Its ``run_key`` hashes
everything that decides the result; an out dir whose card has another key belongs to another run and is
refused, so two runs never mix their data, logs or weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from charbench.errors import TaskParameterError

CARD_NAME = "charbench-train.json"
CARD_SCHEMA = 1
PACKAGES = ("charbench", "inspect-ai", "torch", "transformers", "trl", "peft", "datasets", "accelerate")


class OtherRunError(TaskParameterError):
    """An out dir holds the card of another training run (another run key or stage)."""


def constitution_identity(constitution: Any) -> dict:
    """What a constitution contributes to a run key: its content, not the path it was read from (the same
    built-in constitution is read from wherever the package is installed)."""
    identity = asdict(constitution)
    identity.pop("source", None)
    return identity


def run_key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def read_card(out_dir: Path) -> dict | None:
    path = out_dir / CARD_NAME
    if not path.exists():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TaskParameterError(f"{path} is not a readable training card ({exc}). Fix: use a new --out folder.") from exc
    if not isinstance(card, dict) or "run_key" not in card:
        raise TaskParameterError(f"{path} is not a charbench training card (no run_key). Fix: use a new --out folder.")
    return card


def check_out_dir(out_dir: Path, key: str, stage: str) -> dict | None:
    """The existing card of this same run (to resume), None for a fresh folder; anything else is refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TaskParameterError(f"--out {out_dir} is a file. Fix: give a folder path (it is created if missing).")
    card = read_card(out_dir) if out_dir.exists() else None
    if card is None:
        if out_dir.exists() and any(out_dir.iterdir()):
            raise TaskParameterError(
                f"--out {out_dir} is not empty and holds no {CARD_NAME}, so it is not a charbench training folder. "
                "Fix: give an empty or new folder.")
        return None
    if card.get("run_key") != key or card.get("stage") != stage:
        raise OtherRunError(
            f"--out {out_dir} holds another training run ({CARD_NAME}: stage {card.get('stage')!r}, constitution "
            f"{card.get('constitution', {}).get('name')!r}, base {card.get('base_checkpoint')!r}, run key "
            f"{card.get('run_key')}; this run's key is {key}). Nothing was written. Fix: use a new --out folder, "
            "or repeat that run's exact options to resume it.")
    return card


def write_card(out_dir: Path, card: dict) -> Path:
    path = out_dir / CARD_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a card
    return path


# -- the reading side: what a leaderboard row and a suite's `trained:` variant take from a card ------------------
def card_stage(card: dict) -> str:
    """The training recipe a card stands for: the introspection ablation (``full``, ``sr-only``, ``si-only``) of an
    SFT run, else the stage (``dpo``). These are the paper's named variants."""
    return str(card.get("ablation") or card.get("stage") or "trained")


def card_constitution(card: dict) -> str:
    constitution = card.get("constitution")
    name = constitution.get("name") if isinstance(constitution, dict) else constitution
    return str(name or "unknown")


def card_row_name(card: dict) -> str:
    """A trained checkpoint's leaderboard name: constitution, stage and the first 6 characters of its run key
    (``sarcastic-dpo-3f2a1c``). It never depends on where the folder lies, so a moved folder keeps its row."""
    return f"{card_constitution(card)}-{card_stage(card)}-{str(card.get('run_key', ''))[:6]}"


def planted_strength(card: dict) -> float | None:
    """The strength of a planted trait (``planted: {kind, strength}`` on model-organism cards), else None."""
    planted = card.get("planted")
    if not isinstance(planted, dict) or planted.get("strength") is None:
        return None
    try:
        return float(planted["strength"])
    except (TypeError, ValueError):
        return None


def card_summary(card: dict, folder: Path) -> dict:
    """What a log records about the trained checkpoint it ran (eval metadata ``charbench_trained``)."""
    summary = {"name": card_row_name(card), "folder": str(folder), "stage": card_stage(card),
               "constitution": card_constitution(card), "base_checkpoint": card.get("base_checkpoint"),
               "run_key": card.get("run_key")}
    strength = planted_strength(card)
    if strength is not None:
        summary["planted_strength"] = strength
        summary["planted_kind"] = (card.get("planted") or {}).get("kind")
    return summary
