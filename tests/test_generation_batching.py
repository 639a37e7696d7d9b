"""The transformers engine's own generation batching (issue 14) against Inspect's queue, on real checkpoints.

The fast tests load a tiny random Llama through the ``charbench/`` provider twice, once per batching
(``-M batching=charbench``, the default, and ``-M batching=inspect``), and send the same concurrent requests to
both. The slow test does the same on the embedded SmolLM2 with six offline evaluation prompts.
"""

from __future__ import annotations

import asyncio

import pytest
from inspect_ai.model import ChatMessageUser, GenerateConfig, ModelOutput, get_model
from tiny_model import save_tiny_checkpoint

from charbench.errors import TaskParameterError
from charbench.models.batching import Settings, _Request, plan_batches, reply_length

PROMPTS = [
    "Question: Which gas do plants take in?",
    "The quick brown fox",
    "Question: What is the boiling point of water? Answer: one hundred",
    "fox",
    "The lazy dog jumps over the river bank near the quick brown fox. Question:",
]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


def generate_all(model, prompts: list[str], config: GenerateConfig) -> list[ModelOutput]:
    async def run() -> list[ModelOutput]:
        return await asyncio.gather(*(model.generate(p, config=config) for p in prompts))

    return asyncio.run(run())


@pytest.mark.parametrize("variant", [{}, {"repetition_penalty": "1.3"}], ids=["base", "repetition-penalty"])
def test_greedy_replies_equal_inspects_batching(tiny_checkpoint, variant):
    config = GenerateConfig(temperature=0, max_tokens=12, max_connections=2)  # 5 prompts: batches of 2, 2, 1
    ours = get_model(f"charbench/{tiny_checkpoint}", memoize=False, **variant)
    theirs = get_model(f"charbench/{tiny_checkpoint}", memoize=False, batching="inspect", **variant)
    new, old = generate_all(ours, PROMPTS, config), generate_all(theirs, PROMPTS, config)
    assert [o.completion for o in new] == [o.completion for o in old]
    assert len({o.completion for o in new}) > 1  # the prompts lead somewhere different: a real comparison
    tokenizer = ours.api.tokenizer
    for prompt, out in zip(PROMPTS, new):
        rendered = ours.api.render([ChatMessageUser(content=prompt)])
        assert out.usage.input_tokens == len(tokenizer(rendered)["input_ids"])  # its own prompt, not the padded one


def first_stop_string(reply: str, other: str) -> str:
    """Two printable characters inside ``reply`` (not at its start) that ``other`` never contains."""
    pairs = (reply[i : i + 2] for i in range(1, len(reply) - 2))
    return next(p for p in pairs if p.isascii() and p.isprintable() and p not in other)


def test_each_reply_counts_its_own_tokens_and_stop_reason(tiny_checkpoint):
    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    prompts = PROMPTS[2:4]
    free = generate_all(model, prompts, GenerateConfig(temperature=0, max_tokens=10))
    assert all(o.usage.output_tokens == 10 and o.stop_reason == "max_tokens" for o in free)
    # A stop string that only the first reply reaches ends it early; the second, in the same batch, runs on.
    stop = first_stop_string(free[0].completion, free[1].completion)
    cut = generate_all(model, prompts, GenerateConfig(temperature=0, max_tokens=10, stop_seqs=[stop]))
    assert cut[0].stop_reason == "stop" and cut[0].usage.output_tokens < 10
    assert free[0].completion.startswith(cut[0].completion) and cut[0].completion.endswith(stop)
    assert cut[1].completion == free[1].completion and cut[1].stop_reason == "max_tokens"
    assert cut[1].usage.output_tokens == 10


def test_sampled_requests_run_and_a_bad_argument_is_refused(tiny_checkpoint):
    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    outs = generate_all(model, PROMPTS, GenerateConfig(temperature=0.8, top_p=0.9, max_tokens=6))
    assert all(1 <= o.usage.output_tokens <= 6 for o in outs)
    settings = model.api.generation_settings(GenerateConfig(temperature=0.8, top_p=0.9, max_tokens=6))
    assert settings.do_sample and settings.temperature == 0.8 and settings.top_p == 0.9
    assert not model.api.generation_settings(GenerateConfig(temperature=0, max_tokens=6)).do_sample
    with pytest.raises(TaskParameterError, match="batching"):
        get_model(f"charbench/{tiny_checkpoint}", memoize=False, batching="fastest")


