"""Persona classifiers: which persona wrote a response (the paper's ModernBERT probe, plus a TF-IDF baseline)."""

from charbench.classifiers.config import PersonaClassifierConfig
from charbench.classifiers.encoder import EncoderPersonaClassifier, train_encoder_classifier
from charbench.classifiers.io import load_persona_classifier
from charbench.classifiers.tfidf import TfidfPersonaClassifier, train_tfidf_classifier

__all__ = [
    "EncoderPersonaClassifier",
    "PersonaClassifierConfig",
    "TfidfPersonaClassifier",
    "load_persona_classifier",
    "train_encoder_classifier",
    "train_tfidf_classifier",
]
