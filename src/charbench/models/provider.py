"""The ``charbench/`` Inspect model provider.

It is Inspect's transformers provider with four additions that the character tasks need:

* **identity**: ``charbench/smollm2`` is the embedded model; ``charbench//abs/ckpt`` a local folder;
  ``charbench/org/name`` a Hub id. The checkpoint *and* the variant (``-M persona=...``,
  ``-M method=steered``) are part of the model name, so logs, leaderboards and Inspect's cache (whose key
  ignores ``model_args``) never mix two checkpoints or two variants.
* **assistant prefill**: a trailing assistant message is continued (``continue_final_message``) rather than
  closed, which the true prefill attack needs.
* **baselines**: ``method=prompted`` puts the paper's appendix A system prompt with a constitution in front
  of every conversation; ``method=steered`` adds a persona direction to the residual stream.
* **log-likelihoods** of continuations, for likelihood judges and capability benchmarks
  (the ``LogProbModel`` interface of ``charbench.models.logprobs``).

Two engines run it: transformers (the default) and, with ``-M engine=vllm``, an in-process vLLM engine
(``charbench.models.vllm_engine``) that renders the same prompts, serves the base and prompted variants with
continuous batching and scores log-likelihoods from prompt log-probs. Steering needs forward hooks that vLLM
does not offer, so ``-M engine=vllm -M method=steered`` is refused rather than run on another engine.

Generation (transformers engine): concurrent ``generate()`` calls are batched by the provider's own queue
(``charbench.models.batching``: greedy decoding for temperature 0, prompts sorted by length, each reply's own
token count and stop reason); ``-M batching=inspect`` runs Inspect's own queue instead, as before issue 14.
Requests for log-probs, hidden states or tools always take Inspect's path.

Steered variants generate with ``repetition_penalty=1.1`` (the paper's reference code does; a steered
small model otherwise falls into loops); ``-M repetition_penalty=1.0`` turns it off. A setting other than
the variant's default is part of the model name (``+rp1``). Other variants keep the checkpoint's own
generation settings unless ``-M repetition_penalty`` is given.

Safety: weights load from safetensors only; a checkpoint with only pickle weights (``pytorch_model.bin``)
is refused unless ``-M allow_pickle=true``. ``trust_remote_code`` stays off unless ``-M
trust_remote_code=true``.

The class subclasses Inspect's private ``HuggingFaceAPI``; ``pyproject.toml`` pins inspect-ai to the
tested release and ``tests/test_provider_contract.py`` fails when the surface used here changes.
"""

from __future__ import annotations

import copy
import hashlib
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.model._providers.hf import HuggingFaceAPI
from inspect_ai.tool import ToolInfo

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError, UnsafeWeightsError
from charbench.models.batching import GenerationBatcher, Settings
from charbench.models.combining import CombinedScoring
from charbench.models.embedded import resolve_checkpoint
from charbench.models.logprobs import ContinuationScore, PrefixCache, score_continuations
from charbench.paper import persona_system_prompt

METHODS = ("base", "prompted", "steered")
ENGINES = ("transformers", "vllm")
BATCHING = ("charbench", "inspect")
DEFAULT_STEER_COEF = 0.5
STEERED_REPETITION_PENALTY = 1.1


def variant_label(checkpoint: str, method: str, persona: str | None, steer_coef: float | None) -> str:
    """The model name that logs and caches see: checkpoint plus variant."""
    if method == "base":
        return checkpoint
    if not persona:
        # Per-sample persona (the multi-persona tasks pick it from each sample): the name still says the method.
        return f"{checkpoint}+steered@{steer_coef:g}" if method == "steered" else f"{checkpoint}+{method}"
    name = persona.rsplit("/", 1)[-1].removesuffix(".yaml")
    if method == "steered":
        return f"{checkpoint}+steered-{name}@{steer_coef:g}"
    return f"{checkpoint}+prompted-{name}"


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise TaskParameterError(f"-M {name}={value!r} is not a boolean; write -M {name}=true or -M {name}=false.")


def _repetition_penalty(value: Any, method: str) -> float | None:
    if value is None:
        return STEERED_REPETITION_PENALTY if method == "steered" else None
    try:
        penalty = float(value)
    except (TypeError, ValueError):
        penalty = float("nan")
    if not penalty > 0:
        raise TaskParameterError(f"-M repetition_penalty={value!r}; give a positive number (1.0 means no penalty).")
    return penalty


def refuse_pickle_only(checkpoint: str) -> None:
    """A local checkpoint whose weights exist only as pickle files is refused: unpickling can run code."""
    folder = Path(checkpoint)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in ("*.bin", "*.pt", "*.pth", "*.ckpt") for p in folder.glob(pattern))
    if pickles:
        raise UnsafeWeightsError(
            f"checkpoint {folder} has only pickle weights ({', '.join(pickles)}), and loading pickle can run code. "
            "Fix: convert it once with model.save_pretrained(path) (transformers writes safetensors), or, if you "
            "trust the files, opt in with -M allow_pickle=true.")


