"""Classify each response's persona; macro-F1 per split with bootstrap intervals."""

from __future__ import annotations

from collections import defaultdict

from inspect_ai.scorer import Metric, SampleScore, Score, Target, metric, scorer
from inspect_ai.solver import TaskState

from charbench.classifiers.io import check_personas, load_persona_classifier
from charbench.classifiers.metrics import break_character_f1, macro_f1_estimate
from charbench.stats import bootstrap_statistic


def f1_report(rows: list[tuple[str, str, str]], n_boot: int = 500, seed: int = 0) -> dict[str, float]:
    """rows: (split, true persona, predicted persona). Keys: f1/<split> (+_low/_high), adversarial mean, per persona."""
    labels = sorted({t for _, t, _ in rows})
    by_split: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split, t, p in rows:
        by_split[split].append((t, p))
    out: dict[str, float] = {"n": float(len(rows))}
    for split, pairs in sorted(by_split.items()):
        est = macro_f1_estimate([t for t, _ in pairs], [p for _, p in pairs], labels, n_boot=n_boot, seed=seed)
        out[f"f1/{split}"], out[f"f1_low/{split}"], out[f"f1_high/{split}"] = est.value, est.low, est.high
        out[f"n/{split}"] = float(len(pairs))
    adversarial = [r for r in rows if r[0] != "default"]
    if adversarial:
        def mean_split_f1(sample: list[tuple[str, str, str]]) -> float:
            groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
            for s, t, p in sample:
                groups[s].append((t, p))
            vals = [break_character_f1([t for t, _ in g], [p for _, p in g]) for g in groups.values()]
            return sum(vals) / len(vals)

        est = bootstrap_statistic(adversarial, mean_split_f1, n_boot=n_boot, seed=seed)
        out["f1_adversarial_mean"], out["f1_adversarial_low"], out["f1_adversarial_high"] = est.value, est.low, est.high
        out["n_adversarial"] = float(len(adversarial))
    for persona in labels:
        true = [t == persona for _, t, _ in rows]
        pred = [p == persona for _, _, p in rows]
        tp = sum(a and b for a, b in zip(true, pred))
        denom = sum(true) + sum(pred)
        out[f"f1_persona/{persona}"] = 2 * tp / denom if denom else float("nan")
    return out


@metric
def break_character_metrics() -> Metric:
    def compute(scores: list[SampleScore]) -> dict[str, float]:
        rows = [(s.sample_metadata["split"], s.sample_metadata["persona"], str(s.score.answer)) for s in scores]
        return f1_report(rows)

    return compute


@scorer(metrics=[break_character_metrics()])
def persona_classifier_scorer(classifier: str, personas: list[str]):
    """Predict the persona of the final assistant turn with a trained charbench classifier."""
    clf = load_persona_classifier(classifier)
    check_personas(clf.labels, personas, classifier)

    async def score(state: TaskState, target: Target) -> Score:
        text = state.metadata.get("scored_text") or state.output.completion
        pred = clf.predict([text])[0]
        return Score(value="C" if pred == state.metadata["persona"] else "I", answer=pred,
                     metadata={"split": state.metadata["split"], "persona": state.metadata["persona"]})

    return score
