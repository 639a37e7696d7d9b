"""Classification metrics (scikit-learn) with bootstrap intervals, and the held-out split."""

from __future__ import annotations

from collections import Counter

from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupShuffleSplit, train_test_split

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


def split_and_validate(texts: list[str], labels: list[str], val_fraction: float, seed: int,
                       groups: list[str] | None = None) -> tuple[list[int], list[int]]:
    """Train/validation indices. With ``groups`` (the prompt of each response) whole prompts are held out.

    Each prompt is answered once per persona, so a response-level split puts a prompt's other personas in
    training; a classifier that keys on the prompt then predicts a *wrong* persona for the held-out one and
    validation accuracy falls below chance. Holding out whole prompts measures what evaluation will see.
    """
    if len(texts) != len(labels) or (groups is not None and len(groups) != len(texts)):
        raise ClassifierError(f"{len(texts)} texts, {len(labels)} labels, {len(groups or [])} groups: one of each per response")
    counts = Counter(labels)
    if len(counts) < 2:
        raise ClassifierError(f"a persona classifier needs at least two personas, got {sorted(counts)}")
    small = [k for k, v in counts.items() if v < 2]
    if small:
        raise ClassifierError(f"persona(s) {small} have fewer than 2 responses; generate more training responses")
    idx = list(range(len(texts)))
    if groups is not None and len(set(groups)) >= 2:
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        train, val = next(splitter.split(idx, labels, groups))
        return sorted(int(i) for i in train), sorted(int(i) for i in val)
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
