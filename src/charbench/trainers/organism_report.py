"""Known-answer analysis: do charbench's detectors find the planted organisms, ordered by planted strength?

The base model and every organism answer the same held-out prompts (the ``eval`` split of the offline set, which
no organism was trained on) through Inspect; then, with the prompt as the resampled unit throughout:

* **marker rate** (ground truth): the share of replies carrying the kind's own marker. For an organism this is
  the strength it actually realised; for the base model it is each marker's false-positive rate.
* **organism vs base** (the persona classifier, TF-IDF as the harness trains it): accuracy of telling an
  organism's reply from the base model's reply to the same prompt, cross-validated with whole prompts held out.
  Chance is 0.5; the null organism should sit there, a strong one far above.
* **which organism** (the break-character setting): macro-F1 of naming the kind among the organisms of one
  strength, prompts held out. Chance is 1/number of kinds.
* **Spearman** between planted strength and each detector's output across organisms, with a prompt bootstrap.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from charbench.errors import TaskParameterError
from charbench.stats import Estimate, bootstrap_statistic
from charbench.trainers.card import CARD_NAME, read_card

N_FOLDS = 5


@dataclass(frozen=True)
class Variant:
    """A model that answers the held-out prompts: the base model (kind None) or an organism."""

    name: str
    checkpoint: str
    kind: str | None = None
    strength: float | None = None
    weights: str = ""  # the card's training_key: organisms with the same key have the same weights


def find_organisms(root: str | Path) -> list[Variant]:
    """The finished organisms under ``root`` (one folder each) and the base model they were all trained from."""
    folder = Path(root).expanduser()
    cards = []
    for path in sorted(folder.glob(f"*/{CARD_NAME}")) if folder.is_dir() else []:
        card = read_card(path.parent)
        if card and card.get("stage") == "organism" and card.get("status") == "complete":
            cards.append((path.parent, card))
    if not cards:
        raise TaskParameterError(f"no finished organisms under {folder}. Fix: build them first with "
                                 f"charbench train organisms --out {folder}")
    bases = {c["base_checkpoint"] for _, c in cards}
    if len(bases) != 1:
        raise TaskParameterError(f"the organisms under {folder} come from {len(bases)} base checkpoints ({sorted(bases)}); "
                                 "a known-answer check compares organisms of one base. Fix: one folder per base.")
    variants = [Variant("base", bases.pop())]
    variants += [Variant(c["name"], str((p / c["model"]).resolve()), c["planted"]["kind"], float(c["planted"]["strength"]),
                         str(c.get("training_key") or ""))
                 for p, c in cards]
    return variants


def held_out_prompts(n_prompts: int, seed: int = 0) -> list[dict]:
    from charbench.prompts import load_prompt_set

    prompts = load_prompt_set("offline", split="eval")
    if n_prompts < N_FOLDS or n_prompts > len(prompts):
        raise TaskParameterError(f"--n-prompts {n_prompts} must be between {N_FOLDS} and {len(prompts)} (the eval split).")
    chosen = random.Random(seed).sample(prompts, n_prompts)
    return [{"id": p.id, "text": p.text, "source": "eval"} for p in chosen]


def generate_replies(variants: Sequence[Variant], prompts: list[dict], out: Path, max_tokens: int,
                     display: Any) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    """Every variant's reply to every prompt (Inspect logs under ``out/logs``; a re-run reads them back)."""
    from inspect_ai.model import GenerateConfig, get_model

    from charbench.trainers.organisms import organism_responses
    from charbench.trainers.steps import run_step, write_spec

    spec = {"prompts": prompts, "generate_config": GenerateConfig(temperature=0.7, top_p=0.95, max_tokens=max_tokens,
                                                                  seed=0).model_dump(exclude_none=True)}
    replies: dict[str, dict[str, str]] = {}
    counts: dict[str, dict] = {}
    generated: dict[str, str] = {}  # training_key -> the variant whose replies stand for those weights
    for v in variants:
        twin = generated.get(v.weights) if v.weights else None
        if twin is not None:
            # Same weights, same prompts, same seed: the same replies (the null organisms of different kinds).
            replies[v.name], counts[v.name] = replies[twin], {**counts[twin], "same_weights_as": twin}
            continue
        generated.setdefault(v.weights, v.name)
        folder = out / "logs" / v.name.replace("@", "-at-")
        spec_file, sha = write_spec(folder, "spec.json", spec)
        model = get_model(f"charbench/{v.checkpoint}", memoize=False)  # charbench//abs/path: a local checkpoint
        log = run_step(organism_responses(spec_file, sha), folder / "eval", model, None, display)
        got = {str(s.id): s.output.completion for s in (log.samples or []) if not s.error and s.output}
        usage = [s.output.usage for s in (log.samples or []) if s.output and s.output.usage is not None]
        cut = sum(u.output_tokens >= max_tokens for u in usage)
        counts[v.name] = {"prompts": len(prompts), "errored": len(prompts) - len(got), "truncated": cut,
                          "log": log.location}
        replies[v.name] = got
    return replies, counts


