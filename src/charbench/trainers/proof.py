"""The training proof: train a model toward one persona, then measure with intervals whether training moved it
toward its teacher (``charbench train proof``, ``make training-proof``).

Three measures, each against a reference that needs no trust in the training code:

1. **Held-out DPO preference.** The distillation stage holds ``holdout`` pairs out of training (distinct prompts).
   For each, the implicit DPO reward margin ``beta * [(log p(chosen) - log p_ref(chosen)) - (log p(rejected) -
   log p_ref(rejected))]`` under the trained model against its base, the rendering exactly the chat template's.
   Accuracy is the share of pairs with a positive margin (chance 0.5); the same on as many training pairs shows
   how much of it is memorisation. Unit: the pair (one prompt).
2. **Persona-vs-base classifier.** A TF-IDF classifier learns the base model answering with the persona's system
   prompt against the base model answering bare prompts (set A); on held-out prompts (set B, disjoint from A and
   from every training prompt) it labels the unprompted replies of base, trained variants and the prompted base.
   Its accuracy on B (prompted vs base) says whether the rates mean anything. Unit: the prompt.
3. **Revealed-preference shift.** ``revealed_preferences`` on the base and the DPO model with one judge (the
   base model's likelihoods) and the same matches; the Elo change of the persona's traits (named before the run,
   in :class:`ProofSettings`) with an interval from independent match bootstraps.

Nothing here is tuned to its result: the settings are fixed in :class:`ProofSettings` and recorded in the report.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from charbench.errors import TaskParameterError
from charbench.stats import Estimate, bootstrap_statistic

if TYPE_CHECKING:
    from inspect_ai.model import Model
    from inspect_ai.util import DisplayType

PERSONA = "persona"
BASE = "base"


@dataclass(frozen=True)
class ProofSettings:
    """Every setting of the proof; defaults are the run reported in ``trainers/README.md`` (about 30 minutes of
    a 2-core CPU with the embedded model). Training differs from the paper in scale only, except the learning
    rate: with about a dozen optimizer steps instead of the paper's hundreds, 5e-5 would barely move a LoRA."""

    constitution: str = "sarcastic"
    base: str = "charbench/smollm2"
    # distillation (DPO)
    n_prompts: int = 160
    holdout: int = 32
    max_tokens: int = 64
    learning_rate: float = 2e-4
    batch_size: int = 8
    per_device_batch_size: int = 4
    max_length: int = 384
    lora_r: int = 16
    lora_alpha: int = 32
    # introspection (SFT on the DPO model's self-reflection and self-interaction)
    n_reflection: int = 2
    n_interaction: int = 4
    turns: int = 4
    introspect_max_tokens: int = 96
    introspect_steps: int = 4
    # persona classifier: prompts from the offline eval split, A to train it, B to measure on
    classifier_prompts: int = 32
    eval_prompts: int = 32
    # revealed preferences
    rp_matches: int = 128
    persona_traits: tuple[str, ...] = ("sarcastic", "humorous", "playful", "irreverent", "skeptical")
    control_traits: tuple[str, ...] = ("humble", "formal", "remorseful", "precise", "warm", "respectful", "gentle")
    n_boot: int = 1000
    seed: int = 0


def _row(e: Estimate) -> dict:
    return {"value": e.value, "low": e.low, "high": e.high, "n": e.n, "failed_draws": e.n_failed_draws}


