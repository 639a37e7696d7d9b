"""Decoding a batch after a shared prompt prefix without repeating the prefix's KV cache over its rows (issue 14).

A batch of a prompted persona's requests starts with the same 330-460 tokens. :class:`GenerationBatcher` computes
them once; repeated over the batch, their keys and values were still read (and, in transformers' DynamicCache,
copied by a concatenation) once per row at every decoding step: at 54 rows after 450 shared tokens, most of a
step's time on a 2-core CPU. Here a layer keeps the prefix once, with batch 1, and each row's own keys after it
(:class:`SharedPrefixLayer`). A decoding step then scores every row's query against the one prefix in a single
matrix product, its own keys apart, and takes one softmax over both (:func:`shared_prefix_attention`): the
attention of the repeated cache, computed without the repeat. The rows' own prompt tokens (one pass per batch)
still run through SDPA, on the prefix expanded for that pass only.

transformers hands a layer's keys from the cache straight to the attention function and accepts no per-call
object beside them (``generate`` refuses model arguments it does not know), so the keys a shared-prefix layer
returns carry their layer as an attribute: a forward pass that did not come through such a layer reads plain SDPA.
Used only with SDPA models whose cache layers are all full attention (:func:`can_share_prefix`), and only after a
one-off check that it gives this model's logits (:func:`shared_prefix_agrees`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

ATTENTION = "charbench_shared_prefix"
_LAYER_ATTRIBUTE = "charbench_shared_prefix_layer"
# Largest logit difference from the repeated cache that the one-off check accepts, relative to the largest logit:
# float32 rounding of the two orders of summation is about 1e-6.
AGREEMENT_TOLERANCE = 1e-4


class SharedPrefixLayer(DynamicLayer):
    """A cache layer holding a prefix's keys and values once (batch 1) and each row's own keys after them."""

    def __init__(self, prefix_keys: torch.Tensor, prefix_values: torch.Tensor) -> None:
        super().__init__()
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values
        self.dtype, self.device = prefix_keys.dtype, prefix_keys.device
        self.is_initialized = True  # keys and values stay None until the rows' own tokens arrive

    def _own_length(self) -> int:
        return 0 if self.keys is None else int(self.keys.shape[-2])

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys is None or self.values is None:
            self.keys, self.values = key_states, value_states
        else:
            self.keys = torch.cat([self.keys, key_states], dim=-2)
            self.values = torch.cat([self.values, value_states], dim=-2)
        setattr(self.keys, _LAYER_ATTRIBUTE, self)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return int(self.prefix_keys.shape[-2]) + self._own_length()

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0 or -tokens_to_remove > self._own_length():
            raise ValueError(f"a shared-prefix cache removes only the rows' own tokens ({self._own_length()} held), "
                             f"not {tokens_to_remove}")
        super().crop(tokens_to_remove)

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.keys is not None:
            super().batch_repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.keys is not None:
            super().batch_select_indices(indices)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self.keys is not None:
            super().reorder_cache(beam_idx)

    def offload(self) -> None:
        raise NotImplementedError("a shared-prefix cache is not offloaded")


def shared_prefix_cache(prefix_cache: Any, length: int) -> Any:
    """A cache for a batch whose rows all start with the first ``length`` tokens held by ``prefix_cache`` (one
    row): the prefix is read from ``prefix_cache``, never copied or written, so it can serve the next batch too."""
    return Cache(layers=[SharedPrefixLayer(layer.keys[:, :, :length], layer.values[:, :, :length])
                         for layer in prefix_cache.layers])


def repeated_prefix_cache(prefix_cache: Any, length: int, batch_size: int) -> Any:
    """A copy of the first ``length`` tokens of ``prefix_cache`` repeated over ``batch_size`` rows: transformers'
    own form of a batch's prefix (every row holds its own copy)."""
    cache = copy.deepcopy(prefix_cache)  # generate extends the cache it is given
    surplus = cache.get_seq_length() - length
    if surplus > 0:
        cache.crop(-surplus)  # transformers 5 refuses a positive length; a negative one removes that many
    cache.batch_repeat_interleave(batch_size)
    return cache


