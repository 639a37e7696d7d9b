"""Saving and loading classifiers: safetensors weights, a label map and a card. Never pickles."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from charbench.errors import CharbenchError

CARD = "card.json"


class ClassifierError(CharbenchError, ValueError):
    pass


def data_hash(texts: list[str], labels: list[str]) -> str:
    h = hashlib.sha256()
    for t, l in zip(texts, labels):
        h.update(l.encode())
        h.update(b"\x00")
        h.update(t.encode())
        h.update(b"\x01")
    return h.hexdigest()[:16]


def write_card(out_dir: Path, card: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CARD).write_text(json.dumps(card, indent=2))


def read_card(path: str | Path) -> dict:
    p = Path(path).expanduser()
    if not p.exists():
        raise ClassifierError(f"classifier path {p} does not exist. Train one with `charbench classifier train --out {p}` or fix the path.")
    if not (p / CARD).exists():
        raise ClassifierError(f"{p} is not a charbench classifier (no {CARD}). Point at a folder written by charbench classifier train.")
    return json.loads((p / CARD).read_text())


def load_persona_classifier(path: str | Path):
    """Load either kind from its folder, chosen by the card."""
    card = read_card(path)
    if card.get("kind") == "tfidf":
        from charbench.classifiers.tfidf import TfidfPersonaClassifier

        return TfidfPersonaClassifier.load(path)
    from charbench.classifiers.encoder import EncoderPersonaClassifier

    return EncoderPersonaClassifier.load(path)


def check_personas(known: list[str], wanted: list[str], path: str) -> None:
    missing = sorted(set(wanted) - set(known))
    if missing:
        raise ClassifierError(
            f"classifier at {path} was trained on personas {sorted(known)}, not on {missing}. "
            "Train a classifier that includes them (charbench classifier train --personas ...) or drop them from the task."
        )