# -- 1. held-out DPO preference ---------------------------------------------------------------------------------
def pair_logprobs(checkpoint: str, pairs: Sequence[dict]) -> list[tuple[float, float]]:
    """(log p(chosen), log p(rejected)) of each pair under ``checkpoint``: the reply tokens as the chat template
    renders them after the bare user prompt (end-of-turn included), as DPO trained them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from charbench.models.logprobs import score_continuations

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    items: list[tuple[str, str]] = []
    for p in pairs:
        user = [{"role": "user", "content": p["prompt"]}]
        context = str(tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True))
        for side in ("chosen", "rejected"):
            full = str(tokenizer.apply_chat_template(user + [{"role": "assistant", "content": p[side]}],
                                                     tokenize=False))
            if not full.startswith(context):
                raise TaskParameterError(f"the chat template of {checkpoint} renders the reply before its prompt "
                                         "differently; the proof cannot split it into context and reply.")
            items.append((context, full[len(context):]))
    scores = score_continuations(model, tokenizer, items)
    return [(scores[2 * i].logprob, scores[2 * i + 1].logprob) for i in range(len(pairs))]


def dpo_margins(trained: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]],
                beta: float) -> list[float]:
    """Implicit DPO reward margin of each pair (positive: the trained model prefers the chosen reply more than
    the reference does)."""
    if len(trained) != len(reference):
        raise ValueError(f"{len(trained)} trained scores for {len(reference)} reference scores")
    return [beta * ((tc - rc) - (tr - rr)) for (tc, tr), (rc, rr) in zip(trained, reference)]


def margin_estimates(margins: Sequence[float], n_boot: int, seed: int) -> dict:
    """Preference accuracy (share of positive margins) and mean margin, bootstrapped over pairs."""
    values = list(margins)
    accuracy = bootstrap_statistic(values, lambda m: float(np.mean(np.asarray(m) > 0)), n_boot, seed)
    mean = bootstrap_statistic(values, lambda m: float(np.mean(m)), n_boot, seed)
    return {"accuracy": _row(accuracy), "mean_margin": _row(mean), "ties": int(sum(m == 0 for m in values))}


# -- 2. persona-vs-base classifier --------------------------------------------------------------------------------
def classifier_prompt_sets(n_train: int, n_eval: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Two disjoint seeded samples of the offline eval split (never a training prompt of any stage)."""
    from charbench.prompts import load_prompt_set

    pool = load_prompt_set("offline", split="eval")
    if n_train < 2 or n_eval < 2 or n_train + n_eval > len(pool):
        raise TaskParameterError(f"classifier prompts {n_train} + evaluation prompts {n_eval} must each be at least 2 "
                                 f"and fit in the {len(pool)} prompts of the offline eval split.")
    chosen = random.Random(seed).sample(pool, n_train + n_eval)
    rows = [{"id": p.id, "text": p.text} for p in chosen]
    return rows[:n_train], rows[n_train:]


def persona_rates(train: dict[str, dict[str, str]], evaluate: dict[str, dict[str, str]], n_boot: int,
                  seed: int) -> dict:
    """Fit persona (``train['prompted']``) vs base (``train['base']``) on set A; on set B, the classifier's
    accuracy telling prompted from base replies, and each variant's in-persona rate with its paired difference
    from base, all bootstrapped over B's prompts. Replies are ``{variant: {prompt id: text}}``."""
    from charbench.classifiers.tfidf import TfidfPersonaClassifier

    ids_a = sorted(set(train["base"]) & set(train["prompted"]))
    texts = [train["base"][i] for i in ids_a] + [train["prompted"][i] for i in ids_a]
    labels = [BASE] * len(ids_a) + [PERSONA] * len(ids_a)
    if len(ids_a) < 2:
        raise TaskParameterError(f"only {len(ids_a)} classifier prompt(s) have both replies; the classifier needs 2.")
    clf = TfidfPersonaClassifier.fit(texts, labels, seed)
    ids_b = sorted(set.intersection(*(set(r) for r in evaluate.values())))
    in_persona = {v: {i: float(p == PERSONA) for i, p in zip(ids_b, clf.predict([r[i] for i in ids_b]))}
                  for v, r in evaluate.items()}

    def rate(variant: str) -> Callable[[list[str]], float]:
        return lambda units: float(np.mean([in_persona[variant][u] for u in units]))

    def diff(variant: str) -> Callable[[list[str]], float]:
        return lambda units: float(np.mean([in_persona[variant][u] - in_persona[BASE][u] for u in units]))

    def accuracy(units: list[str]) -> float:
        return float(np.mean([(1 - in_persona[BASE][u] + in_persona["prompted"][u]) / 2 for u in units]))

    return {"prompts": {"train": len(ids_a), "evaluate": len(ids_b)},
            "missing": {v: len(r) - len(ids_b) for v, r in evaluate.items()},
            "classifier_accuracy": _row(bootstrap_statistic(ids_b, accuracy, n_boot, seed)),
            "in_persona_rate": {v: _row(bootstrap_statistic(ids_b, rate(v), n_boot, seed)) for v in evaluate},
            "minus_base": {v: _row(bootstrap_statistic(ids_b, diff(v), n_boot, seed)) for v in evaluate if v != BASE}}


