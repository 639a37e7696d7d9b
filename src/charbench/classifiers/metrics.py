"""Classification metrics (scikit-learn) with bootstrap intervals, and the held-out split."""

from __future__ import annotations

from collections import Counter

from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from charbench.classifiers.io import ClassifierError
from charbench.stats import Estimate, bootstrap_statistic


def break_character_f1(true: list[str], pred: list[str], labels: list[str] | None = None) -> float:
    """Macro-F1 over the personas in play (scikit-learn's definition)."""
    if not true:
        return float("nan")
    return float(f1_score(true, pred, labels=labels or sorted(set(true)), average="macro", zero_division=0))


def macro_f1_estimate(true: list[str], pred: list[str], labels: list[str], n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Macro-F1 with a percentile bootstrap over responses.

    A resample that happens to miss a persona is scored over the personas it contains, so the interval is not
    dragged down by a class that is absent by chance (scikit-learn would score it 0).
    """
    pairs = list(zip(true, pred))
    est = bootstrap_statistic(pairs, lambda ps: break_character_f1([t for t, _ in ps], [p for _, p in ps]), n_boot, seed)
    return type(est)(break_character_f1(true, pred, labels), est.low, est.high, est.n, est.se)


def split_and_validate(texts: list[str], labels: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if len(texts) != len(labels):
        raise ClassifierError(f"{len(texts)} texts but {len(labels)} labels")
    counts = Counter(labels)
    if len(counts) < 2:
        raise ClassifierError(f"a persona classifier needs at least two personas, got {sorted(counts)}")
    small = [k for k, v in counts.items() if v < 2]
    if small:
        raise ClassifierError(f"persona(s) {small} have fewer than 2 responses; generate more training responses")
    idx = list(range(len(texts)))
    train, val = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=labels)
    return sorted(train), sorted(val)


def validation_card(pred: list[str], true: list[str], all_labels: list[str], train_idx: list[int]) -> dict:
    labels = sorted(set(all_labels))
    f1 = macro_f1_estimate(true, pred, labels, n_boot=500)
    return {
        "val_accuracy": float(accuracy_score(true, pred)),
        "val_macro_f1": f1.value, "val_macro_f1_low": f1.low, "val_macro_f1_high": f1.high,
        "n_val": len(true), "n_train": len(train_idx),
        "n_per_class": dict(Counter(all_labels)),
    }
