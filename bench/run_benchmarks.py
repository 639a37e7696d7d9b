"""On-demand benchmarks; prints a Markdown section for docs/benchmarks.md.

    python bench/run_benchmarks.py [--skip-model]

Ratios are measured side by side in one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _old_bootstrap(matches, n_items: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """The estimator before issue 14, kept here only as the benchmark's baseline: every resample expands the
    match list and I-LSR iterates over it in Python."""
    import choix

    arr = np.asarray(matches)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        theta = choix.ilsr_pairwise(n_items, [tuple(m) for m in arr[rng.integers(0, len(arr), len(arr))]], alpha=0.01)
        draws.append(theta - theta.mean())
    return np.array(draws)


def bench_bradley_terry() -> list[str]:
    import choix

    from charbench.stats import bootstrap_bradley_terry, fit_bradley_terry, online_elo

    rng = np.random.default_rng(0)
    strengths = rng.normal(0, 1, 144)
    i = rng.integers(0, 144, 25000)
    j = (i + rng.integers(1, 144, 25000)) % 144
    p = 1 / (1 + np.exp(-(strengths[i] - strengths[j])))
    win = rng.random(25000) < p
    matches = [(a, b) if w else (b, a) for a, b, w in zip(i, j, win)]

    old_fit = timed(lambda: choix.ilsr_pairwise(144, matches, alpha=0.01), repeat=3)
    fit = timed(lambda: fit_bradley_terry(matches, 144), repeat=3)
    old = choix.ilsr_pairwise(144, matches, alpha=0.01)
    agree = float(np.abs(fit_bradley_terry(matches, 144) - (old - old.mean())).max())
    newton = timed(lambda: choix.opt_pairwise(144, matches, alpha=0.01))
    old_boot = timed(lambda: _old_bootstrap(matches, 144, n_boot=200))
    boot = timed(lambda: bootstrap_bradley_terry(matches, 144, n_boot=200))
    elo1 = timed(lambda: online_elo(matches, 144, n_orderings=1), repeat=3)
    return [
        "## Bradley-Terry on 25,000 synthetic matches over 144 traits",
        "| step | seconds | ratio to one BT fit (now) |", "|---|---|---|",
        f"| BT fit, I-LSR on the match list (before issue 14) | {old_fit:.3f} | {old_fit / fit:.1f} |",
        f"| BT fit, I-LSR on the 144 x 144 win-count matrix (now; max difference {agree:.1e} in theta) "
        f"| {fit:.3f} | 1.0 |",
        f"| BT fit (choix opt_pairwise, Newton-CG), for comparison | {newton:.3f} | {newton / fit:.1f} |",
        f"| 200 bootstrap resamples, before (index resampling, list fits) | {old_boot:.2f} | {old_boot / fit:.0f} |",
        f"| 200 bootstrap resamples, now (multinomial over pairs, warm-started count fits) | {boot:.2f} "
        f"| {boot / fit:.0f} |",
        f"| online Elo, one ordering (K=32) | {elo1:.3f} | {elo1 / fit:.2f} |", "",
    ]


def bench_model() -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from charbench.models.embedded import prepare_smollm2

    with tempfile.TemporaryDirectory() as tmp:
        first = timed(lambda: prepare_smollm2(Path(tmp)))
        cached = timed(lambda: prepare_smollm2(Path(tmp)))
    path = prepare_smollm2()
    load = timed(lambda: AutoModelForCausalLM.from_pretrained(path), repeat=2)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = ["Tell me about the ocean.", "How do I boil an egg?", "Write a haiku about rain.", "What is a prime number?",
               "Give me advice on sleep.", "Explain photosynthesis briefly.", "Why is the sky blue?", "Name three rivers."]
    chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]

    def raw():
        batch = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            model.generate(**batch, max_new_tokens=64, min_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.95,
                           pad_token_id=tok.eos_token_id)

    raw_s = timed(raw, repeat=2)

    import asyncio

    from inspect_ai.model import GenerateConfig, get_model

    m = get_model("charbench/smollm2", config=GenerateConfig(max_tokens=64, temperature=0.7, top_p=0.95, max_connections=8))

    async def via_inspect():
        outs = await asyncio.gather(*[m.generate(p) for p in prompts])
        return sum(o.usage.output_tokens for o in outs)

    asyncio.run(via_inspect())  # warm
    start = time.perf_counter()
    tokens = asyncio.run(via_inspect())
    insp_s = time.perf_counter() - start
    raw_tps, insp_tps = 8 * 64 / raw_s, tokens / insp_s
    return [
        "## Embedded SmolLM2-135M",
        "| measure | value |", "|---|---|",
        f"| first preparation (GGUF to safetensors) | {first:.1f} s |",
        f"| second preparation (cache hit) | {cached * 1000:.1f} ms |",
        f"| load of the prepared checkpoint | {load:.2f} s |",
        f"| raw batched generate, 8 x 64 tokens | {raw_tps:.0f} tokens/s |",
        f"| through Inspect (charbench/ provider, 8 concurrent) | {insp_tps:.0f} tokens/s ({tokens} tokens, usage counts may include padding) |",
        f"| ratio Inspect / raw | {insp_tps / raw_tps:.2f} |", "",
    ]


def bench_classifiers() -> list[str]:
    from charbench.classifiers import PersonaClassifierConfig, train_encoder_classifier, train_tfidf_classifier

    rng = np.random.default_rng(0)
    words = {"sarcastic": "oh sure genius brilliant wow totally", "remorseful": "sorry apologies afraid might wrong forgive",
             "mathematical": "therefore prime proof equation ratio pattern"}
    filler = "the a of to and in it is that for with as on this you".split()
    texts, labels = [], []
    for label, vocab in words.items():
        for _ in range(64):
            texts.append(" ".join(rng.choice(vocab.split() + filler, 40)))
            labels.append(label)
    with tempfile.TemporaryDirectory() as tmp:
        t_tfidf = timed(lambda: train_tfidf_classifier(texts, labels, Path(tmp) / "t"))
        cfg = PersonaClassifierConfig(encoder="minilm", learning_rate=1e-4, epochs=1, max_length=64)
        t_enc = timed(lambda: train_encoder_classifier(texts, labels, Path(tmp) / "e", cfg))
        from charbench.classifiers import load_persona_classifier

        tf, enc = load_persona_classifier(Path(tmp) / "t"), load_persona_classifier(Path(tmp) / "e")
        p_tf = timed(lambda: tf.predict(texts), repeat=2)
        p_enc = timed(lambda: enc.predict(texts), repeat=2)
    n = len(texts)
    return [
        f"## Persona classifiers ({n} synthetic 40-word responses, 3 personas)",
        "| classifier | train (s) | inference (responses/s) |", "|---|---|---|",
        f"| TF-IDF + logistic regression | {t_tfidf:.2f} | {n / p_tf:.0f} |",
        f"| all-MiniLM-L6-v2 fine-tune, 1 epoch, max_length 64 | {t_enc:.1f} | {n / p_enc:.0f} |", "",
    ]


def bench_preferences_end_to_end(n: int = 48) -> list[str]:
    """Matches per minute through Inspect, and the share of that time spent outside the model.

    "Inside the model" is measured by doing the same work directly: one batched generate over the same chat
    prompts (batch 16, 64 new tokens) plus the likelihood judge's scoring of the responses.
    """
    import torch
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, get_model

    from charbench.judges.likelihood import TRAIT_HYPOTHESIS
    from charbench.tasks.revealed_preferences.task import revealed_preferences

    traits = ["sarcastic", "humble", "formal", "playful", "remorseful", "precise", "warm", "blunt"]
    task = revealed_preferences(n_matches=n, traits=traits, max_tokens=64)
    model, judge = get_model("charbench/smollm2"), get_model("charbench/smollm2", memoize=False)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        log = inspect_eval(task, model=model, model_roles={"judge": judge}, max_connections=16, display="none", log_dir=tmp)[0]
        wall = time.perf_counter() - start
        samples = list(log.samples)  # read while the log file still exists
    api, tok = model.api, model.api.tokenizer
    chats = [api.render([ChatMessageSystem(content=s.metadata["system"]), ChatMessageUser(content=s.input)]) for s in samples]
    responses = [s.output.completion for s in samples]
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(chats), 16):
            batch = tok(chats[i:i + 16], return_tensors="pt", padding=True, add_special_tokens=False)
            api.model.generate(**batch, max_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.95, pad_token_id=tok.eos_token_id)
    pairs = []
    for s, r in zip(samples, responses):
        for t in (s.metadata["trait_1"], s.metadata["trait_2"]):
            pairs.append((api.render([ChatMessageSystem(content=TRAIT_HYPOTHESIS.format(trait=t)), ChatMessageUser(content=s.input)]), r or " "))
    api.continuation_logprobs(pairs)
    raw = time.perf_counter() - start
    return [
        f"## Revealed preferences end to end ({n} matches, 8 traits, likelihood judge, 64 tokens)",
        "| measure | value |", "|---|---|",
        f"| wall time through Inspect (model load excluded) | {wall:.1f} s |",
        f"| matches per minute | {n / wall * 60:.1f} |",
        f"| same generation + judging done directly | {raw:.1f} s |",
        f"| share of the Inspect run spent outside the model | {max(0.0, 1 - raw / wall):.0%} |", "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--only-bradley-terry", action="store_true", help="the statistics table alone (no model, no training)")
    args = parser.parse_args()
    lines = [f"_Run on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}; "
             "command: `python bench/run_benchmarks.py`._", ""]
    lines += bench_bradley_terry()
    if args.only_bradley_terry:
        print("\n".join(lines))
        return
    lines += bench_classifiers()
    if not args.skip_model:
        lines += bench_model()
        lines += bench_preferences_end_to_end()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