# -- 3. revealed-preference shift -----------------------------------------------------------------------------------
def trait_shift(base_log: str, trained_log: str, persona_traits: Sequence[str], n_boot: int, seed: int) -> dict:
    """Per-trait Elo change (trained - base) and the mean change over ``persona_traits`` with a 95% interval
    from the two runs' independent match bootstraps."""
    from charbench.tasks.revealed_preferences.comparison import compare_elo_runs, matches_from_log

    frame, draws = compare_elo_runs(base_log, trained_log, n_boot=n_boot, seed=seed)
    columns = [i for i, t in enumerate(frame["trait"]) if t in set(persona_traits)]
    if not columns:
        raise TaskParameterError(f"none of the persona traits {list(persona_traits)} is in both runs.")
    mean_draws = draws[:, columns].mean(axis=1)
    point = float(frame["delta"].iloc[columns].mean())
    invalid = {name: matches_from_log(log)[2] for name, log in (("base", base_log), ("trained", trained_log))}
    return {"persona_traits_mean_delta": {"value": point, "low": float(np.percentile(mean_draws, 2.5)),
                                          "high": float(np.percentile(mean_draws, 97.5)), "n_boot": n_boot},
            "per_trait": frame.round(4).to_dict(orient="records"), "invalid": invalid}


# -- the run ---------------------------------------------------------------------------------------------------
def _replies(model: Model, prompts: list[dict], folder: Path, max_tokens: int, seed: int,
             display: DisplayType) -> tuple[dict[str, str], dict]:
    """One model's replies to ``prompts`` through Inspect (logged; a re-run reads them back)."""
    from inspect_ai.model import GenerateConfig

    from charbench.trainers.organisms import organism_responses
    from charbench.trainers.steps import run_step, write_spec

    spec = {"prompts": prompts, "generate_config": GenerateConfig(
        temperature=0.7, top_p=0.95, max_tokens=max_tokens, seed=seed).model_dump(exclude_none=True)}
    spec_file, sha = write_spec(folder, "spec.json", spec)
    log = run_step(organism_responses(spec_file, sha), folder / "eval", model, None, display)
    got = {str(s.id): s.output.completion for s in (log.samples or []) if not s.error and s.output}
    return got, {"prompts": len(prompts), "errored": len(prompts) - len(got), "log": log.location}


def train_variants(s: ProofSettings, out: Path, display: DisplayType) -> tuple[dict, dict, Path, Path]:
    """The DPO variant (with held-out pairs) and the introspection variant trained from it; cached by card."""
    from charbench.trainers.config import CharacterDPOConfig, CharacterSFTConfig, LoraSettings
    from charbench.trainers.distill import DistillSettings, distill
    from charbench.trainers.introspect import IntrospectSettings, introspect

    lora = LoraSettings(r=s.lora_r, alpha=s.lora_alpha)
    dpo_dir, full_dir = out / f"{s.constitution}-dpo", out / f"{s.constitution}-full"
    dpo = distill(DistillSettings(constitution=s.constitution, teacher=s.base, student=s.base, n_prompts=s.n_prompts,
                                  max_tokens=s.max_tokens, keep_truncated=True, holdout=s.holdout, seed=s.seed),
                  dpo_dir, CharacterDPOConfig(learning_rate=s.learning_rate, global_batch_size=s.batch_size,
                                              per_device_batch_size=s.per_device_batch_size, max_length=s.max_length,
                                              seed=s.seed, lora=lora), display=display)
    dpo_model = dpo_dir / dpo["model"]
    full = introspect(IntrospectSettings(constitution=s.constitution, model=f"charbench/{dpo_model}",
                                         n_reflection=s.n_reflection, n_interaction=s.n_interaction, turns=s.turns,
                                         reflection_max_tokens=s.introspect_max_tokens,
                                         interaction_max_tokens=s.introspect_max_tokens, keep_truncated=True,
                                         seed=s.seed),
                      full_dir, CharacterSFTConfig(learning_rate=s.learning_rate, global_batch_size=4,
                                                   per_device_batch_size=2, max_length=1024,
                                                   max_steps=s.introspect_steps, seed=s.seed, lora=lora),
                      display=display)
    return dpo, full, dpo_model, full_dir / full["model"]


