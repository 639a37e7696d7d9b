"""One config for the persona classifier; defaults follow the paper (appendix C)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class PersonaClassifierConfig:
    """Fine-tuning settings.

    Attributes:
        encoder: Hub id, local folder, or ``minilm`` (the embedded all-MiniLM-L6-v2). The paper used
            ``answerdotai/ModernBERT-base``; offline the embedded encoder stands in.
        kind: ``encoder`` (fine-tuned transformer) or ``tfidf`` (scikit-learn baseline).
        batch_size: 8, as in the paper.
        learning_rate: 5e-4, as in the paper (for ModernBERT-base); small encoders may prefer less.
        epochs: 1, as in the paper.
        max_length: tokens kept per response.
        val_fraction: share of training responses held out for the card's validation accuracy and F1.
        seed: seeds the split, head initialisation and batching.
    """

    encoder: str = "answerdotai/ModernBERT-base"
    kind: str = "encoder"
    batch_size: int = 8
    learning_rate: float = 5e-4
    epochs: int = 1
    max_length: int = 256
    val_fraction: float = 0.2
    weight_decay: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
