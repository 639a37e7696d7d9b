"""Batched generation for the transformers engine of the ``charbench/`` provider (issue 14).

Inspect's transformers provider batches concurrent ``generate()`` calls through one process-wide queue and
thread. Four things in that path cost time without changing what the model reads:

* a caller polls its result once a second, so every batch ends up to a second later than it finished;
* the queue is drained until no request has arrived for two seconds before the first batch starts;
* greedy decoding (temperature 0) is run as top-k 1 *sampling*, which pays for the sampler's warpers and a
  softmax over the vocabulary on every step;
* every reply is decoded beside the batch's padding and then re-tokenised to find its own length.

:class:`GenerationBatcher` is the provider's own queue, one per provider instance: a worker thread takes what
has gathered (waiting only ``gather_seconds`` of quiet), groups requests with the same settings, sorts each group
by prompt length so that a batch pads its prompts as little as possible, and hands every caller its own reply,
token count and stop reason the moment its batch is done. Greedy requests run as greedy decoding
(``do_sample=False``), which picks the same token as top-k 1 sampling.

A batch whose prompts start with the same tokens (a prompted persona's system prompt: 330-460 tokens before
every user message) computes that prefix once, not once per row, and each row's own tokens follow it after its
padding (:func:`prefix_layout`). On a 2-core CPU the prompts' forward pass is most of a short reply's cost, so
this is 2.5x on a batch of 16 persona prompts with 32-token replies (greedy replies identical;
``bench/generation_bench.py``). Decoding then reads the prefix's keys once per step for the whole batch
(:mod:`charbench.models.shared_prefix`) rather than once per row from a repeated cache: 1.4-1.7x on 54 persona
prompts with 64-token replies, replies identical (``--prefix-ab``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
import sniffio

from charbench.models.logprobs import common_prefix_length

logger = logging.getLogger(__name__)

GATHER_SECONDS = 0.05
# Below this many shared tokens a separate prefix pass saves less than it costs.
MIN_SHARED_PREFIX = 16
# What one more decoding loop costs, per new token, in prompt tokens (a 135M model on 2 CPU cores: one decoding
# step of a batch of 18 takes about as long as a forward pass over 80 prompt tokens).
STEP_TOKENS = 64
# prefix_sets stops splitting this deep (prompts nested as prefixes of each other, thousands deep).
MAX_SPLIT_DEPTH = 64
POLL_SECONDS = 0.05
_STOP = None


@dataclass(frozen=True)
class Settings:
    """What requests sharing a batch must have in common: the arguments of one ``model.generate`` call."""

    max_new_tokens: int
    do_sample: bool
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_seqs: tuple[str, ...] = ()

    def generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            # Unset values fall back to the checkpoint's generation_config, as in Inspect's provider.
            sampling = {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k}
            kwargs.update({k: v for k, v in sampling.items() if v is not None})
        if self.stop_seqs:
            from transformers.generation import StopStringCriteria

            kwargs["stopping_criteria"] = [StopStringCriteria(tokenizer, list(self.stop_seqs))]
        return kwargs


@dataclass(frozen=True)
class Reply:
    """One request's own result (not its batch's): text, token counts and how it ended."""

    text: str
    input_tokens: int
    output_tokens: int
    hit_token_limit: bool
    seconds: float


@dataclass
class _Request:
    prompt_ids: list[int]
    settings: Settings
    batch_size: int
    future: Future[Reply] = field(default_factory=Future)
    seed: int | None = None  # a sampled request's own random stream (see RowSampler); None: the global one


class RowSampler:
    """Sampling with one random stream per batch row, as a logits processor of greedy decoding.

    transformers samples a batch from the global random generator, so a sampled reply depends on which other
    requests shared its batch (and on how many samples Inspect ran at once). Here each row adds Gumbel noise from
    its own seeded generator to its temperature-, top-k- and top-p-processed scores, and greedy decoding takes the
    largest: the Gumbel-max trick, a draw from exactly the distribution transformers would sample from. A reply
    then depends only on its prompt, its seed and the model (up to the rounding of batched arithmetic).
    Temperature, top-k and top-p fall back to the checkpoint's generation_config where the request leaves them
    unset, and run in transformers' order: its own temperature and top-k warpers, and :class:`NucleusFilter` for
    top-p (the tokens transformers' warper keeps, without its sort of the vocabulary). A checkpoint whose
    generation_config adds another sampling step (min-p, typical-p...) samples through transformers' own sampler
    instead.
    """

    def __init__(self, seeds: Sequence[int], settings: Settings, generation_config: Any) -> None:
        import torch
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        def pick(value: Any, name: str) -> Any:
            return value if value is not None else getattr(generation_config, name, None)

        temperature, top_k, top_p = pick(settings.temperature, "temperature"), pick(settings.top_k, "top_k"), \
            pick(settings.top_p, "top_p")
        self.warpers: list[Any] = []
        if temperature is not None and temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k is not None and top_k != 0:
            self.warpers.append(TopKLogitsWarper(top_k=top_k))
        if top_p is not None and top_p < 1.0:
            TopPLogitsWarper(top_p=top_p)  # transformers' own check of the value
            self.warpers.append(NucleusFilter(top_p))
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    @staticmethod
    def supports(generation_config: Any) -> bool:
        """Whether the checkpoint's generation_config sets no sampling step beyond temperature, top-k and top-p."""
        def get(name: str) -> Any:
            return getattr(generation_config, name, None)

        cutoffs = [get(name) for name in ("epsilon_cutoff", "eta_cutoff")]
        return (get("min_p") is None and get("top_h") is None and (get("typical_p") or 1.0) >= 1.0
                and not any(c is not None and 0.0 < c < 1.0 for c in cutoffs))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for warper in self.warpers:
            scores = warper(input_ids, scores)
        uniform = torch.stack([torch.rand(scores.shape[1], generator=g, dtype=torch.float64)
                               for g in self.generators]).to(device=scores.device)
        # Noise only where a token can still be drawn: the rest stays -inf (top-p keeps a few hundred of 49k).
        noisy = scores.float().clone()
        open_ = torch.isfinite(noisy)
        noisy[open_] += (-torch.log(-torch.log(uniform[open_].clamp(min=1e-300)))).float()
        return noisy


class NucleusFilter:
    """transformers' top-p filter (``TopPLogitsWarper``, at least one token kept) without sorting the vocabulary.

    The warper sorts every row's 49k scores at every step: 107 ms beside a 250 ms decoding step at 54 rows on
    this CPU, against 8 ms here (``bench/sampler_bench.py``). The tokens it keeps are the most probable ones whose more probable predecessors hold less than
    ``top_p`` of the mass, so the ``k`` most probable tokens decide them whenever those hold ``top_p`` or more;
    ``k`` grows (to the whole vocabulary at most) until they do in every row. The same tokens are kept, up to the
    rounding of the mass summed from the other end.
    """

    FIRST_K = 256

    def __init__(self, top_p: float) -> None:
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        probs = scores.softmax(dim=-1)
        k = min(self.FIRST_K, probs.shape[-1])
        while True:
            top, indices = probs.topk(k, dim=-1)  # sorted, most probable first
            mass = top.cumsum(dim=-1)
            if k == probs.shape[-1] or bool((mass[:, -1] >= self.top_p).all()):
                break
            k = min(k * 8, probs.shape[-1])
        keep = (mass - top) < self.top_p
        keep[:, 0] = True
        drop = torch.ones_like(scores, dtype=torch.bool).scatter_(1, indices, ~keep)
        return scores.masked_fill(drop, -float("inf"))


def plan_batches(requests: Sequence[_Request]) -> list[list[_Request]]:
    """Group requests that can share a ``generate`` call and cut each group into batches of at most its batch
    size: first into sets that share a long prompt prefix (:func:`prefix_sets`), then each set, sorted by prompt
    length (less left padding to compute over), into batches."""
    groups: dict[tuple[Settings, int], list[_Request]] = {}
    for request in requests:
        groups.setdefault((request.settings, request.batch_size), []).append(request)
    batches: list[list[_Request]] = []
    for (settings, size), group in groups.items():
        for members in prefix_sets(group, settings.max_new_tokens * STEP_TOKENS):
            ordered = sorted(members, key=lambda r: len(r.prompt_ids))
            batches.extend(ordered[i : i + size] for i in range(0, len(ordered), size))
    return batches


def prefix_sets(requests: Sequence[_Request], split_cost: int) -> list[list[_Request]]:
    """Split requests into sets whose prompts share long prefixes, where a set of its own pays for itself.

    In lexicographic order, prompts that share a prefix are neighbours, and a run of them shares the smallest
    common prefix of its neighbours. A run splits at its weakest links into parts; a part becomes a set of its
    own when what it saves that way (the prompt tokens of its own longer prefix, computed once per batch instead
    of once per prompt) exceeds ``split_cost``, the token-equivalent of the decoding loop of one more batch, plus
    what it shares with the rest. Two personas' prompts share a generic opening of some 60 tokens and then 300 of
    their own: two sets. Unprompted user messages share only the chat template's opening: one set.
    """
    ordered = sorted(requests, key=lambda r: r.prompt_ids)
    links = [common_prefix_length(a.prompt_ids, b.prompt_ids) for a, b in itertools.pairwise(ordered)]

    def best(lo: int, hi: int, depth: int) -> tuple[int, list[list[int]]]:
        """Tokens saved by the best sets of ordered[lo:hi] (net of split costs), and those sets as indices."""
        n = hi - lo
        if n < 2 or depth > MAX_SPLIT_DEPTH:
            return (n - 1) * (min(links[lo : hi - 1]) if n > 1 else 0), [list(range(lo, hi))]
        weakest = min(links[lo : hi - 1])
        bounds = [lo] + [k + 1 for k in range(lo, hi - 1) if links[k] == weakest] + [hi]
        kept: list[int] = []
        saved, sets = 0, []
        for a, b in itertools.pairwise(bounds):
            value, parts = best(a, b, depth + 1)
            if value - split_cost > (b - a) * weakest:  # better apart than sharing ``weakest`` with the rest
                saved += value - split_cost
                sets += parts
            else:
                kept += range(a, b)
        if kept:
            saved += (len(kept) - 1) * weakest
            sets.insert(0, kept)
        return saved, sets

    return [[ordered[k] for k in members] for members in best(0, len(ordered), 0)[1]] if ordered else []


def shared_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving at least one token of each prompt outside the prefix (the first
    generated token is read from the last prompt token's logits)."""
    return min([min(len(p) for p in prompts) - 1, *(common_prefix_length(prompts[0], p) for p in prompts[1:])])


def prefix_layout(prompts: Sequence[Sequence[int]], shared: int, pad_id: int) -> tuple[Any, Any]:
    """Input ids and attention mask that put the shared prefix first and pad between it and each prompt's own
    tokens: ``prefix, pad..., rest``. The prefix then sits at the same place in every row, so one cached pass
    over it serves the whole batch; position ids follow the mask, so every token keeps its unpadded position."""
    import torch

    width = max(len(p) for p in prompts) - shared
    rows, masks = [], []
    for p in prompts:
        gap = width - (len(p) - shared)
        rows.append([*p[:shared], *([pad_id] * gap), *p[shared:]])
        masks.append([1] * shared + [0] * gap + [1] * (len(p) - shared))
    return torch.tensor(rows), torch.tensor(masks)


def reply_length(row: Sequence[int], end_ids: frozenset[int]) -> int:
    """Tokens of a generated row before its first end-of-sequence token (what follows is padding)."""
    for i, token in enumerate(row):
        if token in end_ids:
            return i
    return len(row)


def end_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Ids that end a reply: the end-of-sequence ids generate stops on and the padding it fills finished rows
    with (a row ended by a stop string is padded without an end-of-sequence token)."""
    config = model.generation_config
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    ids = [*eos, config.pad_token_id, tokenizer.eos_token_id]
    return frozenset(i for i in ids if i is not None)


async def wait_for(future: Future[Reply]) -> Reply:
    """Await a worker thread's future without blocking the event loop."""
    if sniffio.current_async_library() == "asyncio":
        return await asyncio.wrap_future(future)  # woken by the worker, no polling delay
    while not future.done():  # trio: no thread-safe wake-up for a concurrent future, poll briefly
        await anyio.sleep(POLL_SECONDS)
    return future.result()


class GenerationBatcher:
    """One worker thread generating queued requests in batches on one transformers model.

    ``model_lock`` is held around each batch, so log-likelihood scoring on the same model (which takes it too)
    does not run concurrently with a batch and split the CPU between them. Batches of different models (the
    variants of a leaderboard run, a judge beside the model under test) take turns through ``compute_turn``, as
    they did in Inspect's single batch thread, and the provider's log-likelihood scoring takes the same turn:
    run at once, two forward passes split the same cores and oversubscribe their thread pools. Take
    ``compute_turn`` before a model's own lock, as here, so that no two threads wait on each other.
    """

    compute_turn: ClassVar[threading.Lock] = threading.Lock()  # process-wide on purpose: see above

    def __init__(self, model: Any, tokenizer: Any, model_lock: threading.Lock,
                 gather_seconds: float = GATHER_SECONDS) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_lock = model_lock
        self.gather_seconds = gather_seconds
        self.end_ids = end_token_ids(model, tokenizer)
        self._prefix: tuple[tuple[int, ...], Any] | None = None  # only the worker thread touches it
        self.prefix_tokens_computed = 0
        self.prefix_tokens_reused = 0
        self.prefix_sharing: bool | None = None  # decided by the first batch with a shared prefix (_shares_prefix)
        self._inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="charbench-generate", daemon=True)
        self._thread.start()

    def submit(self, prompt_ids: list[int], settings: Settings, batch_size: int, seed: int | None = None) -> Future[Reply]:
        if not self._thread.is_alive():
            raise RuntimeError("the charbench generation worker has stopped (the model was closed)")
        request = _Request(prompt_ids=list(prompt_ids), settings=settings, batch_size=max(1, batch_size), seed=seed)
        self._inbox.put(request)
        return request.future

    async def generate(self, prompt_ids: list[int], settings: Settings, batch_size: int,
                       seed: int | None = None) -> Reply:
        return await wait_for(self.submit(prompt_ids, settings, batch_size, seed))

    def close(self) -> None:
        self._inbox.put(_STOP)
        self._thread.join(timeout=600)

    def _run(self) -> None:
        while True:
            requests, stop = self._gather()
            for batch in plan_batches(requests):
                self._generate_batch(batch)
            if stop:
                return

    def _gather(self) -> tuple[list[_Request], bool]:
        """Block for a first request, then take whatever arrives until ``gather_seconds`` pass in quiet."""
        first = self._inbox.get()
        if first is _STOP:
            return [], True
        requests = [first]
        while True:
            try:
                item = self._inbox.get(timeout=self.gather_seconds)
            except queue.Empty:
                return requests, False
            if item is _STOP:
                return requests, True
            requests.append(item)

    def _generate_batch(self, batch: list[_Request]) -> None:
        try:
            start = time.monotonic()
            with self.compute_turn, self.model_lock:
                rows, lengths = self._run_generate(batch)
            seconds = time.monotonic() - start
            for request, row, n_prompt in zip(batch, rows, lengths):
                request.future.set_result(self._reply(request, row, n_prompt, seconds))
        except Exception as exc:  # the batch fails alone; the worker goes on with the next one
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)

    def _run_generate(self, batch: list[_Request]) -> tuple[list[list[int]], list[int]]:
        import torch

        prompts = [r.prompt_ids for r in batch]
        settings = batch[0].settings
        kwargs = settings.generate_kwargs(self.tokenizer)
        seeds = [r.seed for r in batch]
        if settings.do_sample and all(seed is not None for seed in seeds) and RowSampler.supports(
                self.model.generation_config):
            from transformers import LogitsProcessorList

            sampler = RowSampler([seed for seed in seeds if seed is not None], settings, self.model.generation_config)
            # Greedy decoding of the sampler's noisy scores; the sampling arguments it applies itself are unset here.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None,
                          logits_processor=LogitsProcessorList([sampler]))
        shared = shared_prefix_length(prompts)
        with torch.inference_mode():
            # A lone prompt only reuses a kept prefix: computing one for it alone would save nothing.
            plan = self._kept_prefix(prompts[0][:shared], compute=len(batch) > 1)
            if plan is not None:
                sequences, input_ids = self._generate_after_prefix(prompts, *plan, kwargs)
            else:
                padded = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
                input_ids = padded["input_ids"].to(self.model.device)
                attention_mask = padded["attention_mask"].to(self.model.device)
                sequences = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        generated = sequences[:, input_ids.shape[1] :].tolist()
        return generated, [len(p) for p in prompts]

    def _generate_after_prefix(self, prompts: list[list[int]], kept: Any, shared: int,
                               kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """``generate`` on prompts that start with the first ``shared`` tokens held by the cache ``kept``: the
        prefix read once per decoding step where this model allows it (:mod:`charbench.models.shared_prefix`),
        otherwise repeated over the batch."""
        from charbench.models.shared_prefix import (
            repeated_prefix_cache,
            shared_prefix_attention_in,
            shared_prefix_cache,
        )

        input_ids, attention_mask = prefix_layout(prompts, shared, self._pad_id())
        input_ids, attention_mask = input_ids.to(self.model.device), attention_mask.to(self.model.device)
        if self._shares_prefix(kept, shared, [p[shared:] for p in prompts[:2]]):
            with shared_prefix_attention_in(self.model):
                return self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                           past_key_values=shared_prefix_cache(kept, shared), **kwargs), input_ids
        cache = repeated_prefix_cache(kept, shared, len(prompts))
        return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache,
                                   **kwargs), input_ids

    def _shares_prefix(self, kept: Any, shared: int, own_tokens: list[list[int]]) -> bool:
        """Whether batches read their prefix once (:func:`~charbench.models.shared_prefix.can_share_prefix`, and
        the one-off check of this model's logits on the first such batch passed)."""
        from charbench.models.shared_prefix import can_share_prefix, shared_prefix_agrees

        if not can_share_prefix(self.model, kept):
            return False
        if self.prefix_sharing is None:
            self.prefix_sharing = shared_prefix_agrees(self.model, kept, shared, own_tokens, self._pad_id())
            if not self.prefix_sharing:
                logger.warning("%s: decoding with a prefix read once per step did not reproduce the model's "
                               "logits; its batches repeat the prefix over their rows instead",
                               type(self.model).__name__)
        return self.prefix_sharing

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.tokenizer.eos_token_id or 0

    def _kept_prefix(self, prefix: list[int], compute: bool) -> tuple[Any, int] | None:
        """The kept one-row KV cache that holds ``prefix`` or a part of it, and how many of its tokens to use;
        None when there is no prefix worth sharing (or none kept and ``compute`` is false).

        The prefix's forward pass is kept (one entry) for later batches: every batch of a step starts with the
        same persona prompt, though a batch's common prefix can run a few tokens further into its user messages.
        A kept entry that covers all but a few of the batch's prefix tokens is used (cut where the two part);
        otherwise the batch's prefix is computed and kept instead, which costs no more than the rows computing
        it themselves.
        """
        import torch

        kept = self._prefix[0] if self._prefix is not None else ()
        common = common_prefix_length(kept, prefix)
        reuse = common >= MIN_SHARED_PREFIX and (len(prefix) - common < MIN_SHARED_PREFIX or not compute)
        if not reuse:
            if not compute or len(prefix) < MIN_SHARED_PREFIX:
                return None
            self._prefix = None  # until the pass below succeeds, keep nothing that could be half-built
            ids = torch.tensor([prefix], device=self.model.device)
            self._prefix = (tuple(prefix), self.model(input_ids=ids, use_cache=True).past_key_values)
            self.prefix_tokens_computed += len(prefix)
            common = len(prefix)
        else:
            self.prefix_tokens_reused += common
        assert self._prefix is not None  # computed above or reused
        return self._prefix[1], common

    def _reply(self, request: _Request, row: list[int], n_prompt: int, seconds: float) -> Reply:
        n = reply_length(row, self.end_ids)
        text = self.tokenizer.decode(row[:n], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return Reply(text=text, input_tokens=n_prompt, output_tokens=n,
                     hit_token_limit=n >= request.settings.max_new_tokens, seconds=seconds)