def test_batches_group_equal_settings_and_sort_by_prompt_length():
    greedy, sampled = Settings(max_new_tokens=8, do_sample=False), Settings(max_new_tokens=8, do_sample=True)
    lengths = [5, 1, 4, 2, 3]
    requests = [_Request(prompt_ids=[7] * n, settings=greedy, batch_size=2) for n in lengths]
    requests.insert(2, _Request(prompt_ids=[7] * 9, settings=sampled, batch_size=2))
    batches = plan_batches(requests)
    assert [[len(r.prompt_ids) for r in b] for b in batches] == [[1, 2], [3, 4], [5], [9]]
    assert all(len({r.settings for r in b}) == 1 for b in batches)


def test_reply_length_stops_at_the_first_end_token():
    assert reply_length([5, 6, 2, 2], frozenset({2})) == 2
    assert reply_length([5, 6, 7], frozenset({2})) == 3
    assert reply_length([0, 5], frozenset({0, 2})) == 0


@pytest.mark.slow
def test_greedy_replies_equal_inspects_batching_on_the_embedded_model():
    from charbench.prompts import load_prompt_set

    prompts = [p.text for p in load_prompt_set("offline", split="eval")][:6]
    config = GenerateConfig(temperature=0, max_tokens=48, max_connections=4)
    ours = get_model("charbench/smollm2", memoize=False)
    theirs = get_model("charbench/smollm2", memoize=False, batching="inspect")
    new, old = generate_all(ours, prompts, config), generate_all(theirs, prompts, config)
    assert [o.completion for o in new] == [o.completion for o in old]
    assert len({o.completion for o in new}) == len(prompts)
    assert all(o.usage.output_tokens == 48 and o.stop_reason == "max_tokens" for o in new)  # SmolLM2 talks on


def test_a_shared_system_prompt_is_computed_once_and_changes_no_reply(tiny_checkpoint):
    """Prompts that share a long system prompt: the batch reuses one cached pass over it (and the next batch
    reuses the same pass), and every greedy reply equals the one Inspect's batching gives without the cache."""
    from inspect_ai.model import ChatMessageSystem

    from charbench.models.batching import shared_prefix_length

    system = "You are a careful assistant who answers in full sentences and checks every fact twice. " * 3
    conversations = [[ChatMessageSystem(content=system), ChatMessageUser(content=p)] for p in PROMPTS]
    config = GenerateConfig(temperature=0, max_tokens=8, max_connections=2)  # batches of 2, 2, 1

    async def run(model) -> list[ModelOutput]:
        return await asyncio.gather(*(model.generate(c, config=config) for c in conversations))

    ours = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    theirs = get_model(f"charbench/{tiny_checkpoint}", memoize=False, batching="inspect")
    new, old = asyncio.run(run(ours)), asyncio.run(run(theirs))
    assert [o.completion for o in new] == [o.completion for o in old]
    batcher = ours.api.batcher()
    rendered = [ours.api.tokenizer(ours.api.render(c))["input_ids"] for c in conversations]
    common = shared_prefix_length(rendered)
    assert common > 100  # the system prompt and the template around it
    # Computed once by the first batch of two, reused by the second and by the lone prompt of the third.
    assert common <= batcher.prefix_tokens_computed < 2 * common
    assert batcher.prefix_tokens_reused >= 2 * common
    assert batcher.prefix_sharing is True  # decoded with the prefix read once per step, not repeated per row


def test_shared_prefix_length_and_layout_keep_every_prompt_token():
    from charbench.models.batching import prefix_layout, shared_prefix_length

    prompts = [[5, 6, 7, 8, 9], [5, 6, 7, 1], [5, 6, 7]]
    assert shared_prefix_length(prompts) == 2  # one token of the shortest prompt stays outside the prefix
    assert shared_prefix_length([[1, 2], [3, 4]]) == 0
    ids, mask = prefix_layout(prompts, 2, pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 0, 7, 1], [5, 6, 0, 0, 7]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 1, 1], [1, 1, 0, 0, 1]]