def with_own_usage(output: ModelOutput, tokenizer: Any, max_tokens: int | None) -> ModelOutput:
    """The reply's own output-token count and stop reason.

    Inspect's transformers provider gives every reply of a batch the batch's padded length as its output tokens
    and no stop reason, so a short reply batched beside a long one looked cut off at its budget (judges counted
    it as truncated). The reply is re-tokenised instead, capped at the batch length (decoding and re-encoding can
    merge or split tokens); reaching ``max_tokens`` means it was cut off.
    """
    if not output.choices or output.usage is None:
        return output
    own = min(len(tokenizer(output.completion, add_special_tokens=False)["input_ids"]), output.usage.output_tokens)
    usage = output.usage.model_copy(update={"output_tokens": own, "total_tokens": output.usage.input_tokens + own})
    stop = "max_tokens" if max_tokens is not None and own >= max_tokens else "stop"
    choices = [output.choices[0].model_copy(update={"stop_reason": stop}), *output.choices[1:]]
    return output.model_copy(update={"usage": usage, "choices": choices})


def batching_of(model_args: dict[str, Any]) -> str:
    """The transformers engine's batching named by ``-M batching=`` (default charbench), taken out and checked."""
    batching = str(model_args.pop("batching", "charbench")).strip().lower()
    if batching not in BATCHING:
        raise TaskParameterError(f"-M batching={batching!r} is not one of {BATCHING}; the default is charbench (the "
                                 "provider's own batching), inspect runs Inspect's transformers queue.")
    return batching


def engine_of(model_args: dict[str, Any]) -> str:
    """The engine named by ``-M engine=`` (default transformers), checked."""
    engine = str(model_args.get("engine", "transformers")).strip().lower()
    if engine not in ENGINES:
        raise TaskParameterError(f"-M engine={model_args.get('engine')!r} is not one of {ENGINES}; the default is "
                                 "transformers, -M engine=vllm needs vLLM installed (make test-vllm builds one).")
    return engine


@dataclass(frozen=True)
class Variant:
    """The model arguments that make a checkpoint a variant, read the same way by both engines."""

    persona: str | None
    method: str
    steer_coef: float
    steer_pairs: int
    assistant_name: str
    allow_pickle: bool
    trust_remote_code: bool
    repetition_penalty: float | None


def pop_variant(model_args: dict[str, Any]) -> Variant:
    """Take the variant's arguments out of ``model_args`` (the rest goes to the engine), checked."""
    persona = model_args.pop("persona", None)
    method = str(model_args.pop("method", "prompted" if persona else "base"))
    if method not in METHODS:
        raise TaskParameterError(f"-M method={method} is not one of {METHODS}.")
    return Variant(
        persona=persona,
        method=method,
        steer_coef=float(model_args.pop("steer_coef", DEFAULT_STEER_COEF)),
        steer_pairs=int(model_args.pop("steer_pairs", 48)),
        assistant_name=str(model_args.pop("assistant_name", "Assistant")),
        allow_pickle=_flag(model_args.pop("allow_pickle", False), "allow_pickle"),
        trust_remote_code=_flag(model_args.pop("trust_remote_code", False), "trust_remote_code"),
        repetition_penalty=_repetition_penalty(model_args.pop("repetition_penalty", None), method),
    )