def training_proof(s: ProofSettings, out_dir: str | Path, display: DisplayType = "plain") -> dict:
    """Train both variants and measure them; writes ``<out>/proof/report.json`` and ``report.md``."""
    from inspect_ai.model import get_model

    from charbench.constitutions import load_constitution
    from charbench.paper import traits as paper_traits
    from charbench.tasks.revealed_preferences.task import revealed_preferences
    from charbench.trainers.distill import HELDOUT_NAME, PAIRS_NAME
    from charbench.trainers.steps import run_step

    unknown = sorted(set(s.persona_traits + s.control_traits) - set(paper_traits()))
    if unknown:
        raise TaskParameterError(f"traits {unknown} are not among the paper's 144. Fix: pick traits from that list.")
    if s.holdout < 2:
        raise TaskParameterError(f"holdout {s.holdout}: the held-out DPO measure needs at least 2 pairs.")
    load_constitution(s.constitution)
    set_a, set_b = classifier_prompt_sets(s.classifier_prompts, s.eval_prompts, s.seed)
    out = Path(out_dir).expanduser().resolve()
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    dpo, full, dpo_model, full_model = train_variants(s, out, display)
    seconds["training"] = time.perf_counter() - start

    start = time.perf_counter()
    heldout = [json.loads(x) for x in (out / f"{s.constitution}-dpo" / HELDOUT_NAME).read_text().splitlines() if x]
    trained_pairs = [json.loads(x) for x in (out / f"{s.constitution}-dpo" / PAIRS_NAME).read_text().splitlines() if x]
    seen = random.Random(s.seed).sample(trained_pairs, min(len(heldout), len(trained_pairs)))
    base_ckpt, beta = dpo["base_checkpoint"], dpo["config"]["beta"]
    reference = pair_logprobs(base_ckpt, heldout + seen)
    policy = pair_logprobs(str(dpo_model), heldout + seen)
    margins = dpo_margins(policy, reference, beta)
    preference = {"beta": beta, "heldout": margin_estimates(margins[:len(heldout)], s.n_boot, s.seed),
                  "trained_on": margin_estimates(margins[len(heldout):], s.n_boot, s.seed),
                  "pairs": {"heldout": len(heldout), "trained_on_sample": len(seen), "trained": len(trained_pairs)}}
    seconds["dpo_preference"] = time.perf_counter() - start

    start = time.perf_counter()
    models = {BASE: get_model(s.base, memoize=False),
              "prompted": get_model(s.base, memoize=False, method="prompted", persona=s.constitution),
              "dpo": get_model(f"charbench/{dpo_model}", memoize=False),
              "full": get_model(f"charbench/{full_model}", memoize=False)}
    logs = out / "proof" / "logs"
    train_replies, eval_replies, counts = {}, {}, {}
    for name in (BASE, "prompted"):
        train_replies[name], counts[f"{name}/A"] = _replies(models[name], set_a, logs / f"A-{name}", s.max_tokens,
                                                            s.seed, display)
    for name, model in models.items():
        eval_replies[name], counts[f"{name}/B"] = _replies(model, set_b, logs / f"B-{name}", s.max_tokens, s.seed,
                                                           display)
    classifier = {**persona_rates(train_replies, eval_replies, s.n_boot, s.seed), "generation": counts}
    seconds["classifier"] = time.perf_counter() - start

    start = time.perf_counter()
    traits = [*s.persona_traits, *s.control_traits]
    rp_logs = {}
    for name in (BASE, "dpo"):
        task = revealed_preferences(n_matches=s.rp_matches, traits=traits, max_tokens=s.max_tokens, seed=s.seed,
                                    null_control=False)
        rp_logs[name] = run_step(task, logs / f"rp-{name}", models[name], {"judge": models[BASE]}, display).location
    shift = {**trait_shift(rp_logs[BASE], rp_logs["dpo"], s.persona_traits, 200, s.seed), "logs": rp_logs,
             "judge": s.base, "matches": s.rp_matches}
    seconds["revealed_preferences"] = time.perf_counter() - start

    report = {"settings": asdict(s), "cards": {"dpo": _card_summary(dpo), "full": _card_summary(full)},
              "dpo_preference": preference, "persona_classifier": classifier, "revealed_preferences": shift,
              "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    folder = out / "proof"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    (folder / "report.md").write_text(proof_markdown(report), encoding="utf-8")
    return report


def _card_summary(card: dict) -> dict:
    data = card.get("data", {})
    return {"name": card.get("name"), "stage": card.get("stage"), "run_key": card.get("run_key"),
            "model": card.get("model"), "counts": data.get("filters") or data.get("counts"),
            "trained_pairs": data.get("trained_pairs"), "heldout": data.get("heldout")}


def _fmt(r: dict, digits: int = 3) -> str:
    return f"{r['value']:.{digits}f} [{r['low']:.{digits}f}, {r['high']:.{digits}f}]"


def proof_markdown(report: dict) -> str:
    """The report as the tables ``trainers/README.md`` quotes."""
    pref, clf, rp = report["dpo_preference"], report["persona_classifier"], report["revealed_preferences"]
    lines = ["| DPO implicit reward (beta {:g}) | pairs | accuracy (chance 0.5) | mean margin |".format(pref["beta"]),
             "|---|---|---|---|"]
    for key, label in (("heldout", "held-out pairs (never trained on)"), ("trained_on", "a sample of training pairs")):
        n = pref["pairs"]["heldout" if key == "heldout" else "trained_on_sample"]
        lines.append(f"| {label} | {n} | {_fmt(pref[key]['accuracy'])} | {_fmt(pref[key]['mean_margin'], 4)} |")
    lines += ["", f"Persona-vs-base classifier (TF-IDF, {clf['prompts']['train']} training prompts, "
              f"{clf['prompts']['evaluate']} held-out prompts): accuracy telling prompted from base replies "
              f"{_fmt(clf['classifier_accuracy'])} (chance 0.5).", "",
              "| variant (unprompted unless named) | in-persona rate | minus base (paired) |", "|---|---|---|"]
    for variant, row in clf["in_persona_rate"].items():
        minus = clf["minus_base"].get(variant)
        lines.append(f"| {variant} | {_fmt(row)} | {_fmt(minus) if minus else '-'} |")
    mean = rp["persona_traits_mean_delta"]
    persona = set(report["settings"]["persona_traits"])
    lines += ["", f"Revealed preferences ({rp['matches']} matches per run, judge {rp['judge']}, invalid "
              f"{rp['invalid']['base']} / {rp['invalid']['trained']}): mean Elo change of the persona traits, DPO "
              f"minus base, {_fmt(mean, 1)}.", "", "| trait | base Elo | DPO Elo | change [95% CI] |", "|---|---|---|---|"]
    for row in rp["per_trait"]:
        star = " (persona)" if row["trait"] in persona else ""
        lines.append(f"| {row['trait']}{star} | {row['elo_a']:.0f} | {row['elo_b']:.0f} | "
                     f"{row['delta']:.0f} [{row['low']:.0f}, {row['high']:.0f}] |")
    lines += ["", "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in report["seconds"].items())]
    return "\n".join(lines) + "\n"


def settings_from(overrides: dict[str, Any]) -> ProofSettings:
    """ProofSettings with ``overrides`` (unknown names refused with the list of known ones)."""
    known = set(ProofSettings.__dataclass_fields__)
    bad = sorted(set(overrides) - known)
    if bad:
        raise TaskParameterError(f"unknown proof setting(s) {bad}; known: {sorted(known)}.")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    defaults = ProofSettings()
    for name, value in values.items():
        default = getattr(defaults, name)
        # an int where a float is expected is fine (lr 1); anything else would fail deep inside a stage
        fits = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
        if not fits or isinstance(value, bool) != isinstance(default, bool):
            raise TaskParameterError(f"proof setting {name}={value!r} is of type {type(value).__name__}; expected "
                                     f"{type(default).__name__} (default {default!r}). Fix: --set {name}=<value>.")
    return ProofSettings(**values)