def test_batches_keep_prompts_with_the_same_persona_prompt_together():
    """Two personas' prompts share a generic opening, then 300 tokens of their own: a set each. Unprompted messages
    share only 20 tokens with anything: they stay together rather than run as batches of one."""
    settings = Settings(max_new_tokens=4, do_sample=False)
    opening = [5] * 60
    persona_a, persona_b = opening + [1] * 300, opening + [2] * 300
    requests = [_Request(prompt_ids=persona + [9] * n, settings=settings, batch_size=3)
                for persona, n in [(persona_a, 5), (persona_b, 1), (persona_a, 2), (persona_b, 7), (persona_a, 9)]]
    requests += [_Request(prompt_ids=[5] * 20 + [3 + i] * (30 + i), settings=settings, batch_size=3) for i in range(2)]
    batches = plan_batches(requests)
    assert sorted([len(r.prompt_ids) for r in b] for b in batches) == [[50, 51], [361, 367], [362, 365, 369]]
    # Without the personas' long prompts, nothing pays for a batch of its own.
    short = [_Request(prompt_ids=opening + [k] * 3, settings=settings, batch_size=8) for k in (1, 2, 1, 2)]
    assert len(plan_batches(short)) == 1


def test_a_kept_prefix_cut_shorter_for_the_next_batch_gives_the_unbatched_replies():
    """The batch after a longer shared prefix reuses the kept pass, cut back to what it shares."""
    import threading

    import torch
    from tiny_model import tiny_model_and_tokenizer

    from charbench.models.batching import GenerationBatcher

    model, tokenizer = tiny_model_and_tokenizer()
    batcher = GenerationBatcher(model, tokenizer, threading.Lock())
    try:
        settings = Settings(max_new_tokens=5, do_sample=False)
        prefix = list(range(10, 50))
        first = [prefix + [60, 61, 62], prefix + [63, 64]]
        second = [prefix[:30] + [70, 71, 72], prefix[:30] + [73]]

        def alone(prompt: list[int]) -> list[int]:
            out = model.generate(input_ids=torch.tensor([prompt]), **settings.generate_kwargs(tokenizer))
            return out[0, len(prompt):].tolist()

        for batch in (first, second):
            rows, _ = batcher._run_generate([_Request(prompt_ids=p, settings=settings, batch_size=2) for p in batch])
            assert rows == [alone(p) for p in batch]
        assert batcher.prefix_tokens_computed == 40  # the first batch's prefix, once
        assert batcher.prefix_tokens_reused == 30  # the second batch took 30 of those 40 tokens
        assert batcher.prefix_sharing is True
    finally:
        batcher.close()


def test_row_sampler_draws_from_the_warped_distribution():
    """Gumbel-max over temperature-scaled scores: each row's draw follows softmax(logits / T); top-k and top-p
    remove what transformers' own warpers remove."""
    import torch
    from transformers import GenerationConfig

    from charbench.models.batching import RowSampler

    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    rows = 4000
    scores = logits.repeat(rows, 1)
    sampled = Settings(max_new_tokens=1, do_sample=True, temperature=0.7)
    picks = RowSampler(range(rows), sampled, GenerationConfig())(None, scores.clone()).argmax(dim=1)
    freq = torch.bincount(picks, minlength=4).double() / rows
    expected = torch.softmax(logits.double() / 0.7, dim=0)
    assert torch.allclose(freq, expected, atol=0.03), (freq, expected)
    top_k = Settings(max_new_tokens=1, do_sample=True, top_k=2)
    assert set(RowSampler(range(500), top_k, GenerationConfig())(None, logits.repeat(500, 1)).argmax(1).tolist()) == {1, 2}
    top_p = Settings(max_new_tokens=1, do_sample=True, top_p=0.5)
    assert set(RowSampler(range(200), top_p, GenerationConfig())(None, logits.repeat(200, 1)).argmax(1).tolist()) == {2}
    # The same seed gives the same draw whatever the other rows are.
    again = RowSampler([7, 1, 2], sampled, GenerationConfig())(None, logits.repeat(3, 1)).argmax(1)[0]
    alone = RowSampler([7], sampled, GenerationConfig())(None, logits.repeat(1, 1)).argmax(1)[0]
    assert again == alone
    assert not RowSampler.supports(GenerationConfig(min_p=0.1)) and RowSampler.supports(GenerationConfig(top_k=50))


