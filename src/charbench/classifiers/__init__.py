"""Persona classifiers: which persona wrote a response (the paper's ModernBERT probe, plus a TF-IDF baseline).

The names below are resolved on first use, so that importing a light submodule (``charbench.classifiers.metrics``
from a task contract, ``charbench.classifiers.config`` from the CLI) does not pull in torch and transformers
through the encoder classifier.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from charbench.classifiers.config import PersonaClassifierConfig
    from charbench.classifiers.encoder import EncoderPersonaClassifier, train_encoder_classifier
    from charbench.classifiers.io import load_persona_classifier
    from charbench.classifiers.tfidf import TfidfPersonaClassifier, train_tfidf_classifier

_HOMES = {
    "EncoderPersonaClassifier": "encoder",
    "PersonaClassifierConfig": "config",
    "TfidfPersonaClassifier": "tfidf",
    "load_persona_classifier": "io",
    "train_encoder_classifier": "encoder",
    "train_tfidf_classifier": "tfidf",
}

__all__ = [
    "EncoderPersonaClassifier",
    "PersonaClassifierConfig",
    "TfidfPersonaClassifier",
    "load_persona_classifier",
    "train_encoder_classifier",
    "train_tfidf_classifier",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'charbench.classifiers' has no attribute {name!r}")
    return getattr(import_module(f"charbench.classifiers.{home}"), name)
