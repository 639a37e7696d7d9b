"""The typed log-probability interface and the cached-context log-likelihoods.

The fast tests build a tiny random Llama (2 layers) with a byte-level BPE tokenizer trained on the spot, save
it as a checkpoint folder and load it through the real ``charbench/`` provider; nothing is downloaded.
The slow test repeats the cached == uncached check on the embedded SmolLM2 with real ARC 25-shot contexts.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import mock_model, wait_until
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageUser, get_model
from tiny_model import tiny_model_and_tokenizer

from charbench.errors import TaskParameterError
from charbench.models.logprobs import (
    ContinuationScore,
    LogProbModel,
    PrefixCache,
    common_prefix_length,
    logprob_model,
    score_continuations,
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_tokenizer()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny):
    model, tokenizer = tiny
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


SHARED = "Question: Which gas do plants take in? Answer: carbon dioxide\n\n"
PAIRS = [
    (SHARED + "Question: What is the boiling point of water? Answer:", c)
    for c in [" one hundred degrees", " carbon", " the lazy dog jumps over the river", " fox"]
] + [
    (SHARED + "Question: What do foxes jump over? Answer:", " the lazy dog"),
    (SHARED + "Question: What do foxes jump over? Answer: ", "the river"),  # trailing space moves over
    ("", "brown fox"),  # empty context: conditioned on the EOS/BOS token
    ("The quick brown", " f"),  # single-token continuation: no forward beyond the context
]


def test_cached_context_scores_equal_the_plain_padded_batch(tiny):
    model, tokenizer = tiny
    plain = score_continuations(model, tokenizer, PAIRS, batch_size=3, cache_context=False)
    for batch_size in (1, 2, 8):
        prefix = PrefixCache()
        cached = score_continuations(model, tokenizer, PAIRS, batch_size=batch_size, prefix=prefix)
        assert [c.n_tokens for c in cached] == [p.n_tokens for p in plain]
        assert [c.greedy for c in cached] == [p.greedy for p in plain]
        for c, p in zip(cached, plain):
            assert c.logprob == pytest.approx(p.logprob, abs=1e-4)
        # The second context (the last two pairs share it once the trailing space moves over) starts with the
        # first's few-shot line, so that part comes from the cache.
        assert prefix.hits >= 1 and prefix.reused_tokens >= len(tokenizer(SHARED, add_special_tokens=False)["input_ids"]) - 1
    assert all(isinstance(s, ContinuationScore) and s.logprob < 0 for s in plain)


def test_contexts_scored_once_take_the_padded_batch_with_the_same_numbers(tiny):
    model, tokenizer = tiny
    # Two hypothesis prompts for one reply, as the likelihood trait judge asks: each context is scored once.
    pairs = [(f"<system>You are {trait} in every reply.<user>What is rain?<assistant>", "Water falling from clouds.")
             for trait in ("blunt", "warm and very playful")]
    prefix = PrefixCache()
    got = score_continuations(model, tokenizer, pairs, prefix=prefix)
    assert prefix.computed_tokens == 0 and prefix.hits == 0  # no context went through the cache
    alone = [score_continuations(model, tokenizer, [p], batch_size=1, cache_context=False)[0] for p in pairs]
    assert [g.n_tokens for g in got] == [a.n_tokens for a in alone]
    assert [g.logprob for g in got] == pytest.approx([a.logprob for a in alone], abs=1e-4)
    assert got[0].logprob != pytest.approx(got[1].logprob, abs=1e-6)  # the two contexts do condition the reply


def test_prefix_cache_recomputes_only_the_new_tokens(tiny):
    model, tokenizer = tiny
    prefix = PrefixCache()
    # Two continuations, so the first context goes through the cache (a context scored once with nothing kept
    # takes the padded batch); the second, scored once, has most of itself kept and extends the cache.
    first = [(SHARED + "Question: What is the boiling point of water? Answer:", c) for c in (" one", " two")]
    second = [(SHARED + "Question: What do foxes jump over? Answer:", " the lazy dog")]
    score_continuations(model, tokenizer, first, prefix=prefix)
    computed = prefix.computed_tokens
    score_continuations(model, tokenizer, second, prefix=prefix)
    shared_tokens = len(tokenizer(SHARED + "Question: What ", add_special_tokens=False)["input_ids"]) - 1
    assert prefix.reused_tokens >= shared_tokens
    assert prefix.computed_tokens - computed < len(tokenizer(second[0][0], add_special_tokens=False)["input_ids"])
    # Scoring the same context again reuses all of it.
    again = score_continuations(model, tokenizer, second, prefix=prefix)
    plain = score_continuations(model, tokenizer, second, cache_context=False)
    assert again[0].logprob == pytest.approx(plain[0].logprob, abs=1e-4)


def test_bad_inputs_are_named(tiny):
    model, tokenizer = tiny
    with pytest.raises(TaskParameterError, match="empty after tokenization"):
        score_continuations(model, tokenizer, [("Question:", "")])
    with pytest.raises(TaskParameterError, match="batch_size=0"):
        score_continuations(model, tokenizer, PAIRS, batch_size=0)


def test_provider_implements_the_interface_and_next_token_reads_the_same_numbers(tiny_checkpoint):
    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    api = logprob_model(model)
    assert isinstance(api, LogProbModel)
    context = api.render([ChatMessageUser(content="Which gas do plants take in?")]) + "Answer:"
    assert context.endswith("<assistant>Answer:")
    nxt = api.next_token_logprobs(context, [" carbon", " one hundred", " fox"])
    full = api.continuation_logprobs([(context, c) for c in [" carbon", " one hundred", " fox"]], cache_context=False)
    assert list(nxt) == [" carbon", " one hundred", " fox"]
    assert list(nxt.values()) == pytest.approx([s.logprob for s in full], abs=1e-4)
    with pytest.raises(TaskParameterError, match="duplicate"):
        api.next_token_logprobs(context, ["a", "a"])


def test_provider_scores_concurrent_calls_as_separate_calls_would(tiny_checkpoint):
    api = logprob_model(get_model(f"charbench/{tiny_checkpoint}", memoize=False))
    # A likelihood judge's shape: one reply under two hypothesis prompts, one call per reply.
    calls = [[(f"<system>You are {trait}.<user>Question {q}?<assistant>", f"Reply number {q} is here.")
              for trait in ("blunt", "warm")] for q in range(6)]
    alone = [api.continuation_logprobs(c) for c in calls]
    scoring = api._scoring
    runs_before = scoring.runs
    with ThreadPoolExecutor(len(calls)) as pool:
        with api._lock:  # hold the model so that every call waits and they are combined
            futures = [pool.submit(api.continuation_logprobs, c) for c in calls]
            wait_until(lambda: len(scoring._waiting) == len(calls))
        together = [f.result(timeout=60) for f in futures]
    assert scoring.runs - runs_before < len(calls)
    for a, t in zip(alone, together):
        assert [s.n_tokens for s in t] == [s.n_tokens for s in a]
        assert [s.logprob for s in t] == pytest.approx([s.logprob for s in a], abs=1e-4)


def test_logprob_model_names_what_is_missing_and_the_fix():
    with pytest.raises(TaskParameterError) as err:
        logprob_model(mock_model("x"), purpose="capability scoring", alternative="or judge_method=generative")
    message = str(err.value)
    assert "capability scoring" in message and "continuation_logprobs()" in message and "next_token_logprobs()" in message
    assert "--model charbench/smollm2" in message and "judge_method=generative" in message


def test_capability_task_scores_through_the_interface(tiny_checkpoint):
    # Same log-likelihoods from the task's scorer as from the plain padded batch.
    from charbench.tasks.capability.task import arc_challenge

    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    log = inspect_eval(arc_challenge(n_shots=3, limit=3), model=model, display="none")[0]
    assert log.status == "success", log.error
    api = logprob_model(model)
    for sample in log.samples:
        meta = sample.metadata
        contexts = list(meta.get("contexts") or [sample.input] * len(meta["continuations"]))
        plain = api.continuation_logprobs(list(zip(contexts, meta["continuations"])), cache_context=False)
        got = sample.scores["loglikelihood_choice"].metadata["logprobs"]
        assert got == pytest.approx([p.logprob for p in plain], abs=1e-4)
    # A model without log-probabilities fails the run with the interface's message, not an AttributeError.
    bad = inspect_eval(arc_challenge(n_shots=0, limit=1), model=mock_model("A"), display="none")[0]
    assert bad.status == "error" and "does not expose" in str(bad.error.message)


@pytest.mark.slow
def test_cached_equals_uncached_on_the_embedded_model_arc_25_shot():
    from charbench.tasks.capability.task import arc_challenge

    task = arc_challenge(n_shots=25, limit=4)
    pairs = []
    for sample in task.dataset:
        meta = sample.metadata or {}
        contexts = list(meta.get("contexts") or [sample.input] * len(meta["continuations"]))
        pairs += list(zip(contexts, meta["continuations"]))
    api = logprob_model(get_model("charbench/smollm2"))
    cached = api.continuation_logprobs(pairs)
    plain = api.continuation_logprobs(pairs, cache_context=False)
    assert [c.n_tokens for c in cached] == [p.n_tokens for p in plain]
    for c, p in zip(cached, plain):
        assert c.logprob == pytest.approx(p.logprob, abs=1e-4)


def test_a_short_reply_batched_beside_a_long_one_keeps_its_own_usage(tiny, tiny_checkpoint):
    import asyncio

    from inspect_ai.model import GenerateConfig, ModelOutput, ModelUsage

    from charbench.models.provider import with_own_usage

    _, tokenizer = tiny
    # what Inspect's transformers provider reports: the batch's padded length for every reply, no stop reason
    padded = ModelUsage(input_tokens=20, output_tokens=64, total_tokens=84)
    short = ModelOutput.from_content("tiny", "carbon dioxide")
    short.usage = padded
    own = with_own_usage(short, tokenizer, max_tokens=64)
    n = len(tokenizer("carbon dioxide", add_special_tokens=False)["input_ids"])
    assert own.usage.output_tokens == n < 64 and own.usage.total_tokens == 20 + n
    assert own.choices[0].stop_reason == "stop"

    long_text = " ".join(["carbon"] * 200)
    cut = ModelOutput.from_content("tiny", long_text)
    cut.usage = padded
    assert with_own_usage(cut, tokenizer, max_tokens=64).choices[0].stop_reason == "max_tokens"

    # through the provider: every reply carries a stop reason consistent with its own length
    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    out = asyncio.run(model.generate("Hello", config=GenerateConfig(max_tokens=5, temperature=0)))
    assert (out.stop_reason == "max_tokens") == (out.usage.output_tokens >= 5)
    assert out.usage.output_tokens == min(len(tokenizer(out.completion, add_special_tokens=False)["input_ids"]), 5)


def test_fixed_shots_reuse_the_shared_block_across_samples_and_match_the_plain_batch(tiny, tiny_checkpoint):
    # Each sample is a separate scorer call; the provider's one-entry prefix cache must carry the shared few-shot
    # block from one to the next, and the numbers must still be the plain padded batch's.
    from charbench.tasks.capability.task import arc_challenge

    _, tokenizer = tiny
    model = get_model(f"charbench/{tiny_checkpoint}", memoize=False)
    log = inspect_eval(arc_challenge(n_shots=4, limit=5, shots="fixed"), model=model, display="none")[0]
    assert log.status == "success", log.error
    api = logprob_model(model)
    contexts = []
    for sample in log.samples:
        plain = api.continuation_logprobs([(sample.input, c) for c in sample.metadata["continuations"]],
                                          cache_context=False)
        got = sample.scores["loglikelihood_choice"].metadata["logprobs"]
        assert got == pytest.approx([p.logprob for p in plain], abs=1e-4)
        contexts.append(tokenizer(sample.input, add_special_tokens=False)["input_ids"])
    shared = min(common_prefix_length(a, b) for a in contexts for b in contexts if a is not b)
    assert shared > len(contexts[0]) // 2  # four shots before a short question
    prefix = api._prefix
    assert prefix.hits >= len(contexts) - 1
    assert prefix.reused_tokens >= (len(contexts) - 1) * shared
    assert prefix.computed_tokens <= sum(len(c) for c in contexts) - (len(contexts) - 1) * shared