def test_row_sampler_adds_each_rows_own_gumbel_noise_to_the_tokens_still_open():
    """The noise of every open token is the Gumbel draw of its row's stream at that token (the stream advances
    over the whole vocabulary, so the next step's draws do not depend on how many tokens were open)."""
    import torch
    from transformers import GenerationConfig

    from charbench.models.batching import RowSampler

    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(1))
    sampler = RowSampler([11, 12, 13], Settings(max_new_tokens=1, do_sample=True, top_p=0.6), GenerationConfig())
    noisy = sampler(None, scores.clone())
    filtered = scores.clone()
    for warper in sampler.warpers:
        filtered = warper(None, filtered)
    streams = [torch.Generator().manual_seed(seed) for seed in (11, 12, 13)]
    uniform = torch.stack([torch.rand(50, generator=g, dtype=torch.float64) for g in streams])
    expected = filtered + (-torch.log(-torch.log(uniform))).float()
    open_ = torch.isfinite(filtered)
    assert 0 < int(open_.sum()) < open_.numel()  # some tokens filtered out, some open
    assert torch.equal(noisy[open_], expected[open_])
    assert torch.isneginf(noisy[~open_]).all()


@pytest.mark.parametrize("sharpness", [0.3, 1.0, 4.0], ids=["flat", "plain", "peaked"])
def test_the_nucleus_filter_keeps_the_tokens_transformers_top_p_keeps(sharpness):
    """In float64 (rounding far from any boundary) the kept tokens and their scores are transformers'; in
    float32 a token kept by one and not the other lies at the boundary, within rounding of ``top_p``."""
    import torch
    from transformers.generation.logits_process import TopPLogitsWarper

    from charbench.models.batching import NucleusFilter

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(24, 2999, generator=generator, dtype=torch.float64) * sharpness  # no p x 2999 whole
    logits[0, :] = 0.0  # every token tied: the nucleus needs more than the first k (which tied tokens: either's)
    for top_p in (0.0, 0.1, 0.5, 0.9, 0.95, 0.999):
        theirs, ours = TopPLogitsWarper(top_p)(None, logits), NucleusFilter(top_p)(None, logits)
        assert torch.equal(theirs[1:], ours[1:]), top_p
        assert torch.isfinite(theirs[0]).sum() == torch.isfinite(ours[0]).sum() >= 1
        single = logits[1:].float()
        kept_theirs = torch.isfinite(TopPLogitsWarper(top_p)(None, single))
        kept_ours = torch.isfinite(NucleusFilter(top_p)(None, single))
        probs = single.softmax(dim=-1)
        for row, token in (kept_theirs != kept_ours).nonzero().tolist():
            before = probs[row][probs[row] > probs[row, token]].sum()
            assert abs(float(before) - top_p) < 1e-4, (top_p, row, token)


def test_a_sampled_reply_does_not_depend_on_its_batch(tiny_checkpoint):
    """With a run seed, each sampled request has its own random stream: the same prompts sampled one at a time
    and all in one batch give the same replies; another seed, or asking the same prompt again, gives others."""
    sampled = dict(temperature=1.0, max_tokens=10, seed=3)

    def replies(max_connections: int, seed: int = 3, prompts: list[str] = PROMPTS) -> list[str]:
        model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
        config = GenerateConfig(**{**sampled, "seed": seed}, max_connections=max_connections)
        return [o.completion for o in generate_all(model, prompts, config)]

    one_at_a_time, together = replies(1), replies(5)
    assert one_at_a_time == together
    assert replies(5, seed=4) != together
    twice = replies(1, prompts=[PROMPTS[0], PROMPTS[0]])
    assert twice[0] == together[0] and twice[1] != twice[0]