def shared_prefix_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention-function interface: SDPA, with the prefix of a :class:`SharedPrefixLayer` read once
    per batch rather than once per row."""
    layer = getattr(key, _LAYER_ATTRIBUTE, None)
    if layer is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, _, q_length, head_dim = query.shape
    if attention_mask is None and q_length > 1:
        # SDPA would read "no mask" as causal from the first key, which here is the prefix's first key.
        raise ValueError("shared-prefix attention over several query tokens needs the attention mask")
    if q_length > 1:  # the rows' own prompt tokens, once per batch: the prefix expanded for this pass only
        keys = torch.cat([layer.prefix_keys.expand(batch, -1, -1, -1), key], dim=2)
        values = torch.cat([layer.prefix_values.expand(batch, -1, -1, -1), value], dim=2)
        return sdpa_attention_forward(module, query, keys, values, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else head_dim ** -0.5
    return decode_attention(query, key, value, layer.prefix_keys, layer.prefix_values, attention_mask, scale), None


def decode_attention(query: Any, keys: Any, values: Any, prefix_keys: Any, prefix_values: Any,
                     attention_mask: Any, scale: float) -> Any:
    """One query token per row: softmax over the scores against the shared prefix (batch 1) and against each
    row's own keys, as one distribution. Returns ``(batch, 1, heads, head_dim)``, the layout of transformers'
    attention functions."""
    batch, n_heads = query.shape[0], query.shape[1]
    n_kv, n_prefix = prefix_keys.shape[1], prefix_keys.shape[2]
    group = n_heads // n_kv  # query heads per key/value head (grouped-query attention)
    grouped = query.reshape(batch, n_kv, group, query.shape[-1])
    # The prefix as one matrix per key/value head, against the queries of every row and head of its group.
    flat = grouped.transpose(0, 1).reshape(n_kv, batch * group, -1)
    prefix_scores = torch.bmm(flat, prefix_keys[0].transpose(1, 2)).view(n_kv, batch, group, n_prefix)
    own_scores = torch.matmul(grouped, keys.transpose(2, 3))  # (batch, n_kv, group, own)
    scores = torch.cat([prefix_scores.transpose(0, 1), own_scores], dim=-1) * scale
    if attention_mask is not None:  # (batch, 1, 1, prefix + own): boolean "may attend", or additive
        mask = attention_mask.reshape(attention_mask.shape[0], 1, 1, -1)  # a batch of 1 broadcasts
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(values.dtype)
    prefix_probs = probs[..., :n_prefix].transpose(0, 1).reshape(n_kv, batch * group, n_prefix)
    out = torch.bmm(prefix_probs, prefix_values[0]).view(n_kv, batch, group, -1).transpose(0, 1)
    out = out + torch.matmul(probs[..., n_prefix:], values)
    return out.reshape(batch, n_heads, 1, -1).transpose(1, 2).contiguous()


def register_shared_prefix_attention() -> None:
    """Make :data:`ATTENTION` an attention implementation of transformers (SDPA's masks); idempotent."""
    AttentionInterface.register(ATTENTION, shared_prefix_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)


def can_share_prefix(model: Any, prefix_cache: Any) -> bool:
    """Whether ``model`` runs SDPA and ``prefix_cache`` holds only full-attention layers (no sliding window, no
    linear attention), the case :func:`shared_prefix_attention` reproduces."""
    return (getattr(model.config, "_attn_implementation", None) in ("sdpa", ATTENTION)
            and bool(prefix_cache.layers) and all(type(layer) is DynamicLayer for layer in prefix_cache.layers))


@contextmanager
def shared_prefix_attention_in(model: Any) -> Iterator[None]:
    """Run ``model`` with :func:`shared_prefix_attention` inside the block (hold the model's lock around it):
    a forward pass without a shared-prefix cache computes exactly what SDPA computes."""
    register_shared_prefix_attention()
    before = model.config._attn_implementation
    model.config._attn_implementation = ATTENTION
    try:
        yield
    finally:
        model.config._attn_implementation = before


def shared_prefix_agrees(model: Any, prefix_cache: Any, length: int, own_tokens: Sequence[Sequence[int]],
                         pad_id: int) -> bool:
    """Whether a shared-prefix cache gives ``model`` the logits of the repeated one: a pass over the rows' own
    tokens (left-padded after the prefix) and one decoding step, compared to :data:`AGREEMENT_TOLERANCE`."""
    width = max(len(row) for row in own_tokens)
    ids = torch.tensor([[pad_id] * (width - len(row)) + list(row) for row in own_tokens], device=model.device)
    own_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in own_tokens], device=model.device)
    mask = torch.cat([torch.ones(len(own_tokens), length, dtype=own_mask.dtype, device=model.device), own_mask], 1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    step_mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    next_ids = ids[:, -1:]

    def logits(cache: Any) -> list[Any]:
        first = model(input_ids=ids, attention_mask=mask, position_ids=positions[:, length:], past_key_values=cache,
                      use_cache=True)
        step = model(input_ids=next_ids, attention_mask=step_mask, position_ids=positions[:, -1:] + 1,
                     past_key_values=first.past_key_values, use_cache=True)
        return [first.logits[:, -1], step.logits[:, -1]]

    with torch.inference_mode():
        expected = logits(repeated_prefix_cache(prefix_cache, length, len(own_tokens)))
        with shared_prefix_attention_in(model):
            got = logits(shared_prefix_cache(prefix_cache, length))
    scale = max(1.0, *(float(e.abs().max()) for e in expected))
    return all(float((g - e).abs().max()) <= AGREEMENT_TOLERANCE * scale for g, e in zip(got, expected))
