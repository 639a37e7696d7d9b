"""The typed log-probability interface that likelihood judges and log-likelihood scorers use.

``logprob_model(model)`` returns the model's :class:`LogProbModel` side (the ``charbench/`` provider
implements it) or raises a :class:`TaskParameterError` that names the alternative. Callers never reach
into ``model.api`` themselves, so a provider that cannot score log-probabilities fails before any work
starts and with the same message everywhere.

The scoring itself (:func:`score_continuations`) reuses computation the way lighteval's and the
harness's log-likelihood loops do not:

* continuations that share a context are scored from one KV cache of that context (ARC: four answers,
  one forward pass over the 25-shot context instead of four);
* consecutive contexts that share a token prefix (a common few-shot header, the same rendered chat
  prompt with a different option) reuse the cached prefix (:class:`PrefixCache`, one entry, owned by the
  provider instance and used under its lock);
* the continuations of one context (up to ``batch_size`` at a time) are packed into one row after that
  cache, kept apart by the attention mask, so the context's cache is not copied once per continuation
  (the few-shot block of ``shots=fixed`` capability tasks is then the only large thing, computed once);
* a context scored with a single continuation and little of it cached (a likelihood judge's hypothesis prompt)
  is a row of a left-padded batch instead, and only the continuation's positions go through the output layer.

``cache_context=False`` runs the plain padded batch (context + continuation per row); the two agree to
float rounding (``tests/test_logprobs.py`` checks 1e-4 on the embedded model and on a tiny random one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from charbench.errors import TaskParameterError

if TYPE_CHECKING:
    from inspect_ai.model import ChatMessage, Model, ModelAPI

REQUIRED_METHODS = ("render", "continuation_logprobs", "next_token_logprobs")


class ContinuationScore(NamedTuple):
    """Log-likelihood of one continuation after its context.

    A NamedTuple rather than a dataclass so that code written against the earlier ``(total, n, greedy)``
    tuples keeps working while call sites move to the field names.
    """

    logprob: float
    """Summed natural-log probability of the continuation's tokens."""
    n_tokens: int
    """How many tokens the continuation has (after the context/continuation split)."""
    greedy: bool
    """Whether greedy decoding from the context would produce exactly these tokens."""


@runtime_checkable
class LogProbModel(Protocol):
    """What a model must offer to be scored by log-likelihood."""

    def render(self, messages: list[ChatMessage]) -> str:
        """The exact text the model reads for ``messages`` (chat template and any persona prompt applied)."""
        ...

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[ContinuationScore]:
        """One :class:`ContinuationScore` per ``(context, continuation)``, in order."""
        ...

    def next_token_logprobs(self, context: str, candidates: Sequence[str]) -> dict[str, float]:
        """Log-probability of each candidate written right after ``context``.

        A single-token candidate is read from the next-token distribution; a longer one is the sum over its
        tokens (the same number ``continuation_logprobs`` gives).
        """
        ...


def logprob_model(
    model: Model | ModelAPI | str | None = None,
    purpose: str = "this step",
    alternative: str | None = None,
) -> LogProbModel:
    """The log-probability side of ``model`` (a Model, its API, a model name, or None for the active model).

    Raises TaskParameterError naming the missing methods, the models that have them and ``alternative``
    (e.g. "or choice_method=generate") when the model cannot score log-probabilities.
    """
    from inspect_ai.model import Model, get_model

    if model is None or isinstance(model, str):
        model = get_model(model)
    api: Any = model.api if isinstance(model, Model) else model
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(api, name, None))]
    if missing:
        name = getattr(model, "name", None) or getattr(api, "model_name", type(api).__name__)
        fix = "Use --model charbench/smollm2 (or charbench/<checkpoint>, charbench//abs/path/to/checkpoint)"
        raise TaskParameterError(
            f"{purpose} reads log-probabilities, which model '{name}' does not expose (it lacks "
            f"{', '.join(m + '()' for m in missing)}; charbench/ models provide render(), continuation_logprobs() "
            f"and next_token_logprobs()). {fix}{', ' + alternative if alternative else ''}."
        )
    return api  # type: ignore[no-any-return]


# -- implementation used by the charbench/ provider ----------------------------------------------------------