# -- detectors ------------------------------------------------------------------------------------------------
def marker_rate(replies: Sequence[str], marked: Callable[[str], bool]) -> float:
    return float(np.mean([marked(r) for r in replies])) if replies else float("nan")


def grouped_cv_predictions(texts: list[str], labels: list[str], groups: list[str], seed: int = 0) -> list[str]:
    """Out-of-fold predictions of the harness's TF-IDF persona classifier, whole prompts held out per fold."""
    from charbench.classifiers.tfidf import TfidfPersonaClassifier

    units = sorted(set(groups))
    random.Random(seed).shuffle(units)
    fold_of = {u: i % N_FOLDS for i, u in enumerate(units)}
    predictions = [""] * len(texts)
    for fold in range(N_FOLDS):
        train = [i for i, g in enumerate(groups) if fold_of[g] != fold]
        test = [i for i, g in enumerate(groups) if fold_of[g] == fold]
        if not test:
            continue
        model = TfidfPersonaClassifier.fit([texts[i] for i in train], [labels[i] for i in train], seed)
        for i, p in zip(test, model.predict([texts[i] for i in test]), strict=True):
            predictions[i] = p
    return predictions


def macro_f1(true: Sequence[str], pred: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(list(true), list(pred), labels=sorted(set(true)), average="macro", zero_division=0))


def _marker_statistic(texts: dict[str, str], marked: Callable[[str], bool]) -> Callable[[list[str]], float]:
    """The marker rate over the replies to a (resampled) list of prompts."""
    return lambda units: marker_rate([texts[u] for u in units], marked)


def _mean_statistic(per_unit: dict[str, float]) -> Callable[[list[str]], float]:
    return lambda units: float(np.mean([per_unit[u] for u in units]))


def _estimate(units: list[str], statistic: Callable[[list[str]], float], n_boot: int) -> Estimate:
    return bootstrap_statistic(units, statistic, n_boot=n_boot, seed=0)


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    if len(set(y)) < 2 or len(set(x)) < 2:
        return float("nan")  # undefined when a resample gives every organism the same output; counted as failed
    return float(spearmanr(x, y).statistic)


def _row(estimate: Estimate) -> dict:
    return {"value": estimate.value, "low": estimate.low, "high": estimate.high, "n": estimate.n,
            "failed_draws": estimate.n_failed_draws}


def analyse(variants: Sequence[Variant], replies: dict[str, dict[str, str]], n_boot: int = 1000) -> dict:
    """Every detector's output per organism and its Spearman with planted strength (prompt bootstrap)."""
    from charbench.trainers.organisms import KINDS

    units = sorted(set.intersection(*(set(replies[v.name]) for v in variants)))
    if len(units) < N_FOLDS:
        raise TaskParameterError(f"only {len(units)} prompts have a reply from every model; need {N_FOLDS}.")
    base = variants[0]
    organisms = [v for v in variants if v.kind is not None]
    out: dict[str, Any] = {"prompts": len(units), "dropped_prompts": {v.name: len(replies[v.name]) - len(units)
                                                                     for v in variants}}

    # Ground truth: each organism's own marker; the base model's rate of every marker.
    markers = {}
    for v in organisms:
        kind = KINDS[v.kind]  # type: ignore[index]
        markers[v.name] = _row(_estimate(units, _marker_statistic(replies[v.name], kind.marked), n_boot))
    for name, kind in KINDS.items():
        markers[f"base:{name}"] = _row(_estimate(units, _marker_statistic(replies[base.name], kind.marked), n_boot))
    out["marker_rate"] = markers

    # Organism vs base, prompts held out; each prompt's score is the share of its two replies told apart.
    correct: dict[str, dict[str, float]] = {}
    for v in organisms:
        texts = [replies[base.name][u] for u in units] + [replies[v.name][u] for u in units]
        labels = ["base"] * len(units) + ["organism"] * len(units)
        pred = grouped_cv_predictions(texts, labels, units + units)
        hits = [p == t for p, t in zip(pred, labels, strict=True)]
        correct[v.name] = {u: (hits[i] + hits[i + len(units)]) / 2 for i, u in enumerate(units)}
    out["vs_base_accuracy"] = {name: _row(_estimate(units, _mean_statistic(c), n_boot)) for name, c in correct.items()}

    # Which organism, among the kinds of one strength (chance 1/kinds).
    which = {}
    for strength in sorted({v.strength for v in organisms}):  # type: ignore[type-var]
        group = [v for v in organisms if v.strength == strength]
        if len(group) < 2:
            continue
        texts = [replies[v.name][u] for v in group for u in units]
        labels = [str(v.kind) for v in group for _ in units]
        groups = [u for _ in group for u in units]
        pred = grouped_cv_predictions(texts, labels, groups)
        by_unit: dict[str, list[tuple[str, str]]] = {u: [] for u in units}
        for g, t, p in zip(groups, labels, pred, strict=True):
            by_unit[g].append((t, p))

        def f1(us: list[str], b: dict = by_unit) -> float:
            pairs = [tp for u in us for tp in b[u]]
            return macro_f1([t for t, _ in pairs], [p for _, p in pairs])

        which[f"{strength:g}"] = {**_row(_estimate(units, f1, n_boot)), "chance": 1 / len(group), "kinds": len(group)}
    out["which_organism_f1"] = which

    # Spearman between planted strength and each detector, over organisms, prompts resampled.
    strengths = [float(v.strength) for v in organisms]  # type: ignore[arg-type]

    def marker_rho(us: list[str]) -> float:
        return _spearman(strengths, [marker_rate([replies[v.name][u] for u in us], KINDS[str(v.kind)].marked)
                                     for v in organisms])

    def classifier_rho(us: list[str]) -> float:
        return _spearman(strengths, [float(np.mean([correct[v.name][u] for u in us])) for v in organisms])

    out["spearman"] = {"marker_rate": _row(_estimate(units, marker_rho, n_boot)),
                       "vs_base_accuracy": _row(_estimate(units, classifier_rho, n_boot))}
    out["organisms"] = [{"name": v.name, "kind": v.kind, "strength": v.strength} for v in organisms]
    return out


