"""Run a suite on checkpoints: one Inspect eval per (task, variant), resumable, one model family at a time.

A step whose folder already holds a successful log is skipped, so an interrupted run resumes where it
stopped. At scale, point ``--model`` at ``vllm/...`` and the same steps run against vLLM servers.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log
from inspect_ai.model import get_model

from charbench.evals.suites import Suite

PER_PERSONA_TASKS = ("break_character", "prefill_attack", "persona_responses")
CLASSIFIER_TASKS = ("break_character", "prefill_attack")


def _done(step_dir: Path) -> str | None:
    for path in sorted(glob.glob(str(step_dir / "*.eval"))):
        try:
            if read_eval_log(path, header_only=True).status == "success":
                return path
        except Exception:
            continue
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _task_ref(name: str):
    import charbench.tasks as tasks

    return getattr(tasks, name)


def run_step(step: str, task_name: str, task_args: dict, model: str, model_args: dict, model_roles: dict,
             log_dir: Path, generate: dict, display: str) -> str:
    step_dir = log_dir / _slug(step)
    done = _done(step_dir)
    if done:
        print(f"[charbench] {step}: already done ({done})")
        return done
    print(f"[charbench] {step}: running")
    task = _task_ref(task_name)(**task_args)
    logs = inspect_eval(
        task, model=model, model_args=model_args, model_roles=model_roles or None, log_dir=str(step_dir),
        display=display, max_connections=8, seed=generate.get("seed", 0), fail_on_error=0.2,
        metadata={"charbench_step": step},
    )
    if logs[0].status != "success":
        raise RuntimeError(f"step {step} ended with status {logs[0].status}; see {logs[0].location}")
    return logs[0].location


def variant_model_args(variant: str, persona: str, steer_coef: float) -> dict:
    if variant == "base":
        return {}
    if variant == "prompted":
        return {"persona": persona, "method": "prompted"}
    if variant == "steered":
        return {"persona": persona, "method": "steered", "steer_coef": steer_coef}
    raise ValueError(f"unknown variant {variant!r}; use base, prompted or steered")


def ensure_classifier(suite: Suite, model: str, log_dir: Path, display: str) -> Path:
    from charbench.classifiers import PersonaClassifierConfig, train_encoder_classifier, train_tfidf_classifier
    from charbench.classifiers.data import training_data_from_logs

    out = log_dir / f"classifier-{_slug(model)}"
    if (out / "card.json").exists():
        return out
    spec = suite.classifier
    logs = []
    methods = sorted({v for t in suite.tasks if t["task"] in CLASSIFIER_TASKS for v in t["variants"]})
    for method in methods:
        logs.append(run_step(
            f"{_slug(model)}/persona_responses-{method}", "persona_responses",
            {"personas": suite.personas, "method": method, "n_prompts": spec.get("n_prompts", 12),
             "steer_coef": suite.steer_coef, **suite.generate},
            model, {}, {}, log_dir, suite.generate, display))
    texts, labels, prompt_ids = training_data_from_logs(logs)
    config = PersonaClassifierConfig(kind=spec.get("kind", "encoder"), encoder=spec.get("encoder", "minilm"))
    if config.encoder == "minilm":
        config.learning_rate, config.epochs = 1e-4, 3
    trainer = train_tfidf_classifier if config.kind == "tfidf" else train_encoder_classifier
    trainer(texts, labels, out, config, groups=prompt_ids)
    return out


def run_suite(suite: Suite, models: list[str], log_dir: str | Path, display: str = "rich") -> list[str]:
    root = Path(log_dir)
    written: list[str] = []
    for model in models:
        needs_classifier = any(t["task"] in CLASSIFIER_TASKS for t in suite.tasks)
        classifier = ensure_classifier(suite, model, root, display) if needs_classifier else None
        for entry in suite.tasks:
            name, args = entry["task"], dict(entry.get("args", {}))
            persona = args.get("constitution") or suite.personas[0]
            generate_args = {k: v for k, v in suite.generate.items() if k in ("max_tokens", "temperature", "top_p", "seed")}
            for variant in entry["variants"]:
                task_args, model_args, roles = dict(args), {}, {}
                if name in PER_PERSONA_TASKS:
                    task_args.update(personas=suite.personas, method=variant, steer_coef=suite.steer_coef,
                                     classifier=str(classifier), **generate_args)
                else:
                    model_args = variant_model_args(variant, persona, suite.steer_coef)
                if name in ("revealed_preferences", "value_conflict", "reflective_stability"):
                    roles["judge"] = get_model(model)
                if name == "coherence":
                    roles["judge"] = get_model(model)
                    coef = float(entry.get("opponent_steer_coef", suite.steer_coef))
                    roles["opponent"] = get_model(model, **variant_model_args(entry.get("opponent", "steered"), persona, coef))
                    task_args.update(max_tokens=generate_args.get("max_tokens", 64))
                # an entry's `id` names its step, so one task can appear twice with different arguments
                step = f"{_slug(model)}/{entry.get('id', name)}-{variant}"
                written.append(run_step(step, name, task_args, model, model_args, roles, root, suite.generate, display))
    return written