class CharbenchModelAPI(HuggingFaceAPI):
    """The ``charbench/`` provider (registered with Inspect by :func:`charbench_provider`)."""

    def __new__(cls, *args: Any, **model_args: Any) -> CharbenchModelAPI:
        # -M engine=vllm builds the vLLM engine (a subclass: same rendering, variants and log-prob interface).
        if cls is CharbenchModelAPI and engine_of(model_args) == "vllm":
            from charbench.models.vllm_engine import VLLMEngineAPI

            return super().__new__(VLLMEngineAPI)
        return super().__new__(cls)

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        self.engine = engine_of(model_args)
        model_args.pop("engine", None)
        self.batching = batching_of(model_args)
        variant = pop_variant(model_args)
        self.checkpoint = resolve_checkpoint(model_name)
        model_args["trust_remote_code"] = variant.trust_remote_code
        if not variant.allow_pickle:
            refuse_pickle_only(self.checkpoint)
            model_args["use_safetensors"] = True
        model_args.setdefault("model_path", self.checkpoint)
        model_args.setdefault("dtype", torch.float32)
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        self.model.eval()
        self.adopt_variant(model_name, variant)
        if self.repetition_penalty is not None:
            # Inspect's GenerateConfig has no repetition penalty; generate() falls back to generation_config.
            self.model.generation_config.repetition_penalty = self.repetition_penalty
        self._lock = threading.Lock()
        self._batcher: GenerationBatcher | None = None  # started by the first generate()
        self._asked: dict[bytes, int] = {}  # (seed, sample, prompt) -> requests so far, for request_seed
        self._prefix = PrefixCache()
        self._scoring = CombinedScoring(self._score_now, self._hold_model)
        self._hooks: list[Any] = []
        if variant.method == "steered" and self.constitution is not None:
            from charbench.models.steering import apply_steering, persona_steering_vectors

            vectors = persona_steering_vectors(self, self.constitution, n_pairs=variant.steer_pairs)
            self._hooks = apply_steering(self.model, vectors, variant.steer_coef)

    def adopt_variant(self, model_name: str, variant: Variant) -> None:
        """Set the variant's attributes and the model name that carries it (shared by both engines)."""
        self.assistant_name = variant.assistant_name
        self.method = variant.method
        # method without persona: a per-sample persona variant, for tasks that take the persona from each
        # sample (break_character, persona_responses, prefill_attack); the task applies it per sample.
        self.per_sample_persona = variant.method != "base" and not variant.persona
        self.constitution = load_constitution(variant.persona) if variant.persona else None
        self.persona_prompt = (
            persona_system_prompt(self.constitution, self.assistant_name) if self.constitution else None
        )
        self.steer_coef = variant.steer_coef if variant.method == "steered" else None
        self.base_model_name = model_name
        self.model_name = variant_label(model_name, variant.method, variant.persona, self.steer_coef)
        self.repetition_penalty = variant.repetition_penalty
        if self.repetition_penalty is not None:
            default = STEERED_REPETITION_PENALTY if variant.method == "steered" else 1.0
            if self.repetition_penalty != default:  # a non-default setting is a different variant
                self.model_name += f"+rp{self.repetition_penalty:g}"

    async def generate(self, input, tools, tool_choice, config):  # type: ignore[no-untyped-def]
        if self.per_sample_persona:
            self._check_per_sample_persona()
        if self.batching == "charbench" and not tools and config.logprobs is None and self.hidden_states is None:
            return await self._generate_batched(input, config)
        # transformers rejects temperature 0 when sampling is on; top-k 1 sampling is greedy decoding and keeps
        # "temperature 0" (what judges ask for) meaning what it means on every other provider.
        if config.temperature == 0:
            config = config.model_copy(update={"temperature": 1.0, "top_k": 1, "top_p": None})
        output = await super().generate(input, tools, tool_choice, config)
        return with_own_usage(output, self.tokenizer, config.max_tokens)

    async def _generate_batched(self, input: list[ChatMessage], config: GenerateConfig) -> ModelOutput:
        prompt_ids = self.tokenizer(self.hf_chat(input, []), **(self.tokenizer_call_args or {}))["input_ids"]
        batch_size = config.max_connections or self.max_connections()  # Inspect's batch size: its concurrency
        settings = self.generation_settings(config)
        seed = self.request_seed(config.seed, list(prompt_ids)) if settings.do_sample else None
        reply = await self.batcher().generate(list(prompt_ids), settings, batch_size, seed)
        message = ChatMessageAssistant(content=reply.text, model=self.model_name, source="generate")
        stop: Literal["max_tokens", "stop"] = "max_tokens" if reply.hit_token_limit else "stop"
        usage = ModelUsage(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
                           total_tokens=reply.input_tokens + reply.output_tokens)
        return ModelOutput(model=self.model_name, choices=[ChatCompletionChoice(message=message, stop_reason=stop)],
                           usage=usage, time=reply.seconds)

    def request_seed(self, seed: int | None, prompt_ids: list[int]) -> int:
        """The random stream of one sampled request: from the run's seed, the Inspect sample and epoch asking, the
        prompt, and how many times that sample has asked this prompt before. Its reply then does not depend on
        which requests share its batch or how many samples run at once. Without a run seed, a fresh random one."""
        from inspect_ai.log._samples import sample_active

        if seed is None:
            return random.SystemRandom().getrandbits(63)
        active = sample_active()
        asker = (str(active.sample.id), active.epoch) if active is not None else None
        key = hashlib.sha256(repr((seed, asker, prompt_ids)).encode()).digest()
        repeat = self._asked.get(key, 0)
        self._asked[key] = repeat + 1
        return int.from_bytes(hashlib.sha256(key + repeat.to_bytes(8, "little")).digest()[:8], "little") >> 1

    def generation_settings(self, config: GenerateConfig) -> Settings:
        """The ``model.generate`` arguments for ``config``, read as Inspect's transformers provider reads them,
        except that temperature 0 is greedy decoding itself rather than top-k 1 sampling (the same tokens)."""
        max_new_tokens = config.max_tokens or self.max_tokens() or 1
        stop_seqs = tuple(config.stop_seqs or ())
        if config.temperature == 0 or not self.do_sample:
            return Settings(max_new_tokens=max_new_tokens, do_sample=False, stop_seqs=stop_seqs)
        return Settings(max_new_tokens=max_new_tokens, do_sample=True, temperature=config.temperature,
                        top_p=config.top_p, top_k=config.top_k, stop_seqs=stop_seqs)

    def batcher(self) -> GenerationBatcher:
        if self._batcher is None:
            self._batcher = GenerationBatcher(self.model, self.tokenizer, self._lock)
        return self._batcher

    def _check_per_sample_persona(self) -> None:
        # Without this a single-persona task would silently run a "+prompted" model as the base model.
        from inspect_ai.log._samples import sample_active

        active = sample_active()
        metadata = (active.sample.metadata or {}) if active is not None else {}
        if "persona" not in metadata:
            raise TaskParameterError(
                f"-M method={self.method} without -M persona is the per-sample variant of the multi-persona tasks "
                "(break_character, persona_responses, prefill_attack); for this task add -M persona=<name>.")
        if self.method == "steered":
            raise TaskParameterError(
                "the per-sample steered model does not generate itself; the task asks for one steered model per "
                "persona (charbench.tasks.personas.persona_model).")

    # -- conversation rendering ------------------------------------------------------------
    def persona_messages(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """Prepend the persona system prompt for the prompted baseline (merged with any task system prompt)."""
        if self.method != "prompted" or not self.persona_prompt:
            return messages
        messages = list(messages)
        if messages and isinstance(messages[0], ChatMessageSystem):
            merged = f"{self.persona_prompt}\n\n{messages[0].text}"
            return [ChatMessageSystem(content=merged), *messages[1:]]
        return [ChatMessageSystem(content=self.persona_prompt), *messages]

    def hf_chat(self, messages: list[ChatMessage], tools: list[ToolInfo]) -> str:
        return super().hf_chat(self.persona_messages(messages), tools)

    def _apply_chat_template(self, hf_messages, tools_list, chat_template):  # type: ignore[no-untyped-def]
        messages = [m.model_dump(exclude_none=True) for m in hf_messages]
        # A trailing assistant turn is a prefill: continue it instead of closing it.
        prefill = bool(messages) and messages[-1].get("role") == "assistant"
        return self.tokenizer.apply_chat_template(
            messages,
            chat_template=chat_template,
            tokenize=False,
            add_generation_prompt=not prefill,
            continue_final_message=prefill,
            tools=tools_list or None,
        )

    def render(self, messages: list[ChatMessage], add_generation_prompt: bool = True) -> str:
        """The exact text the model sees for ``messages`` (persona and chat template applied)."""
        return self.hf_chat(copy.deepcopy(messages), [])

    # -- log-likelihoods (the LogProbModel interface, charbench.models.logprobs) ---------------------
    def continuation_logprobs(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 8, cache_context: bool = True
    ) -> list[ContinuationScore]:
        """For each (context, continuation): summed log-prob of the continuation, its token count, and
        whether greedy decoding would produce it. Continuations sharing a context are scored from one KV
        cache of it; ``cache_context=False`` runs the plain padded batch (same numbers, slower). Calls made while
        the model is busy are scored together (``charbench.models.combining``)."""
        return self._scoring(pairs, batch_size, cache_context)

    def _score_now(self, pairs: list[tuple[str, str]], batch_size: int, cache_context: bool) -> list[ContinuationScore]:
        return score_continuations(self.model, self.tokenizer, pairs, batch_size, self._prefix, cache_context)

    @contextmanager
    def _hold_model(self) -> Iterator[None]:
        with GenerationBatcher.compute_turn, self._lock:  # a judge's scoring waits for the other model's batch
            yield

    def next_token_logprobs(self, context: str, candidates: Sequence[str]) -> dict[str, float]:
        """Log-probability of each candidate right after ``context`` (summed over its tokens if several)."""
        if len(set(candidates)) != len(candidates):
            raise TaskParameterError(f"next_token_logprobs got duplicate candidates {list(candidates)}; give each once.")
        scores = self.continuation_logprobs([(context, c) for c in candidates])
        return {c: s.logprob for c, s in zip(candidates, scores)}

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()  # queued requests finish before the model goes
            self._batcher = None
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._prefix.clear()  # its keys were computed with the hooks just removed
        super().close()


@modelapi(name="charbench")
def charbench_provider() -> type[CharbenchModelAPI]:
    # Registered through a factory: decorating the class itself would leave Inspect's wrapper function, not the
    # class, under the name CharbenchModelAPI, and the vLLM engine subclasses the class.
    return CharbenchModelAPI
