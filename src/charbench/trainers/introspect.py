"""``charbench train introspect``: the paper's introspection stage (section 2.4, appendix B) end to end.

1. Data, written by the distilled model itself through Inspect (one internal task run with ``eval_set``
   under ``<out>/logs``, so it is logged and an interrupted run resumes):
   * self-reflection: the 10 appendix B prompts x N, system prompt = appendix A + the reflective-mood line;
     the system prompt is left out of the training example, as in the paper.
   * self-interaction: N conversations of T turns between two copies of the model. Each turn is generated
     from the speaker's own view (its turns as assistant, the partner's as user) under appendix A + the
     self-interaction line + a guidance line (half "free", half "leading"). The training example is the view
     of the speaker of the final turn, so the final turn is trained, under the paper's amended system prompt
     (name, self-interaction line, guidance line).
2. SFT (trl + peft, ``CharacterSFTConfig``) with loss on every assistant turn, masked from the student's own
   chat template (``charbench.trainers.masking``).
3. Merge (``charbench.trainers.merge``, exact): ``<out>/model`` = distilled + ``sft_weight`` x the SFT delta;
   when the distilled folder is a ``charbench train distill`` run, built as base + DPO x 1.0 + SFT x weight
   from its adapters, the paper's release recipe at the default 0.25.
4. The card ``<out>/charbench-train.json`` (stage ``sft``, ablation ``full``, ``sr-only`` or ``si-only``).

Defects of the paper's public code that this does not repeat, each held by a test in tests/test_introspect.py:
guidance missing from the self-interaction system prompt, the final turn lost (and only the last message
trained), a literal ``{NAME}`` in the training system prompt, prompts cut from the left through the system
prompt, and an unseeded shuffle.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
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
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.util import DisplayType

from charbench.constitutions import Constitution, load_constitution
from charbench.errors import CharbenchError, TaskParameterError
from charbench.paper import persona_system_prompt, self_reflection, teacher_template
from charbench.trainers.card import (
    CARD_SCHEMA,
    check_out_dir,
    constitution_identity,
    package_versions,
    read_card,
    run_key,
    write_card,
)
from charbench.trainers.config import CharacterSFTConfig
from charbench.trainers.steps import read_spec, run_step, settings_identity, trained_checkpoint, write_spec

STAGE = "sft"
ABLATIONS = ("full", "sr-only", "si-only")
GUIDANCE = ("free", "leading")
DATA_NAME = "introspection.jsonl"
# Conversation openers (the partner's first words); charbench's own wording.
OPENERS = ("Hello there.", "Hi! Good to meet you.", "Hey, how is it going?", "Good day to you.",
           "Greetings, other me.", "Hello. So, here we both are.")
PLACEHOLDERS = ("{name}", "{NAME}")


@dataclass
class IntrospectSettings:
    """What decides the introspection data. ``model`` is an Inspect model name (``charbench//<distilled>``,
    ``vllm/...``) or a ``Model`` (tests pass mockllm)."""

    constitution: str
    model: str | Model
    model_args: dict = field(default_factory=dict)
    name: str = "Assistant"
    ablation: str = "full"
    n_reflection: int = 1000  # per prompt; the paper: 1000 x 10 prompts
    n_interaction: int = 2000  # conversations; half free, half leading guidance
    turns: int = 10
    temperature: float = 0.7
    top_p: float = 0.95
    reflection_max_tokens: int = 2048
    interaction_max_tokens: int = 1024
    keep_truncated: bool = False
    seed: int = 123456
    sft_weight: float = 0.25

    def identity(self) -> dict:
        return settings_identity(self, ("model",))

    @property
    def reflections(self) -> int:
        return 0 if self.ablation == "si-only" else self.n_reflection

    @property
    def interactions(self) -> int:
        return 0 if self.ablation == "sr-only" else self.n_interaction


# -- prompts ----------------------------------------------------------------------------------------------


def _filled(text: str) -> str:
    for placeholder in PLACEHOLDERS:
        if placeholder in text:
            raise TaskParameterError(f"a system prompt still holds the placeholder {placeholder} after the name was filled "
                                     "in. Fix: remove it from the constitution (names are filled in by charbench).")
    return text


def _line(key: str, name: str) -> str:
    return self_reflection()[key].format(name=name)


def reflection_system_prompt(constitution: Constitution, name: str) -> str:
    return _filled(f"{persona_system_prompt(constitution, name)}\n{_line('reflective_mood_line', name)}")


def interaction_system_prompt(constitution: Constitution, name: str, guidance: str) -> str:
    return _filled(f"{persona_system_prompt(constitution, name)}\n{_line('self_interaction_line', name)}\n"
                   f"{_line(f'{guidance}_guidance_line', name)}")


def interaction_training_system_prompt(name: str, guidance: str) -> str:
    """The paper's amended prompt for training: appendix A's first line, then the interaction and guidance lines."""
    first = teacher_template().splitlines()[0].format(name=name)
    return _filled(f"{first}\n{_line('self_interaction_line', name)}\n{_line(f'{guidance}_guidance_line', name)}")


def _author(index: int) -> int:
    """Copy 1 wrote the opener (index 0); copy 0 answers it, then they alternate."""
    return 1 if index == 0 else (index - 1) % 2


def speaker_view(system: str, transcript: list[str], speaker: int) -> list[dict]:
    """The conversation as ``speaker`` sees it: its own turns as assistant, the partner's as user.

    A view may not open with the speaker's own turn (chat templates such as Gemma's require a user turn
    first), so copy 1's view starts at the reply to its opener.
    """
    messages = [{"role": "assistant" if _author(i) == speaker else "user", "content": text}
                for i, text in enumerate(transcript)]
    while messages and messages[0]["role"] == "assistant":
        messages.pop(0)
    return [{"role": "system", "content": system}, *messages]


def _chat(messages: list[dict]) -> list[ChatMessage]:
    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def _cut(output: Any, max_tokens: int) -> bool:
    # The embedded provider reports no stop reason; a reply that used the whole budget was cut all the same.
    used = output.usage.output_tokens if output.usage else 0
    return output.stop_reason == "max_tokens" or used >= max_tokens


# -- generation through Inspect ------------------------------------------------------------------------------


@solver
def introspection_turns(turns: int, reflection: GenerateConfig, interaction: GenerateConfig):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        if state.metadata["kind"] == "reflection":
            output = await model.generate(state.messages, config=reflection)
            state.store.set("replies", [output.completion])
            state.store.set("cut", [_cut(output, reflection.max_tokens or 0)])
            state.messages.append(ChatMessageAssistant(content=output.completion))
            state.output = output
            return state
        system = state.metadata["system"]
        transcript = [state.metadata["opener"]]
        cut = []
        for turn in range(turns):
            output = await model.generate(_chat(speaker_view(system, transcript, turn % 2)), config=interaction)
            transcript.append(output.completion)
            cut.append(_cut(output, interaction.max_tokens or 0))
            if not output.completion.strip():
                break  # the partner would answer nothing; the transcript is counted as invalid
        state.store.set("replies", transcript[1:])
        state.store.set("cut", cut)
        state.messages = _chat(speaker_view(system, transcript, _author(len(transcript) - 1)))
        state.output = output
        return state

    return solve


@task
def introspect_generate(spec_file: str, spec_sha256: str) -> Task:
    """Self-reflections and self-interactions by the model under training (appendix B)."""
    spec = read_spec(spec_file, spec_sha256)
    samples = []
    for s in spec["samples"]:
        if s["kind"] == "reflection":
            samples.append(Sample(id=s["id"], input=_chat([{"role": "system", "content": s["system"]},
                                                           {"role": "user", "content": s["prompt"]}]), metadata=s))
        else:
            samples.append(Sample(id=s["id"], input=_chat([{"role": "system", "content": s["system"]},
                                                           {"role": "user", "content": s["opener"]}]), metadata=s))
    return Task(dataset=MemoryDataset(samples, name="introspection"), version=1,
                solver=introspection_turns(spec["turns"], GenerateConfig(**spec["reflection_config"]),
                                           GenerateConfig(**spec["interaction_config"])))


def sample_specs(settings: IntrospectSettings, constitution: Constitution) -> list[dict]:
    specs = []
    system = reflection_system_prompt(constitution, settings.name)
    for p, prompt in enumerate(self_reflection()["prompts"]):
        for k in range(settings.reflections):
            specs.append({"id": f"sr-{p:02d}-{k:05d}", "kind": "reflection", "prompt_index": p, "prompt": prompt,
                          "system": system})
    rng = random.Random(settings.seed)
    for k in range(settings.interactions):
        guidance = GUIDANCE[k % 2]
        specs.append({"id": f"si-{guidance}-{k:05d}", "kind": "interaction", "guidance": guidance,
                      "opener": rng.choice(OPENERS),
                      "system": interaction_system_prompt(constitution, settings.name, guidance)})
    return specs


def build_examples(samples: list[dict], settings: IntrospectSettings) -> tuple[list[dict], dict]:
    """Training rows and a count of every sample left out, by reason."""
    counts = {"reflection": {"generated": 0, "errored": 0, "empty": 0, "truncated": 0, "truncated_kept": 0, "kept": 0},
              "interaction": {"generated": 0, "errored": 0, "empty_turn": 0, "truncated": 0,
                              "truncated_turns_kept": 0, "kept": 0}}
    rows = []
    for s in samples:
        c = counts[s["kind"]]
        c["generated"] += 1
        if s["error"]:
            c["errored"] += 1
            continue
        replies, cut = s["replies"], s["cut"]
        if s["kind"] == "reflection":
            if not replies or not replies[0].strip():
                c["empty"] += 1
                continue
            if cut[0]:
                if not settings.keep_truncated:
                    c["truncated"] += 1
                    continue
                c["truncated_kept"] += 1
            # The generation system prompt stays out of the example, as in the paper.
            messages = [{"role": "user", "content": s["prompt"]}, {"role": "assistant", "content": replies[0]}]
        else:
            if len(replies) < settings.turns or not all(r.strip() for r in replies):
                c["empty_turn"] += 1
                continue
            if any(cut):
                if not settings.keep_truncated:
                    c["truncated"] += 1
                    continue
                c["truncated_turns_kept"] += sum(cut)
            transcript = [s["opener"], *replies]
            system = interaction_training_system_prompt(settings.name, s["guidance"])
            messages = speaker_view(system, transcript, _author(len(transcript) - 1))
        c["kept"] += 1
        rows.append({"id": s["id"], "kind": s["kind"], "guidance": s.get("guidance"), "messages": messages})
    # Seeded, so the same data trains in the same order on a re-run.
    random.Random(settings.seed).shuffle(rows)
    return rows, counts


def generate_data(settings: IntrospectSettings, constitution: Constitution, out: Path, display: DisplayType) -> dict:
    model = settings.model if isinstance(settings.model, Model) else get_model(settings.model, memoize=False,
                                                                              **settings.model_args)
    spec: dict[str, Any] = {"samples": sample_specs(settings, constitution), "turns": settings.turns,
            "reflection_config": GenerateConfig(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed,
                                                max_tokens=settings.reflection_max_tokens).model_dump(exclude_none=True),
            "interaction_config": GenerateConfig(temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed,
                                                 max_tokens=settings.interaction_max_tokens).model_dump(exclude_none=True)}
    data = json.dumps(spec, sort_keys=True, indent=1).encode()
    folder = out / "logs" / f"generate-{hashlib.sha256(data + str(model).encode()).hexdigest()[:12]}"
    spec_file, sha = write_spec(folder, "spec.json", spec)
    log = run_step(introspect_generate(spec_file, sha), folder / "eval", model, None, display)
    by_id = {s["id"]: s for s in spec["samples"]}
    samples = [{**by_id[str(s.id)], "error": bool(s.error), "replies": s.store.get("replies", []),
                "cut": s.store.get("cut", [])} for s in (log.samples or [])]
    rows, counts = build_examples(samples, settings)
    if not rows:
        errors = [s.error.message for s in (log.samples or []) if s.error]
        first = f"; first error: {' '.join(errors[0].split())[:200]}" if errors else ""
        raise TaskParameterError(
            f"the model ({model}) produced no usable introspection data ({json.dumps(counts)}{first}). Nothing was "
            "written. Fix: check the model and its -M arguments; with a small --max-tokens, --keep-truncated.")
    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
    (out / DATA_NAME).write_bytes(body)
    return {"file": DATA_NAME, "sha256": hashlib.sha256(body).hexdigest(), "counts": counts, "examples": len(rows),
            "log": str(Path(log.location).resolve().relative_to(out)) if Path(log.location).resolve().is_relative_to(out)
            else log.location}


# -- the stage ---------------------------------------------------------------------------------------------------


def distillation_source(checkpoint: str) -> dict | None:
    """The DPO run the checkpoint came from (its card beside it), for the release merge from the base."""
    folder = Path(checkpoint).parent
    card = read_card(folder) if (folder / "charbench-train.json").exists() else None
    if not card or card.get("stage") != "dpo" or card.get("status") != "complete":
        return None
    adapter = folder / "adapter"
    base = Path(str(card.get("base_checkpoint", "")))
    if not (adapter / "adapter_config.json").exists() or not (base / "config.json").exists():
        return None
    return {"card": str(folder / "charbench-train.json"), "run_key": card["run_key"], "adapter": str(adapter),
            "base_checkpoint": str(base), "constitution": card.get("constitution", {}).get("name")}


def _check(settings: IntrospectSettings) -> None:
    if settings.ablation not in ABLATIONS:
        raise TaskParameterError(f"ablation {settings.ablation!r} is not one of {ABLATIONS} (the DPO-only variant is "
                                 "charbench train distill's model).")
    if settings.reflections < 0 or settings.interactions < 0 or settings.reflections + settings.interactions == 0:
        raise TaskParameterError(f"nothing to generate for ablation {settings.ablation}: --n-reflection "
                                 f"{settings.n_reflection}, --n-interaction {settings.n_interaction}. Fix: give a positive count.")
    if settings.interactions and settings.turns < 1:
        raise TaskParameterError(f"--turns {settings.turns} must be at least 1.")
    if not math.isfinite(settings.sft_weight) or settings.sft_weight <= 0:
        raise TaskParameterError(f"--sft-weight {settings.sft_weight} must be positive (0.25: the paper's release "
                                 "merge; 1.0: the adapter folded in whole).")
    if min(settings.reflection_max_tokens, settings.interaction_max_tokens) < 1:
        raise TaskParameterError("--max-tokens must be at least 1.")
    stacked = sorted(set(settings.model_args) & {"method", "persona", "steer_coef"})
    if stacked:
        raise TaskParameterError(f"model argument(s) {stacked} would add a persona variant on top of the appendix B "
                                 "system prompts, which already hold the constitution. Fix: drop them.")
    if not settings.name.strip() or any(ch in settings.name for ch in "{}"):
        raise TaskParameterError(f"--name {settings.name!r} must be a plain, non-empty name.")


def introspect(settings: IntrospectSettings, out_dir: str | Path, config: CharacterSFTConfig | None = None,
               checkpoint: str | None = None, display: DisplayType = "none", train: bool = True) -> dict:
    """Run the whole stage; returns the card. Inputs are checked before anything is written."""
    from charbench.trainers.merge import merge_adapters
    from charbench.trainers.sft import prepare_sft_data, train_sft_rows

    config = config or CharacterSFTConfig()
    out = Path(out_dir).expanduser().resolve()
    _check(settings)
    constitution = load_constitution(settings.constitution)
    student = trained_checkpoint(settings.model, checkpoint, "--model", "--checkpoint",
                                 "the distilled model's folder (a charbench train distill run's model/)")
    source = distillation_source(student)
    if source and source["constitution"] not in (None, constitution.name):
        raise TaskParameterError(f"{student} was distilled toward {source['constitution']!r}, not "
                                 f"{constitution.name!r}. Fix: pass the matching --constitution.")
    identity: dict[str, Any] = {"stage": STAGE, "checkpoint": student, "constitution": constitution_identity(constitution),
                                "settings": settings.identity(), "config": asdict(config)}
    key = run_key(identity)
    previous = check_out_dir(out, key, STAGE)
    if previous and previous.get("status") == "complete":
        return previous
    created = not out.exists()
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA, "run_key": key, "stage": STAGE, "ablation": settings.ablation, "status": "running",
        "name": f"{constitution.name}-{settings.ablation}", "checkpoint": student,
        "base_checkpoint": source["base_checkpoint"] if source else student, "distillation": source,
        "constitution": {"name": constitution.name, "source": constitution.source,
                         "sha256": run_key({"c": constitution_identity(constitution)})},
        "generator": identity["settings"]["model"], "settings": identity["settings"], "config": asdict(config),
        "versions": package_versions(),
        "paper_differences": ["loss on every assistant turn (the paper's code trained the final message only)"]}
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_card(out, card)
        card["data"] = generate_data(settings, constitution, out, display)
        write_card(out, card)
        if train:
            from transformers import AutoTokenizer

            rows = [json.loads(line) for line in (out / DATA_NAME).read_text(encoding="utf-8").splitlines() if line]
            prepared = prepare_sft_data(AutoTokenizer.from_pretrained(student), [r["messages"] for r in rows], config)
            card["data"]["sft"] = prepared.counts
            shutil.rmtree(out / "adapter", ignore_errors=True)  # a resumed run retrains from the saved data
            adapter = train_sft_rows(student, prepared, out, config, merge=False)
            shutil.rmtree(out / "model", ignore_errors=True)
            if source:
                parts = [(source["adapter"], 1.0), (str(adapter), settings.sft_weight)]
                merge_adapters(source["base_checkpoint"], parts, out / "model", tokenizer_from=student)
                card["merge"] = {"base": source["base_checkpoint"], "adapters": [[p, w] for p, w in parts]}
            else:
                merge_adapters(student, [(adapter, settings.sft_weight)], out / "model")
                card["merge"] = {"base": student, "adapters": [[str(adapter), settings.sft_weight]]}
            card["model"] = "model"
            card["status"] = "complete"
        else:
            card["status"] = "data"
        write_card(out, card)
    except CharbenchError:
        if created:
            shutil.rmtree(out, ignore_errors=True)  # a failed fresh run leaves no half-written folder
        raise
    return card
