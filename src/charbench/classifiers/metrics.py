"""Classification metrics (scikit-learn) with prompt-level bootstrap intervals, and the held-out split."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from charbench.classifiers.io import ClassifierError
from charbench.stats import Estimate, bootstrap_statistic


def break_character_f1(true: list[str], pred: list[str], labels: list[str] | None = None) -> float:
    """Macro-F1 over the personas in play (scikit-learn's definition)."""
    if not true:
        return float("nan")
    return float(f1_score(true, pred, labels=labels or sorted(set(true)), average="macro", zero_division=0))


def macro_f1_estimate(true: list[str], pred: list[str], labels: list[str], groups: list[str] | None = None,
                      n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Macro-F1 with a percentile bootstrap; ``Estimate.n`` is the number of resampled units.

    ``groups`` (the prompt of each response) makes it a cluster bootstrap: every response to a prompt (each
    persona, each adversarial split) enters or leaves a resample together. Those responses share the prompt's
    content, and a classifier that keys on it errs on all of them at once, so resampling responses as if
    independent makes the interval far too narrow. Without ``groups`` responses are the unit.

    A resample that happens to miss a persona is scored over the personas it contains, so the interval is not
    dragged down by a class that is absent by chance (scikit-learn would score it 0).
    """
    if len(true) != len(pred) or (groups is not None and len(groups) != len(true)):
        raise ClassifierError(f"{len(true)} true labels, {len(pred)} predictions, {len(groups or [])} prompt ids: "
                              "give one of each per response")
    point = break_character_f1(true, pred, labels)
    counts = unit_confusions(true, pred, groups)[:, 0]  # one stratum
    est = bootstrap_statistic(list(counts), lambda units: float(macro_f1_from_counts(np.sum(units, axis=0))), n_boot, seed)
    return replace(est, value=point)


def unit_confusions(true: list[str], pred: list[str], groups: list[str] | None,
                    strata: list[str] | None = None) -> np.ndarray:
    """Confusion counts per resampling unit, shape (units, strata, classes, classes).

    A resample's confusion matrix is the sum of its units' matrices, so each bootstrap draw is a sum instead
    of a pass over every response. Units are prompt ids (sorted), or single responses without ``groups``;
    ``strata`` (e.g. the adversarial split of each response) keep a separate matrix per stratum.
    """
    classes = sorted(set(true) | set(pred))
    unit_keys = sorted(set(groups)) if groups is not None else list(range(len(true)))
    stratum_keys = sorted(set(strata)) if strata is not None else [None]
    unit_of = {k: i for i, k in enumerate(unit_keys)}
    stratum_of = {k: i for i, k in enumerate(stratum_keys)}
    class_of = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(unit_keys), len(stratum_keys), len(classes), len(classes)), dtype=np.int64)
    for i, (t, p) in enumerate(zip(true, pred)):
        unit = unit_of[groups[i]] if groups is not None else i
        stratum = stratum_of[strata[i]] if strata is not None else 0
        out[unit, stratum, class_of[t], class_of[p]] += 1
    return out


def macro_f1_from_counts(matrix: np.ndarray) -> np.ndarray | float:
    """Macro-F1 of confusion matrices (..., true, predicted) over the classes that occur as a true label.

    The same number as ``break_character_f1`` on the responses behind the matrix (zero_division=0); NaN where
    no class occurs.
    """
    matrix = np.asarray(matrix, dtype=float)
    tp = np.diagonal(matrix, axis1=-2, axis2=-1)
    support = matrix.sum(axis=-1)
    predicted = matrix.sum(axis=-2)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    n_present = present.sum(axis=-1)
    total = np.where(present, f1, 0.0).sum(axis=-1)
    result = np.divide(total, n_present, out=np.full_like(total, np.nan), where=n_present > 0)
    return float(result) if result.ndim == 0 else result


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


def validation_card(pred: list[str], true: list[str], all_labels: list[str], train_idx: list[int],
                    val_groups: list[str] | None = None) -> dict:
    """Held-out figures for the card; with ``val_groups`` (prompt ids) the interval resamples prompts."""
    labels = sorted(set(all_labels))
    f1 = macro_f1_estimate(true, pred, labels, groups=val_groups, n_boot=500)
    return {
        "val_accuracy": float(accuracy_score(true, pred)),
        **f1.as_metrics("val_macro_f1"),
        "val_interval_unit": "prompt" if val_groups is not None else "response", "n_val_units": f1.n,
        "n_val": len(true), "n_train": len(train_idx),
        "n_per_class": dict(Counter(all_labels)),
    }
