"""TF-IDF + logistic regression: a fast path and a sanity baseline for the persona classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from charbench.classifiers.config import PersonaClassifierConfig
from charbench.classifiers.io import data_hash, read_card, write_card
from charbench.classifiers.metrics import split_and_validate


class TfidfPersonaClassifier:
    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 labels: list[str], card: dict | None = None) -> None:
        self.labels = labels
        self.card = card or {}
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, vocabulary=vocabulary)
        self.vectorizer.idf_ = idf
        self.coef, self.intercept = coef, intercept

    @classmethod
    def fit(cls, texts: list[str], labels: list[str], seed: int = 0) -> TfidfPersonaClassifier:
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=50000)
        x = vec.fit_transform(texts)
        clf = LogisticRegression(max_iter=2000, C=10.0, random_state=seed).fit(x, labels)
        coef = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_[0], clf.coef_[0]])
        intercept = clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0], clf.intercept_[0]])
        return cls({k: int(v) for k, v in vec.vocabulary_.items()}, vec.idf_, coef, intercept, [str(c) for c in clf.classes_])

    def predict(self, texts: list[str]) -> list[str]:
        scores = self.vectorizer.transform(texts) @ self.coef.T + self.intercept
        return [self.labels[i] for i in np.asarray(scores).argmax(axis=1)]

    def truncated(self, texts: list[str]) -> list[bool]:
        """Never: the vectorizer reads every word of a text (the encoder's counterpart reports cut texts)."""
        return [False] * len(texts)

    def save(self, out_dir: str | Path, card: dict) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file({"idf": self.vectorizer.idf_.astype(np.float64), "coef": self.coef.astype(np.float64),
                   "intercept": self.intercept.astype(np.float64)}, str(out / "tfidf.safetensors"))
        (out / "vocabulary.json").write_text(json.dumps(self.vectorizer.vocabulary_))
        write_card(out, {**card, "kind": "tfidf", "labels": self.labels})

    @classmethod
    def load(cls, path: str | Path) -> TfidfPersonaClassifier:
        card = read_card(path)
        arrays = load_file(str(Path(path) / "tfidf.safetensors"))
        vocab = json.loads((Path(path) / "vocabulary.json").read_text())
        return cls(vocab, arrays["idf"], arrays["coef"], arrays["intercept"], card["labels"], card)


def train_tfidf_classifier(texts: list[str], labels: list[str], out_dir: str | Path,
                           config: PersonaClassifierConfig | None = None,
                           groups: list[str] | None = None) -> TfidfPersonaClassifier:
    config = config or PersonaClassifierConfig(kind="tfidf")
    train_idx, val_idx = split_and_validate(texts, labels, config.val_fraction, config.seed, groups)
    model = TfidfPersonaClassifier.fit([texts[i] for i in train_idx], [labels[i] for i in train_idx], config.seed)
    from charbench.classifiers.metrics import validation_card

    card = validation_card(model.predict([texts[i] for i in val_idx]), [labels[i] for i in val_idx], labels, train_idx,
                           [groups[i] for i in val_idx] if groups is not None else None)
    card.update(config=config.to_dict() | {"kind": "tfidf"}, data_hash=data_hash(texts, labels),
                n_truncated_train=0, n_truncated_val=0,
                validated_model="fit on the training part only; the saved model is refit on all "
                                f"{len(texts)} responses after validation, so the val_ figures describe that "
                                f"earlier fit (n_train={len(train_idx)}), not the saved one")
    # The saved model uses every response; validating it would need data it has not seen, which we do not have.
    model = TfidfPersonaClassifier.fit(texts, labels, config.seed)
    model.save(out_dir, card)
    model.card = read_card(out_dir)
    return model
