"""``charbench train distill``: the paper's distillation stage (section 2.3, appendix A) end to end.

1. Prompts: the constitution's, optionally more written per assertion by an ``expander`` model, and the
   ``train`` split of a general set; never a task's evaluation prompt.
2. Generation through Inspect (two internal tasks run with ``eval_set`` under ``<out>/logs``, so they are
   logged, cached and resumed): the ``teacher`` role answers with the appendix A system prompt holding the
   constitution, the ``student`` role answers the bare prompt.
3. Pairs: teacher chosen, student rejected, after name substitution and filters that are all counted.
4. DPO with trl + peft, the adapter folded into ``<out>/model`` (loadable as ``charbench//<out>/model``).
5. The card ``<out>/charbench-train.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    get_model,
)
from inspect_ai.solver import Generate, TaskState, generate, solver
from inspect_ai.util import DisplayType

from charbench.constitutions import Constitution, load_constitution
from charbench.errors import CharbenchError, TaskParameterError
from charbench.paper import persona_system_prompt
from charbench.trainers import prompts as tp
from charbench.trainers.card import (
    CARD_SCHEMA,
    check_out_dir,
    constitution_identity,
    package_versions,
    run_key,
    write_card,
)
from charbench.trainers.config import CharacterDPOConfig
from charbench.trainers.steps import read_spec, run_step, settings_identity, trained_checkpoint, write_spec

STAGE = "dpo"
PAIRS_NAME = "pairs.jsonl"
HELDOUT_NAME = "heldout_pairs.jsonl"
# The teacher thinks about its traits first and only the text after the reasoning is kept, as in the paper's
# teacher script; the wording here is charbench's.
REASONING_PREFILL = "<think>Before answering, I recall the character traits my reply should express:\n{traits}\n"
REASONING_END = "</think>"
# Provider arguments that would put a second persona prompt in front of the teacher's appendix A prompt.
VARIANT_ARGS = ("method", "persona", "steer_coef")
FILTERS = ("errored", "teacher_empty", "student_empty", "no_reasoning_end", "teacher_truncated",
           "student_truncated", "identical", "too_long")


@dataclass
class DistillSettings:
    """What decides the training data. Model names are Inspect model names (``charbench/smollm2``,
    ``vllm/...``, ``openai/...``); a ``Model`` object may stand in for one (tests use mockllm)."""

    constitution: str
    teacher: str | Model
    student: str | Model
    teacher_args: dict = field(default_factory=dict)
    student_args: dict = field(default_factory=dict)
    expander: str | Model | None = None  # None: the teacher writes the extra prompts
    expand_per_assertion: int = 0
    prompt_set: str = "offline"
    prompt_revision: str | None = None
    n_prompts: int | None = None
    teacher_name: str = "Assistant"
    student_name: str | None = None  # None: no substitution
    reasoning_prefill: bool = False
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 123456
    min_pairs: int = 8
    # A small model that seldom ends within a short budget leaves no pairs; keeping cut replies (counted as
    # *_truncated_kept in the card) trains on unfinished text, so it is opt-in and listed as a paper difference.
    keep_truncated: bool = False
    # Pairs kept out of training (a seeded sample, written to heldout_pairs.jsonl) so that what DPO learnt can be
    # measured on pairs it never saw (charbench.trainers.proof); 0 trains on every pair, as the paper.
    holdout: int = 0

    def identity(self) -> dict:
        return settings_identity(self, ("teacher", "student", "expander"))


def _generate_config(settings: DistillSettings) -> GenerateConfig:
    return GenerateConfig(temperature=settings.temperature, top_p=settings.top_p, max_tokens=settings.max_tokens,
                          seed=settings.seed)


def was_truncated(text: str, stop_reason: str, tokenizer: Any, max_tokens: int) -> bool:
    """Whether a reply was cut off by the token budget.

    Exact where the provider says ``max_tokens``. The embedded transformers provider says ``unknown`` and its
    usage counts the padded batch (every reply in a batch gets the longest one's length), so there the reply's
    own length in the student's tokenizer decides (exact when teacher and student share a tokenizer).
    """
    if stop_reason == "max_tokens":
        return True
    if stop_reason != "unknown" or not text:
        return False
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) >= max_tokens


@solver
def teacher_and_student(system: str, prefill: str | None, config: GenerateConfig):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        prompt = state.input_text
        teacher = get_model(role="teacher", required=True)
        student = get_model(role="student", required=True)
        messages: list[ChatMessage] = [ChatMessageSystem(content=system), ChatMessageUser(content=prompt)]
        if prefill:
            messages.append(ChatMessageAssistant(content=prefill))
        t = await teacher.generate(messages, config=config)
        s = await student.generate([ChatMessageUser(content=prompt)], config=config)
        state.store.set("teacher", t.completion)
        state.store.set("student", s.completion)
        state.store.set("teacher_stop", t.stop_reason)
        state.store.set("student_stop", s.stop_reason)
        state.messages = [*messages, ChatMessageAssistant(content=t.completion)]
        state.output = t
        return state

    return solve


@task
def distill_generate(spec_file: str, spec_sha256: str) -> Task:
    """Teacher (system prompt + constitution) and student (bare prompt) answer every training prompt."""
    spec = read_spec(spec_file, spec_sha256)
    config = GenerateConfig(**spec["generate_config"])
    samples = [Sample(id=p["id"], input=p["text"], metadata={"source": p["source"]}) for p in spec["prompts"]]
    return Task(dataset=MemoryDataset(samples, name="distill_prompts"),
                solver=teacher_and_student(spec["system"], spec["prefill"], config), version=1)


@task
def distill_expand(spec_file: str, spec_sha256: str) -> Task:
    """One request per assertion for more user prompts in the spirit of the hand-written ones."""
    spec = read_spec(spec_file, spec_sha256)
    samples = [Sample(id=f"a{i:03d}", input=text, metadata={"assertion": i}) for i, text in enumerate(spec["requests"])]
    return Task(dataset=MemoryDataset(samples, name="distill_expansion"),
                solver=generate(), config=GenerateConfig(**spec["generate_config"]), version=1)


def _model(spec: str | Model, args: dict) -> Model:
    return spec if isinstance(spec, Model) else get_model(spec, memoize=False, **args)


def _subfolder(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def expand_prompts(constitution: Constitution, settings: DistillSettings, expander: Model, logs: Path,
                   existing: list[tp.TrainingPrompt], evaluation: set[str], display: DisplayType
                   ) -> tuple[list[tp.TrainingPrompt], dict]:
    n = settings.expand_per_assertion
    spec = {"requests": [tp.expansion_request(constitution, a, n) for a in constitution.assertions],
            "generate_config": {"temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": 2048,
                                "seed": settings.seed}}
    folder = logs / f"expand-{_subfolder({'spec': spec, 'model': str(expander)})}"
    spec_file, sha = write_spec(folder, "spec.json", spec)
    log = run_step(distill_expand(spec_file, sha), folder / "eval", expander, {"expander": expander}, display)
    kept: list[tp.TrainingPrompt] = []
    totals = {"asked": n * len(constitution.assertions), "errored": 0}
    texts = [p.text for p in existing]
    for sample in sorted(log.samples or [], key=lambda s: str(s.id)):
        if sample.error:
            totals["errored"] += 1
            continue
        new, counts = tp.dedupe(tp.parse_numbered(sample.output.completion), texts, limit=n, evaluation=evaluation)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        texts.extend(new)
        index = int(sample.metadata["assertion"])
        kept.extend(tp.TrainingPrompt(f"x-{tp.text_id(t)}", t, "expanded", index) for t in new)
    return kept, totals


def substitute_name(text: str, teacher_name: str, student_name: str | None) -> tuple[str, bool]:
    if not student_name or student_name == teacher_name:
        return text, False
    new = re.sub(rf"\b{re.escape(teacher_name)}\b", student_name, text)
    return new, new != text


def build_pairs(samples: list[dict], tokenizer: Any, max_length: int, teacher_name: str, student_name: str | None,
                reasoning_prefill: bool, keep_truncated: bool = False) -> tuple[list[dict], dict[str, int]]:
    """Teacher chosen, student rejected. Each pair left out is counted under the first filter it fails.

    Nothing is dropped for how a reply ends: a code fence or an emoji is as valid an ending as a full stop.
    """
    counts = {name: 0 for name in FILTERS}
    counts["name_substituted"] = 0
    counts["teacher_truncated_kept"] = counts["student_truncated_kept"] = 0
    pairs = []
    for s in samples:
        if s["error"]:
            counts["errored"] += 1
            continue
        chosen, rejected = s["teacher"], s["student"]
        if reasoning_prefill and chosen.strip():
            _reasoning, marker, after = chosen.partition(REASONING_END)
            chosen = after if marker else None
        if chosen is not None and not chosen.strip():
            counts["teacher_empty"] += 1
            continue
        if not rejected.strip():
            counts["student_empty"] += 1
            continue
        if chosen is None:
            counts["no_reasoning_end"] += 1
            continue
        cut = [side for side in ("teacher", "student") if s[f"{side}_truncated"]]
        if cut and not keep_truncated:
            counts[f"{cut[0]}_truncated"] += 1
            continue
        for side in cut:
            counts[f"{side}_truncated_kept"] += 1
        chosen, rejected = chosen.strip(), rejected.strip()
        chosen, changed_c = substitute_name(chosen, teacher_name, student_name)
        rejected, changed_r = substitute_name(rejected, teacher_name, student_name)
        counts["name_substituted"] += int(changed_c or changed_r)
        if chosen == rejected:
            counts["identical"] += 1  # no preference to learn from
            continue
        prompt = [{"role": "user", "content": s["prompt"]}]
        longest = max(len(tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": r}], tokenize=True,
                                                        return_dict=True)["input_ids"]) for r in (chosen, rejected))
        if longest > max_length:
            counts["too_long"] += 1  # trl would truncate it silently; a cut reply teaches a cut reply
            continue
        pairs.append({"id": s["id"], "source": s["source"], "prompt": s["prompt"], "chosen": chosen,
                      "rejected": rejected})
    counts["kept"] = len(pairs)
    return pairs, counts


def write_pairs(path: Path, pairs: list[dict]) -> str:
    data = "".join(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n" for p in pairs).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def split_holdout(pairs: list[dict], holdout: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training pairs, held-out pairs): ``holdout`` pairs drawn with ``seed``, each list in the original order.
    A pair is one prompt, so no held-out prompt is ever trained on."""
    picked = set(random.Random(seed).sample(range(len(pairs)), min(holdout, len(pairs))))
    return ([p for i, p in enumerate(pairs) if i not in picked], [p for i, p in enumerate(pairs) if i in picked])


def dpo_rows(pairs: list[dict]) -> list[dict]:
    return [{"prompt": [{"role": "user", "content": p["prompt"]}], "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]


def _check_settings(settings: DistillSettings) -> None:
    for role, args in (("teacher", settings.teacher_args), ("student", settings.student_args)):
        bad = sorted(set(args) & set(VARIANT_ARGS))
        if bad:
            raise TaskParameterError(
                f"{role} model argument(s) {bad} would add a persona variant on top of distillation's own prompts "
                "(the teacher already gets the appendix A system prompt; the student must get none). Fix: drop them.")
    if settings.expand_per_assertion < 0 or settings.min_pairs < 1 or settings.max_tokens < 1:
        raise TaskParameterError("--expand must be >= 0, --min-pairs >= 1 and --max-tokens >= 1.")
    if settings.n_prompts is not None and settings.n_prompts < 1:
        raise TaskParameterError(f"--n-prompts {settings.n_prompts} must be at least 1.")
    if settings.holdout < 0:
        raise TaskParameterError(f"--holdout {settings.holdout} must be 0 or more.")


def _snapshot(root: Path) -> set[Path]:
    if not root.exists():
        return set()
    return {root, *root.iterdir(), *(p for d in root.iterdir() if d.is_dir() for p in d.iterdir())}


def _remove_new(root: Path, before: set[Path]) -> None:
    """Undo what this call created, so a failed run leaves no half-written folder behind."""
    for path in sorted(_snapshot(root) - before, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def generate_data(settings: DistillSettings, constitution: Constitution, out: Path, tokenizer: Any,
                  max_length: int, display: DisplayType = "none") -> dict:
    """Prompts, generation, pairs: writes ``<out>/pairs.jsonl``; returns what the card records."""
    evaluation = tp.evaluation_prompts(settings.prompt_set, settings.prompt_revision)
    own = tp.constitution_prompts(constitution)
    tp.check_disjoint(own, evaluation)
    teacher = _model(settings.teacher, settings.teacher_args)
    same = settings.student == settings.teacher and settings.student_args == settings.teacher_args
    # One in-process copy when teacher and student are the same model: only the prompts differ.
    student = teacher if same else _model(settings.student, settings.student_args)
    logs = out / "logs"
    expansion: dict = {"asked": 0}
    expanded: list[tp.TrainingPrompt] = []
    if settings.expand_per_assertion:
        expander = teacher if settings.expander is None else _model(settings.expander, {})
        expanded, expansion = expand_prompts(constitution, settings, expander, logs, own, evaluation, display)
    general = [p for p in tp.general_prompts(settings.prompt_set, settings.prompt_revision)
               if tp.normalised(p.text) not in {tp.normalised(q.text) for q in own + expanded}]
    chosen = tp.select(own + expanded + general, settings.n_prompts, settings.seed)
    tp.check_disjoint(chosen, evaluation)
    prefill = REASONING_PREFILL.format(traits=constitution.traits_text) if settings.reasoning_prefill else None
    system = persona_system_prompt(constitution, settings.teacher_name)
    spec = {"prompts": [p.as_dict() for p in chosen], "system": system, "prefill": prefill,
            "generate_config": _generate_config(settings).model_dump(exclude_none=True)}
    folder = logs / f"generate-{_subfolder({'spec': spec, 'teacher': str(teacher), 'student': str(student)})}"
    spec_file, sha = write_spec(folder, "spec.json", spec)
    log = run_step(distill_generate(spec_file, sha), folder / "eval", teacher,
               {"teacher": teacher, "student": student}, display)
    by_id = {p.id: p for p in chosen}
    samples = [{"id": str(s.id), "prompt": by_id[str(s.id)].text, "source": by_id[str(s.id)].source,
                "error": bool(s.error), "teacher": s.store.get("teacher", ""), "student": s.store.get("student", ""),
                "teacher_stop": s.store.get("teacher_stop", "unknown"), "student_stop": s.store.get("student_stop", "unknown")}
               for s in (log.samples or [])]
    for s in samples:
        for side in ("teacher", "student"):
            s[f"{side}_truncated"] = was_truncated(s[side], s.pop(f"{side}_stop"), tokenizer, settings.max_tokens)
    answered = sum(1 for s in samples if not s["error"] and s["teacher"].strip())
    if not answered:
        errors = [s.error.message for s in (log.samples or []) if s.error]
        first = f"; first error: {' '.join(errors[0].split())[:200]}" if errors else ""
        raise TaskParameterError(
            f"the teacher ({teacher}) returned nothing for all {len(samples)} prompts (errored: {len(errors)}"
            f"{first}). Nothing was written. Fix: check the teacher model and its arguments (-M), then run again.")
    pairs, filters = build_pairs(samples, tokenizer, max_length, settings.teacher_name, settings.student_name,
                                 settings.reasoning_prefill, settings.keep_truncated)
    pairs, heldout = split_holdout(pairs, settings.holdout, settings.seed)
    if len(pairs) < settings.min_pairs:
        held = f" and {len(heldout)} held out (--holdout)" if heldout else ""
        raise TaskParameterError(
            f"only {len(pairs)} pair(s) left for training after filtering ({json.dumps(filters)}){held}, fewer than "
            f"--min-pairs {settings.min_pairs}. Nothing was written. Fix: more prompts (--n-prompts, --expand), a "
            "larger --max-tokens if replies were truncated (or --keep-truncated), a smaller --holdout, or a lower "
            "--min-pairs.")
    digest = write_pairs(out / PAIRS_NAME, pairs)
    held_out = ({"file": HELDOUT_NAME, "sha256": write_pairs(out / HELDOUT_NAME, heldout), "pairs": len(heldout)}
                if settings.holdout else None)
    sources = {s: sum(1 for p in chosen if p.source == s) for s in tp.SOURCES}
    return {"file": PAIRS_NAME, "sha256": digest, "trained_pairs": len(pairs), "heldout": held_out,
            "prompts": sources, "expansion": expansion, "filters": filters,
            "generated": len(samples), "log": str(Path(log.location).relative_to(out.resolve()))
            if Path(log.location).is_relative_to(out.resolve()) else log.location}


def distill(settings: DistillSettings, out_dir: str | Path, config: CharacterDPOConfig | None = None,
            checkpoint: str | None = None, display: DisplayType = "none", train: bool = True) -> dict:
    """Run the whole stage; returns the card. Every input is checked before anything is written."""
    from transformers import AutoTokenizer

    config = config or CharacterDPOConfig()
    out = Path(out_dir).expanduser().resolve()
    _check_settings(settings)
    constitution = load_constitution(settings.constitution)
    base = trained_checkpoint(settings.student, checkpoint, "--student", "--student-checkpoint")
    identity: dict[str, Any] = {"stage": STAGE, "base_checkpoint": base, "constitution": constitution_identity(constitution),
                "settings": settings.identity(), "config": asdict(config)}
    key = run_key(identity)
    previous = check_out_dir(out, key, STAGE)
    if previous and previous.get("status") == "complete":
        return previous
    tokenizer = AutoTokenizer.from_pretrained(base)
    before = _snapshot(out)
    card = {"schema": CARD_SCHEMA, "run_key": key, "stage": STAGE, "status": "running", "base_checkpoint": base,
            "constitution": {"name": constitution.name, "source": constitution.source,
                             "sha256": run_key({"c": constitution_identity(constitution)})},
            "teacher": identity["settings"]["teacher"], "student": identity["settings"]["student"],
            "settings": identity["settings"], "config": asdict(config), "versions": package_versions(),
            "paper_differences": ["the per-token KL penalty (coefficient 0.001) of the paper's DPO runs is not applied"]
                                 + (["replies cut at --max-tokens are kept (--keep-truncated)"] if settings.keep_truncated else [])}
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_card(out, card)
        card["data"] = generate_data(settings, constitution, out, tokenizer, config.max_length, display)
        write_card(out, card)
        if train:
            from charbench.trainers.dpo import train_character_dpo

            model_dir = train_character_dpo(base, dpo_rows(_read_pairs(out / PAIRS_NAME)), out, config,
                                            merged_dir="model")
            card["model"] = str(model_dir.relative_to(out))
            card["status"] = "complete"
        else:
            card["status"] = "data"
        write_card(out, card)
    except CharbenchError:
        _remove_new(out, before)
        raise
    return card


def _read_pairs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
