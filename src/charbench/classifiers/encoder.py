"""Fine-tuned transformer encoder persona classifier (ModernBERT-base in the paper)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from charbench.classifiers.config import PersonaClassifierConfig
from charbench.classifiers.io import data_hash, read_card, write_card
from charbench.classifiers.metrics import split_and_validate, validation_card


def resolve_encoder(name: str) -> str:
    if name == "minilm":
        from charbench.models.embedded import minilm_dir

        return str(minilm_dir())
    return name


class EncoderPersonaClassifier:
    def __init__(self, model, tokenizer, labels: list[str], max_length: int = 256, card: dict | None = None) -> None:
        self.model, self.tokenizer, self.labels = model.eval(), tokenizer, labels
        self.max_length, self.card = max_length, card or {}

    def predict(self, texts: list[str], batch_size: int = 16) -> list[str]:
        out: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(texts[start : start + batch_size], truncation=True, max_length=self.max_length,
                                       padding=True, return_tensors="pt")
                logits = self.model(**batch).logits
                out.extend(self.labels[i] for i in logits.argmax(dim=-1).tolist())
        return out

    def truncated(self, texts: list[str]) -> list[bool]:
        """Which texts exceed ``max_length`` tokens: the classifier reads only their first ``max_length``."""
        return count_truncated(self.tokenizer, texts, self.max_length)

    def save(self, out_dir: str | Path, card: dict) -> None:
        self.model.save_pretrained(out_dir, safe_serialization=True)
        self.tokenizer.save_pretrained(out_dir)
        write_card(Path(out_dir), {**card, "kind": "encoder", "labels": self.labels, "max_length": self.max_length})

    @classmethod
    def load(cls, path: str | Path) -> EncoderPersonaClassifier:
        card = read_card(path)
        model = AutoModelForSequenceClassification.from_pretrained(str(path), use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(model, tokenizer, card["labels"], card.get("max_length", 256), card)


def count_truncated(tokenizer, texts: list[str], max_length: int) -> list[bool]:
    # Special tokens count towards the limit, as they do when the classifier tokenizes with truncation.
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]] if texts else []
    return [n > max_length for n in lengths]


def _fit(model, tokenizer, texts: list[str], y: list[int], config: PersonaClassifierConfig) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = config.epochs * ((len(texts) + config.batch_size - 1) // config.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(1, steps)))
    rng = random.Random(config.seed)
    model.train()
    for _ in range(config.epochs):
        order = rng.sample(range(len(texts)), len(texts))
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            batch = tokenizer([texts[i] for i in idx], truncation=True, max_length=config.max_length,
                              padding=True, return_tensors="pt")
            loss = model(**batch, labels=torch.tensor([y[i] for i in idx])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    model.eval()


def build_encoder(encoder: str, labels: list[str], model=None, tokenizer=None):
    """A fresh classification head on ``encoder`` (or on a given model, e.g. a tiny random ModernBERT)."""
    if model is None:
        path = resolve_encoder(encoder)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
        tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def train_encoder_classifier(texts: list[str], labels: list[str], out_dir: str | Path,
                             config: PersonaClassifierConfig | None = None, model=None, tokenizer=None,
                             groups: list[str] | None = None) -> EncoderPersonaClassifier:
    """Fine-tune, record held-out accuracy and macro-F1 in the card, save as safetensors.

    ``groups``: the prompt of each response, so validation holds out whole prompts.
    """
    config = config or PersonaClassifierConfig()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    names = sorted(set(labels))
    train_idx, val_idx = split_and_validate(texts, labels, config.val_fraction, config.seed, groups)
    model, tokenizer = build_encoder(config.encoder, names, model, tokenizer)
    index = {l: i for i, l in enumerate(names)}
    _fit(model, tokenizer, [texts[i] for i in train_idx], [index[labels[i]] for i in train_idx], config)
    clf = EncoderPersonaClassifier(model, tokenizer, names, config.max_length)
    card = validation_card(clf.predict([texts[i] for i in val_idx]), [labels[i] for i in val_idx], labels, train_idx,
                           [groups[i] for i in val_idx] if groups is not None else None)
    cut = clf.truncated(texts)
    # Long responses are read only up to max_length tokens; the card says how many so a reader can judge.
    card.update(config=config.to_dict(), data_hash=data_hash(texts, labels),
                n_truncated_train=sum(cut[i] for i in train_idx), n_truncated_val=sum(cut[i] for i in val_idx),
                validated_model=f"the saved model itself, fit on the training part (n_train={len(train_idx)})")
    clf.save(out_dir, card)
    clf.card = read_card(out_dir)
    return clf