def verdicts(analysis: dict) -> dict[str, Any]:
    """The known-answer checks, each with the numbers it rests on."""
    organisms = analysis["organisms"]
    top = max(o["strength"] for o in organisms)
    acc = analysis["vs_base_accuracy"]
    strong = {o["name"]: acc[o["name"]] for o in organisms if o["strength"] == top}
    null = {o["name"]: acc[o["name"]] for o in organisms if o["strength"] == 0}
    return {
        "strong_vs_base_above_chance": {n: r["low"] > 0.5 for n, r in strong.items()},
        "null_vs_base_indistinguishable": {n: r["low"] <= 0.5 <= r["high"] for n, r in null.items()},
        "ordered_by_strength": {k: r["low"] > 0 for k, r in analysis["spearman"].items()},
    }


def _fmt(r: dict) -> str:
    if r["value"] is None or (isinstance(r["value"], float) and math.isnan(r["value"])):
        return "n/a"
    return f"{r['value']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def markdown(analysis: dict, counts: dict[str, dict], command: str) -> str:
    n = analysis["prompts"]
    lines = [f"Known-answer check, {n} held-out prompts (offline eval split), 95% prompt-bootstrap intervals.",
             f"Command: `{command}`", "",
             "| organism | planted kind | planted strength | marker rate | vs base accuracy (chance 0.5) | truncated | errored |",
             "|---|---|---|---|---|---|---|"]
    base_rates = ", ".join(f"{k} {_fmt(r)}" for k, r in analysis["marker_rate"].items() if k.startswith("base:"))
    lines.append(f"| base | - | - | {base_rates} | - | {counts['base']['truncated']} | {counts['base']['errored']} |")
    for o in sorted(analysis["organisms"], key=lambda o: (o["kind"], o["strength"])):
        c = counts[o["name"]]
        lines.append(f"| {o['name']} | {o['kind']} | {o['strength']:g} | {_fmt(analysis['marker_rate'][o['name']])} | "
                     f"{_fmt(analysis['vs_base_accuracy'][o['name']])} | {c['truncated']} | {c['errored']} |")
    # A uniform random guess scores macro-F1 1/k; a constant guess (all the classifier can do when the organisms'
    # replies are identical, as the null organisms' are) scores 1/(2k).
    lines += ["", "| strength | which-organism macro-F1 | random guess | constant guess |", "|---|---|---|---|"]
    for s, r in analysis["which_organism_f1"].items():
        lines.append(f"| {s} | {_fmt(r)} | {r['chance']:.2f} | {r['chance'] / 2:.2f} |")
    lines += ["", "| detector | Spearman with planted strength | failed draws |", "|---|---|---|"]
    for k, r in analysis["spearman"].items():
        lines.append(f"| {k} | {_fmt(r)} | {r['failed_draws']} |")
    return "\n".join(lines) + "\n"


