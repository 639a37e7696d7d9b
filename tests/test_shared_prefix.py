"""Decoding after a shared prefix read once per step (issue 14) against transformers' repeated cache."""

from __future__ import annotations

import logging
import threading

import pytest
import torch
from tiny_model import tiny_model_and_tokenizer
from transformers.cache_utils import Cache, DynamicLayer, DynamicSlidingWindowLayer

from charbench.models import shared_prefix
from charbench.models.batching import GenerationBatcher, Settings, _Request, prefix_layout
from charbench.models.shared_prefix import (
    can_share_prefix,
    repeated_prefix_cache,
    shared_prefix_agrees,
    shared_prefix_attention_in,
    shared_prefix_cache,
)

PREFIX = list(range(10, 46))
OWN = [[60, 61, 62, 63, 64], [65], [66, 67, 68]]  # different lengths: rows padded between prefix and own tokens


@pytest.fixture(scope="module")
def tiny():
    model, tokenizer = tiny_model_and_tokenizer()  # 4 query heads over 2 key/value heads
    with torch.inference_mode():
        kept = model(input_ids=torch.tensor([PREFIX + [70, 71]]), use_cache=True).past_key_values
    return model, tokenizer, kept


def generate(model, cache, max_new_tokens=12, **kwargs):
    ids, mask = prefix_layout([PREFIX + row for row in OWN], len(PREFIX), pad_id=0)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache, max_new_tokens=max_new_tokens,
                             min_new_tokens=max_new_tokens, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, **kwargs)
    return out.sequences[:, ids.shape[1]:], torch.stack(out.logits)


def test_decoding_after_a_shared_prefix_gives_the_repeated_caches_tokens_and_logits(tiny):
    model, _, kept = tiny
    assert kept.get_seq_length() == len(PREFIX) + 2  # a kept pass longer than the batch's prefix: cut to it
    tokens, logits = generate(model, repeated_prefix_cache(kept, len(PREFIX), len(OWN)))
    with shared_prefix_attention_in(model):
        cache = shared_prefix_cache(kept, len(PREFIX))
        shared_tokens, shared_logits = generate(model, cache)
    assert torch.equal(shared_tokens, tokens)
    assert (shared_logits - logits).abs().max() < 1e-5
    assert cache.layers[0].prefix_keys.shape[0] == 1  # the prefix held once, not per row
    assert cache.get_seq_length() == len(PREFIX) + 5 + 12 - 1  # the prefix, the widest row, the tokens fed back
    assert kept.get_seq_length() == len(PREFIX) + 2  # the kept pass is read, never extended: it serves the next batch
    assert model.config._attn_implementation == "sdpa"  # restored after the block


def test_without_a_shared_prefix_cache_the_attention_is_sdpas(tiny):
    model, _, _ = tiny
    ids = torch.tensor([PREFIX[:20], PREFIX[5:25]])
    with torch.inference_mode():
        expected = model(input_ids=ids).logits
        with shared_prefix_attention_in(model):
            assert model.config._attn_implementation == shared_prefix.ATTENTION  # the function under test runs
            got = model(input_ids=ids).logits
    assert torch.equal(got, expected)


