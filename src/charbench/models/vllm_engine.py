"""The vLLM engine behind the ``charbench/`` provider (``-M engine=vllm``).

It is the same provider as the transformers engine (a subclass of ``CharbenchModelAPI``), so everything that
decides *what* the model reads is shared: the checkpoint name, the variant and its model name, the prompted
persona system prompt, the chat template with a trailing assistant message continued (true prefill), and the
tokenization of the rendered text. Only *how* tokens are produced differs:

* **generation**: one in-process vLLM engine (``vllm.LLM``'s ``LLMEngine``) is stepped by one background
  thread; every ``generate()`` call Inspect makes concurrently adds a request to it and awaits its future,
  so requests join and leave the running batch as they arrive and finish (continuous batching). Every variant
  of a checkpoint with the same engine arguments shares that one engine in a process (:class:`SharedEngine`):
  vLLM reserves a share of the accelerator's memory per engine, so the prompted variant's engine would not
  fit beside the base variant's, and the variants differ only in prompt and sampling settings anyway;
* **log-likelihoods** (``continuation_logprobs``): each (context, continuation) is one request for a single
  token with ``prompt_logprobs=0``; the continuation's tokens are summed from the prompt log-probs and
  "greedy" means each had rank 1. Context and continuation are split into tokens exactly as the transformers
  engine splits them (``charbench.models.logprobs.encode_pairs``).

The model name is the transformers engine's (``charbench/smollm2+prompted``), without an engine suffix: both
engines run the same variant of the same checkpoint, read identical token ids, and agree on log-likelihoods
within the tolerance measured in ``tests/vllm``; the engine is recorded in the log's model arguments. Sampled
generations differ between engines as two seeds differ (each engine draws its own random numbers); on both, a
sampled request has its own seeded stream, so its reply does not depend on the requests batched with it.

Refused with a clear error rather than run some other way: ``method=steered`` (steering needs forward hooks on
the residual stream, which vLLM's compiled models do not offer; the transformers engine runs it) and tool
calls. Every other ``-M`` argument (``tensor_parallel_size``, ``data_parallel_size``,
``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ``enforce_eager``, ``max_num_seqs``...) is passed
to ``vllm.LLM``. ``dtype`` defaults to float32 like the transformers engine, so the two agree; pass
``-M dtype=bfloat16`` on a GPU.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, ClassVar

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessageAssistant,
    GenerateConfig,
    ModelOutput,
    ModelUsage,
)
from inspect_ai.model._model import ModelAPI

from charbench.errors import TaskParameterError
from charbench.models.logprobs import ContinuationScore, encode_pairs
from charbench.models.provider import CharbenchModelAPI, engine_of, pop_variant, refuse_pickle_only, resolve_checkpoint

# Inspect's hf provider collects these itself; the vLLM engine reads the ones that shape the prompt.
PROMPT_ARGS = ("chat_template", "use_chat_template", "tokenizer_call_args", "enable_thinking")
STOP_REASONS = {"length": "max_tokens", "stop": "stop", "abort": "unknown"}
_STOP = object()


class SharedEngine:
    """One vLLM engine per set of engine arguments in this process, stepped by one thread.

    The thread adds submitted requests between steps and resolves their futures; callers never touch the engine,
    so Inspect's concurrent ``generate()`` calls and the synchronous log-likelihood scorer share one running
    batch without a lock around the model. Variants hold it through :meth:`acquire` / :meth:`release`; the last
    release stops the thread and the engine.
    """

    _open: ClassVar[dict[str, SharedEngine]] = {}  # process-wide on purpose: see the module docstring
    _guard: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def acquire(cls, kwargs: dict[str, Any]) -> SharedEngine:
        key = json.dumps(kwargs, sort_keys=True, default=str)
        with cls._guard:
            shared = cls._open.get(key)
            if shared is None or shared._failure is not None:  # a failed engine is replaced, not reused
                shared = cls._open[key] = cls(key, start_engine(kwargs))
            shared.users += 1
            return shared

    def release(self) -> None:
        with self._guard:
            self.users -= 1
            if self.users > 0:
                return
            self._open.pop(self.key, None)
        self.close()

    def __init__(self, key: str, llm: Any) -> None:
        self.key = key
        self.llm = llm
        self.users = 0
        self._engine = llm.llm_engine
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[str, Future[Any]] = {}
        self._ids = itertools.count()
        self._failure: BaseException | None = None
        self._accepting = threading.Lock()  # a request is either queued before the engine stops or refused
        self._thread = threading.Thread(target=self._run, name="charbench-vllm-engine", daemon=True)
        self._thread.start()

    def submit(self, token_ids: list[int], params: Any) -> Future[Any]:
        """Queue one request; the future resolves to its finished ``RequestOutput``."""
        future: Future[Any] = Future()
        with self._accepting:
            if self._failure is not None:
                future.set_exception(RuntimeError(f"the vLLM engine stopped: {self._failure}"))
            else:
                self._inbox.put((f"charbench-{next(self._ids)}", token_ids, params, future))
        return future

    def close(self) -> None:
        self._inbox.put(_STOP)
        self._thread.join(timeout=60)
        engine_core = getattr(self._engine, "engine_core", None)
        if engine_core is not None and hasattr(engine_core, "shutdown"):
            engine_core.shutdown()  # the engine-core process and its KV cache go now, not at interpreter exit

    def _run(self) -> None:
        from vllm.inputs import TokensPrompt

        while True:
            # Block while idle; between steps take whatever arrived so it joins the running batch.
            item = self._inbox.get() if not self._pending else self._next_nowait()
            while item is not None:
                if item is _STOP:
                    self._stop(RuntimeError("the vLLM engine was closed"))
                    return
                request_id, token_ids, params, future = item
                try:
                    self._engine.add_request(request_id, TokensPrompt(prompt_token_ids=token_ids), params)
                    self._pending[request_id] = future
                except Exception as exc:  # a bad request fails alone; the engine goes on
                    future.set_exception(exc)
                item = self._next_nowait()
            if not self._pending:
                continue
            try:
                outputs = self._engine.step()
            except BaseException as exc:  # the engine is unusable: fail every waiting caller, refuse new ones
                self._stop(exc)
                return
            for output in outputs:
                if output.finished and output.request_id in self._pending:
                    self._pending.pop(output.request_id).set_result(output)

    def _next_nowait(self) -> Any:
        try:
            return self._inbox.get_nowait()
        except queue.Empty:
            return None

    def _stop(self, exc: BaseException) -> None:
        """Refuse new requests, then fail every request in the engine or still queued."""
        with self._accepting:
            self._failure = exc
        for future in self._pending.values():
            future.set_exception(exc)
        self._pending.clear()
        while (item := self._next_nowait()) is not None:
            if item is not _STOP:
                item[3].set_exception(exc)


def engine_kwargs(model_args: dict[str, Any], checkpoint: str, allow_pickle: bool, trust_remote_code: bool,
                  seed: int | None) -> dict[str, Any]:
    """Arguments for ``vllm.LLM``: the user's ``-M`` settings plus charbench's defaults (float32, safetensors)."""
    kwargs = dict(model_args)
    kwargs.setdefault("dtype", "float32")  # the transformers engine's default, so the engines agree
    kwargs["dtype"] = str(kwargs["dtype"]).removeprefix("torch.")
    if not allow_pickle:
        kwargs["load_format"] = "safetensors"  # as the transformers engine: never unpickle weights
    kwargs["trust_remote_code"] = trust_remote_code
    if seed is not None:
        kwargs.setdefault("seed", seed)  # one random stream for the engine, as the transformers engine seeds torch
    kwargs.setdefault("model", checkpoint)
    return kwargs


def transformers_sampling_defaults(checkpoint: str) -> dict[str, Any]:
    """What the transformers engine samples with when Inspect's config leaves a setting unset.

    The checkpoint's ``generation_config.json``, else transformers' own fallbacks, which include ``top_k=50``
    (vLLM's neutral default is no top-k, which would sample a different distribution).
    """
    from transformers import GenerationConfig

    try:
        own = GenerationConfig.from_pretrained(checkpoint)
    except OSError:  # no generation_config.json: transformers uses its fallbacks alone
        own = GenerationConfig()
    fallback = GenerationConfig._get_default_generation_params()
    keys = ("temperature", "top_p", "top_k", "repetition_penalty")
    return {k: getattr(own, k) if getattr(own, k, None) is not None else fallback[k] for k in keys}


def start_engine(kwargs: dict[str, Any]) -> Any:
    """``vllm.LLM(**kwargs)``'s engine, with a charbench error naming the fix when vLLM is absent or refuses."""
    try:
        from vllm import LLM
    except ImportError as exc:
        raise TaskParameterError(
            f"-M engine=vllm needs vLLM, which does not import here ({exc}). Fix: pip install 'charbench[vllm]' on "
            "a GPU machine, or `make test-vllm` for the CPU build in .venv-vllm; or drop -M engine=vllm.") from exc
    try:
        return LLM(**kwargs)
    except TypeError as exc:
        raise TaskParameterError(
            f"vLLM refused the model arguments {sorted(kwargs)} ({exc}); -M arguments other than charbench's "
            "(persona, method, steer_coef, repetition_penalty, assistant_name, allow_pickle, trust_remote_code) "
            "go to vllm.LLM, so give only its engine arguments (e.g. tensor_parallel_size, max_model_len).") from exc


class VLLMEngineAPI(CharbenchModelAPI):
    """``charbench/<checkpoint> -M engine=vllm``: the provider's variants and interfaces on a vLLM engine."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        # ModelAPI's own constructor: HuggingFaceAPI's would load the checkpoint into transformers as well.
        ModelAPI.__init__(self, model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        self.engine = engine_of(model_args)
        model_args.pop("engine", None)
        variant = pop_variant(model_args)
        if variant.method == "steered":
            raise TaskParameterError(
                "-M engine=vllm cannot run method=steered: steering adds a vector to the residual stream through "
                "forward hooks, which vLLM's engine does not offer. Fix: drop -M engine=vllm for the steered "
                "variant (the transformers engine runs it); base and prompted variants run on either engine.")
        self.checkpoint = resolve_checkpoint(model_name)
        if not variant.allow_pickle:
            refuse_pickle_only(self.checkpoint)
        prompt_args = {k: model_args.pop(k) for k in PROMPT_ARGS if k in model_args}
        self.chat_template = prompt_args.get("chat_template")
        self.use_chat_template = prompt_args.get("use_chat_template")
        self.enable_thinking = prompt_args.get("enable_thinking")
        self.tokenizer_call_args = prompt_args.get("tokenizer_call_args") or {}
        self.tokenizer = self._load_tokenizer(variant.trust_remote_code)
        self.sampling_defaults = transformers_sampling_defaults(self.checkpoint)
        self.adopt_variant(model_name, variant)
        self._hooks: list[Any] = []
        self._asked: dict[bytes, int] = {}  # for request_seed, as on the transformers engine
        self.engine_args = engine_kwargs(model_args, self.checkpoint, variant.allow_pickle,
                                         variant.trust_remote_code, config.seed)
        self._shared: SharedEngine | None = SharedEngine.acquire(self.engine_args)

    def _load_tokenizer(self, trust_remote_code: bool) -> Any:
        # The tokenizer the transformers engine loads, so both render and tokenize prompts identically.
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.checkpoint, trust_remote_code=trust_remote_code)
        tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    # -- generation -------------------------------------------------------------------------------------------
    def prompt_token_ids(self, input: list[Any]) -> list[int]:
        """The token ids the model reads: the transformers engine's rendering and tokenizer call."""
        chat = self.hf_chat(input, [])
        return list(self.tokenizer(chat, **(self.tokenizer_call_args or {}))["input_ids"])

    def sampling_params(self, config: GenerateConfig, prompt_ids: list[int] | None = None) -> Any:
        """The checkpoint's generation defaults (as transformers reads them) overridden by Inspect's config; a
        sampled request for ``prompt_ids`` gets its own random stream (``request_seed``, as on the transformers
        engine, which seeds sampled requests only)."""
        from vllm import SamplingParams

        settings: dict[str, Any] = dict(self.sampling_defaults)
        overrides = {
            "max_tokens": config.max_tokens, "temperature": config.temperature, "top_p": config.top_p,
            "top_k": config.top_k, "stop": config.stop_seqs, "frequency_penalty": config.frequency_penalty,
            "presence_penalty": config.presence_penalty, "repetition_penalty": self.repetition_penalty,
        }
        settings.update({k: v for k, v in overrides.items() if v is not None})
        if settings.get("temperature") == 0:
            settings.pop("top_p", None)
            settings.pop("top_k", None)
        elif prompt_ids is not None:
            settings["seed"] = self.request_seed(config.seed, prompt_ids)
        return SamplingParams(**settings)

    async def generate(self, input, tools, tool_choice, config):  # type: ignore[no-untyped-def]
        if tools:
            raise TaskParameterError(
                "-M engine=vllm does not run tool calls; use the transformers engine (drop -M engine=vllm) or "
                "Inspect's vllm/ provider, which serves tools through vLLM's OpenAI server.")
        if self.per_sample_persona:
            self._check_per_sample_persona()
        token_ids = self.prompt_token_ids(input)
        params = self.sampling_params(config, token_ids)
        output = await asyncio.wrap_future(self._engine().submit(token_ids, params))
        completion = output.outputs[0]
        # The reply's own tokens, as the transformers engine counts them: an end-of-sequence token is not text.
        ids = list(completion.token_ids)
        n_out = len(ids) - (1 if ids and ids[-1] == self.tokenizer.eos_token_id else 0)
        return ModelOutput(
            model=self.model_name,
            choices=[ChatCompletionChoice(
                message=ChatMessageAssistant(content=completion.text, model=self.model_name, source="generate"),
                stop_reason=STOP_REASONS.get(completion.finish_reason or "", "unknown"),  # type: ignore[arg-type]
            )],
            usage=ModelUsage(input_tokens=len(token_ids), output_tokens=n_out, total_tokens=len(token_ids) + n_out),
        )

    def _engine(self) -> SharedEngine:
        if self._shared is None:
            raise RuntimeError(f"the vLLM engine of {self.model_name} was closed; get a new model")
        return self._shared

    def max_connections(self) -> int:
        # Requests only queue inside the engine, which batches what fits; more in flight keeps the batch full.
        return 64

    # -- log-likelihoods ------------------------------------------------------------------------------------------
    def continuation_logprobs(
        self, pairs: Sequence[tuple[str, str]], batch_size: int = 8, cache_context: bool = True
    ) -> list[ContinuationScore]:
        """The transformers engine's interface; all pairs go to the engine at once (it batches them itself).

        ``batch_size`` and ``cache_context`` are accepted for the shared interface; vLLM's scheduler and prefix
        cache take their place.
        """
        from vllm import SamplingParams

        if batch_size < 1:
            raise TaskParameterError(f"batch_size={batch_size}; give a positive batch size.")
        encoded = encode_pairs(self.tokenizer, pairs)
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        engine = self._engine()
        futures = [engine.submit(ctx + cont, params) for ctx, cont in encoded]
        return [continuation_score(future.result(), len(ctx), cont) for future, (ctx, cont) in zip(futures, encoded)]

    def close(self) -> None:
        shared, self._shared = getattr(self, "_shared", None), None
        if shared is not None:
            shared.release()


def continuation_score(output: Any, n_context: int, continuation: list[int]) -> ContinuationScore:
    """Sum the continuation's prompt log-probs; greedy when every continuation token had rank 1."""
    rows = output.prompt_logprobs[n_context : n_context + len(continuation)]
    total, greedy = 0.0, True
    for token, row in zip(continuation, rows):
        if row is None or token not in row:
            raise RuntimeError(f"vLLM returned no prompt log-prob for token {token}; this is a charbench bug")
        total += float(row[token].logprob)
        greedy = greedy and row[token].rank == 1
    return ContinuationScore(total, len(continuation), greedy)