def known_answer_report(organisms_root: str | Path, out_dir: str | Path, n_prompts: int = 40, max_tokens: int = 64,
                        n_boot: int = 1000, display: Any = "none", suite_logs: str | Path | None = None) -> dict:
    """Generate (cached), analyse, write ``report.json``, ``report.md`` and ``plots/organism_calibration.png``.

    ``suite_logs``: a ``charbench run --suite organisms`` log folder, whose break-character and prefill F1 per
    split and planted strength are added (robustness as a curve).
    """
    from charbench.leaderboard.calibration import calibration_plot

    variants = find_organisms(organisms_root)
    prompts = held_out_prompts(n_prompts)
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    replies, counts = generate_replies(variants, prompts, out, max_tokens, display)
    analysis = analyse(variants, replies, n_boot)
    command = (f"charbench organisms report --organisms {organisms_root} --out {out_dir} --n-prompts {n_prompts} "
               f"--max-tokens {max_tokens} --n-boot {n_boot}")
    text = markdown(analysis, counts, command)
    points = calibration_points(analysis)
    curve = robustness_curve(suite_logs) if suite_logs else []
    if suite_logs:
        command += f" --suite-logs {suite_logs}"
        text += (f"\nRobustness from the suite's logs ({suite_logs}): persona-classifier F1 per split and planted "
                 "strength, prompt cluster-bootstrap intervals.\n\n" + (curve_markdown(curve) if curve else
                 "no break_character or prefill_attack log of a planted organism there.\n"))
        points += [{"kind": "all kinds", "strength": r["strength"], "detector": "break_character_f1_default",
                    "value": r["f1"], "low": r["low"], "high": r["high"]}
                   for r in curve if r["task"] == "break_character" and r["split"] == "default"]
    report = {"analysis": analysis, "verdicts": verdicts(analysis), "counts": counts, "command": command,
              "robustness": curve}
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(text)
    calibration_plot(points, out / "plots" / "organism_calibration.png")
    return {**report, "markdown": text + "\nverdicts: " + json.dumps(report["verdicts"]) + "\n"}


def calibration_points(analysis: dict) -> list[dict]:
    """(kind, planted strength, detector, value, interval) for the calibration plot."""
    points = []
    for o in analysis["organisms"]:
        for detector in ("marker_rate", "vs_base_accuracy"):
            r = analysis[detector][o["name"]]
            points.append({"kind": o["kind"], "strength": o["strength"], "detector": detector, **r})
    return points


# -- robustness as a curve, from a `charbench run --suite organisms` log folder ----------------------------------------
CURVE_TASKS = ("charbench/break_character", "charbench/prefill_attack")


def robustness_curve(log_dir: str | Path) -> list[dict]:
    """F1 per split (break_character's default + 8 adversarial, and the prefill attack) per planted strength.

    Reads each log's header only: the split metrics and the trained checkpoints' planted strengths that the runner
    records in the eval metadata (``charbench_trained``). Logs of untrained variants or other tasks are left out.
    """
    from inspect_ai.log import list_eval_logs, read_eval_log

    rows = []
    for info in list_eval_logs(str(log_dir), recursive=True):
        log = read_eval_log(info, header_only=True)
        if log.eval.task not in CURVE_TASKS or log.status != "success" or not log.results:
            continue
        trained = (log.eval.metadata or {}).get("charbench_trained") or {}
        strengths = {c.get("planted_strength") for c in (trained.get("checkpoints") or {}).values()}
        if len(strengths) != 1 or None in strengths:
            continue
        strength = float(next(iter(strengths)))
        metrics = {name: m.value for score in log.results.scores for name, m in score.metrics.items()}
        task = log.eval.task.removeprefix("charbench/")
        for name, value in metrics.items():
            if not name.startswith("f1/"):
                continue
            split = name.removeprefix("f1/")
            rows.append({"task": task, "split": "prefill" if task == "prefill_attack" else split, "strength": strength,
                         "variant": trained.get("variant"), "f1": value, "low": metrics.get(f"f1_low/{split}"),
                         "high": metrics.get(f"f1_high/{split}"), "n_prompts": metrics.get("n_prompts")})
    return sorted(rows, key=lambda r: (r["task"], r["split"], r["strength"]))


def curve_markdown(rows: list[dict]) -> str:
    strengths = sorted({r["strength"] for r in rows})
    splits = list(dict.fromkeys(r["split"] for r in rows))
    head = "| split | " + " | ".join(f"F1 at strength {s:g}" for s in strengths) + " |"
    lines = [head, "|---" * (len(strengths) + 1) + "|"]
    for split in splits:
        cells = []
        for s in strengths:
            r = next((r for r in rows if r["split"] == split and r["strength"] == s), None)
            cells.append("-" if r is None else f"{r['f1']:.2f} [{r['low']:.2f}, {r['high']:.2f}]")
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