@pytest.mark.parametrize("mask_kind", ["none", "boolean", "additive", "boolean, batch 1"])
def test_decode_attention_equals_sdpa_over_the_repeated_prefix(mask_kind):
    """One query token per row, 6 query heads over 2 key/value heads: the same output as SDPA given the prefix
    repeated over the rows and its key/value heads repeated over their query heads, under every mask form."""
    generator = torch.Generator().manual_seed(0)
    batch, n_heads, n_kv, dim, n_prefix, own = 3, 6, 2, 8, 7, 4

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    query, keys, values = randn(batch, n_heads, 1, dim), randn(batch, n_kv, own, dim), randn(batch, n_kv, own, dim)
    prefix_keys, prefix_values = randn(1, n_kv, n_prefix, dim), randn(1, n_kv, n_prefix, dim)
    allowed = torch.ones(batch, 1, 1, n_prefix + own, dtype=torch.bool)
    allowed[0, ..., n_prefix] = allowed[2, ..., n_prefix : n_prefix + 2] = False  # rows' own padding
    mask = {"none": None, "boolean": allowed, "boolean, batch 1": allowed[1:2],
            "additive": torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))}[mask_kind]
    full_keys = torch.cat([prefix_keys.expand(batch, -1, -1, -1), keys], dim=2).repeat_interleave(3, dim=1)
    full_values = torch.cat([prefix_values.expand(batch, -1, -1, -1), values], dim=2).repeat_interleave(3, dim=1)
    expected = torch.nn.functional.scaled_dot_product_attention(query, full_keys, full_values, attn_mask=mask,
                                                                scale=0.3)
    got = shared_prefix.decode_attention(query, keys, values, prefix_keys, prefix_values, mask, 0.3)
    assert got.shape == (batch, 1, n_heads, dim)
    assert torch.allclose(got, expected.transpose(1, 2), atol=1e-6)


def test_the_one_off_check_passes_here_and_fails_when_decoding_is_wrong(tiny, monkeypatch):
    model, _, kept = tiny
    assert shared_prefix_agrees(model, kept, len(PREFIX), OWN, pad_id=0)
    monkeypatch.setattr(shared_prefix, "decode_attention", lambda query, *args: torch.zeros_like(query).transpose(1, 2))
    assert not shared_prefix_agrees(model, kept, len(PREFIX), OWN, pad_id=0)


def test_a_batcher_whose_check_fails_repeats_the_prefix_and_gives_the_same_replies(tiny, monkeypatch, caplog):
    model, tokenizer, _ = tiny
    settings = Settings(max_new_tokens=6, do_sample=False)
    requests = [[_Request(prompt_ids=PREFIX + row, settings=settings, batch_size=3) for row in OWN] for _ in range(2)]
    built = []  # every shared-prefix cache made: the one-off check's, then each batch's own
    monkeypatch.setattr(shared_prefix, "shared_prefix_cache",
                        lambda *args, make=shared_prefix.shared_prefix_cache: built.append(1) or make(*args))
    replies = {}
    for broken in (False, True):
        if broken:
            monkeypatch.setattr(shared_prefix, "decode_attention",
                                lambda query, *args: torch.zeros_like(query).transpose(1, 2))
        built.clear()
        batcher = GenerationBatcher(model, tokenizer, threading.Lock())
        try:
            with caplog.at_level(logging.WARNING, logger="charbench.models.batching"):
                replies[broken] = batcher._run_generate(requests[broken])[0]
            assert batcher.prefix_sharing is (not broken)
            assert len(built) == (1 if broken else 2)  # the check's cache, and the batch's only if it passed
        finally:
            batcher.close()
    assert replies[True] == replies[False]
    assert "did not reproduce the model's logits" in caplog.text


def test_only_sdpa_models_with_full_attention_layers_share_a_prefix(tiny):
    model, _, kept = tiny
    assert can_share_prefix(model, kept)
    sliding = Cache(layers=[DynamicSlidingWindowLayer(sliding_window=8), DynamicLayer()])
    assert not can_share_prefix(model, sliding)
    eager, _ = tiny_model_and_tokenizer()
    eager.config._attn_implementation = "eager"
    assert not can_share_prefix(eager, kept)


def test_a_shared_prefix_layer_never_crops_into_the_prefix(tiny):
    _, _, kept = tiny
    layer = shared_prefix_cache(kept, len(PREFIX)).layers[0]
    layer.update(torch.zeros(2, 2, 3, 12), torch.zeros(2, 2, 3, 12))
    layer.crop(-2)
    assert layer.get_seq_length() == len(PREFIX) + 1
    with pytest.raises(ValueError, match="only the rows' own tokens"):
        layer.crop(-2)