@dataclass
class PrefixCache:
    """The KV cache of the last scored context, so the next context's shared prefix is not recomputed.

    One entry is enough for the access pattern that matters (items scored in order, each sharing a few-shot
    header or a rendered prompt with the previous); it is per provider instance and used under its lock.
    """

    tokens: tuple[int, ...] = ()
    cache: Any = None
    hits: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0
    _last: Any = field(default=None, repr=False)

    def clear(self) -> None:
        self.tokens, self.cache, self._last = (), None, None


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Token ids of each (context, continuation), tokenized separately so the split is exact.

    A trailing space of the context moves to the continuation (" Paris" is one token; "Paris" after a
    space-ending context would be scored as an unlikely space token plus a word).
    """
    encoded = []
    for context, continuation in pairs:
        if context.endswith(" ") and not continuation.startswith(" "):
            context, continuation = context[:-1], " " + continuation
        ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        if not cont:
            raise TaskParameterError(
                f"continuation {continuation!r} is empty after tokenization (context ends {context[-40:]!r}); "
                "give every choice some text.")
        if not ctx:
            fallback = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            if fallback is None:
                raise TaskParameterError("an empty context needs a BOS or EOS token to condition on; this tokenizer has neither.")
            ctx = [fallback]
        encoded.append((list(ctx), list(cont)))
    return encoded


def _score_rows(rows: Any, targets: Sequence[int]) -> ContinuationScore:
    import torch

    target = torch.tensor(list(targets))
    total = float(rows.gather(1, target[:, None]).sum())
    greedy = bool((rows.argmax(dim=-1) == target).all())
    return ContinuationScore(total, len(targets), greedy)


def _complete(results: list[ContinuationScore | None]) -> list[ContinuationScore]:
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"log-likelihood scoring left pairs {missing} unscored; this is a charbench bug")
    return [r for r in results if r is not None]


def _padded(model: Any, pad_id: int, encoded: list[tuple[list[int], list[int]]], batch_size: int) -> list[ContinuationScore]:
    """Each (context, continuation) as one row of a padded batch, rows of similar length together.

    Rows are padded on the left with positions counted from the mask, so every continuation ends at the last
    column and only the last ``longest continuation + 1`` columns go through the output layer: on a small model
    the vocabulary projection and its log-softmax over every context position cost as much as the layers.
    """
    import torch

    results: list[ContinuationScore | None] = [None] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]) + len(encoded[i][1]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        seqs = [encoded[i][0] + encoded[i][1] for i in chunk]
        width = max(len(s) for s in seqs)
        keep = max(len(encoded[i][1]) for i in chunk)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                       position_ids=positions.to(model.device), logits_to_keep=keep + 1).logits
        # Column j of the kept logits predicts token width - keep + j; the last column predicts nothing.
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).cpu()
        for row, i in enumerate(chunk):
            cont = encoded[i][1]
            results[i] = _score_rows(logprobs[row, keep - len(cont) :], cont)
    return _complete(results)


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from the start."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _context_state(model: Any, ctx: list[int], prefix: PrefixCache) -> tuple[Any, Any]:
    """KV cache holding ``ctx`` and the log-probs of the token after it, reusing the cached common prefix.

    The returned cache is ``prefix.cache`` itself: callers that extend it must take it back to ``len(ctx)``.
    """
    import torch
    from transformers import DynamicCache

    common = common_prefix_length(prefix.tokens, ctx)
    if common == len(ctx) == len(prefix.tokens) and prefix._last is not None:
        prefix.hits += 1
        prefix.reused_tokens += common
        return prefix.cache, prefix._last
    # At least the last context token is run again: its logits give the first continuation token.
    reuse = min(common, len(ctx) - 1)
    cache = prefix.cache
    prefix.clear()  # until the forward pass below succeeds, the entry describes nothing
    if reuse > 0 and cache is not None:
        surplus = cache.get_seq_length() - reuse
        if surplus > 0:
            # Cropped in place: copying a 25-shot cache per item cost as much as the item's own tokens.
            cache.crop(-surplus)  # a negative length removes that many tokens (transformers 4.4x and 5.x alike)
        prefix.hits += 1
    else:
        cache, reuse = DynamicCache(), 0
    prefix.reused_tokens += reuse
    prefix.computed_tokens += len(ctx) - reuse
    ids = torch.tensor([ctx[reuse:]], device=model.device)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    last = torch.log_softmax(out.logits[0, -1].float(), dim=-1).cpu()
    prefix.tokens, prefix.cache, prefix._last = tuple(ctx), out.past_key_values, last
    return prefix.cache, last


def _packed_mask(lengths: Sequence[int], ctx_len: int, dtype: Any, device: Any) -> Any:
    """Additive attention mask for continuations packed into one row after a cached context of ``ctx_len``:
    each packed token sees the whole context and the earlier tokens of its own continuation only."""
    import torch

    owner = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(list(lengths)))
    order = torch.arange(len(owner))
    own_past = (owner[:, None] == owner[None, :]) & (order[:, None] >= order[None, :])
    allowed = torch.cat([torch.ones(len(owner), ctx_len, dtype=torch.bool), own_past], dim=1)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return mask[None, None].to(device)


def _packed_rows(model: Any, cache: Any, ctx_len: int, last: Any, conts: Sequence[list[int]]) -> list[Any]:
    """Log-prob rows (one per token) of each continuation after the cached context, in one forward pass.

    All continuations but their last tokens go into a single row with their own positions and a mask that
    keeps them apart, so the context's cache is extended once instead of being copied and repeated per
    continuation; the cache is taken back to ``ctx_len`` afterwards.
    """
    import torch

    bodies = [cont[:-1] for cont in conts]
    lengths = [len(b) for b in bodies]
    if not any(lengths):
        return [last[None, :] for _ in conts]
    ids = torch.tensor([[t for body in bodies for t in body]], device=model.device)
    positions = torch.tensor([[ctx_len + j for n in lengths for j in range(n)]], device=model.device)
    mask = _packed_mask(lengths, ctx_len, model.dtype, model.device)
    try:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                       use_cache=True).logits
    finally:
        cache.crop(-(cache.get_seq_length() - ctx_len))
    logprobs = torch.log_softmax(logits[0].float(), dim=-1).cpu()
    rows, start = [], 0
    for n in lengths:
        rows.append(torch.cat([last[None, :], logprobs[start : start + n]]))
        start += n
    return rows


def _cached(model: Any, pad_id: int, encoded: list[tuple[list[int], list[int]]], batch_size: int,
            prefix: PrefixCache) -> list[ContinuationScore]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, _cont) in enumerate(encoded):
        groups.setdefault(tuple(ctx), []).append(i)
    results: list[ContinuationScore | None] = [None] * len(encoded)
    # A context scored once, with little of it kept, gains nothing from a cache of it: two small passes (context,
    # then continuation) cost more than its row in a padded batch (a likelihood judge's hypotheses: about 2x).
    lone = [members[0] for ctx_key, members in groups.items()
            if len(members) == 1 and 2 * common_prefix_length(prefix.tokens, ctx_key) < len(ctx_key)]
    if lone:
        for i, score in zip(lone, _padded(model, pad_id, [encoded[i] for i in lone], batch_size)):
            results[i] = score
    for ctx_key in sorted(groups):  # in token order, consecutive contexts share the longest prefixes
        members = groups[ctx_key]
        if results[members[0]] is not None:
            continue
        cache, last = _context_state(model, list(ctx_key), prefix)
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            conts = [encoded[i][1] for i in chunk]
            try:
                rows = _packed_rows(model, cache, len(ctx_key), last, conts)
            except BaseException:
                prefix.clear()  # the shared cache may hold part of the failed pass
                raise
            for row, i in enumerate(chunk):
                results[i] = _score_rows(rows[row], conts[row])
    return _complete(results)


def packs_continuations(model: Any) -> bool:
    """Whether the model's attention honours a custom 4D mask (eager and SDPA do; flash attention does not)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) in ("eager", "sdpa")


def score_continuations(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 8,
    prefix: PrefixCache | None = None,
    cache_context: bool = True,
) -> list[ContinuationScore]:
    """Log-likelihood of each (context, continuation) under a transformers causal LM (call under a lock).

    Models whose attention ignores a custom mask (:func:`packs_continuations`) take the plain padded batch.
    """
    import torch

    if batch_size < 1:
        raise TaskParameterError(f"batch_size={batch_size}; give a positive batch size.")
    encoded = encode_pairs(tokenizer, pairs)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        if cache_context and packs_continuations(model):
            return _cached(model, pad_id, encoded, batch_size, prefix if prefix is not None else PrefixCache())
        return _padded(model, pad_id, encoded, batch_size)
