"""Control-strength sweep for the steering baseline on the embedded model; prints a Markdown section.

    python bench/steering_sweep.py [--persona sarcastic] [--coefs 0,0.25,0.5,0.75,1,1.5,2] [--n-prompts 8]

For each coefficient, on evaluation prompts with no system prompt:

* projection: how far steering moves the steered layers' last-token states along the persona direction, as a
  share of the gap between persona-prompted and unprompted states (0 = unsteered, 1 = as far as the prompt);
* persona margin: mean log-probability per token of the persona-prompted model's greedy reply minus that of the
  unprompted model's greedy reply, both scored after the unprompted context. It rises when steering makes the
  model more likely to say what the persona prompt would have made it say;
* coherence proxies of the steered model's own greedy reply: distinct-token and distinct-bigram ratios (a reply
  stuck in a loop scores near 0) and the share of replies whose distinct-bigram ratio is below 0.5.

Intervals are 95% Student-t intervals over prompts (the independent unit). Replies are greedy with the paper's
repetition penalty 1.1 unless ``--repetition-penalty`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def progress(message: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)


def t_estimate(values):
    """Mean with a Student-t 95% interval: with a handful of prompts the normal quantile would be too narrow."""
    from scipy import stats as st

    from charbench.stats import Estimate

    arr = np.asarray(values, dtype=float)
    mean, se = float(arr.mean()), float(st.sem(arr))
    if se == 0:  # every prompt gave the same value: a zero-width interval, not scipy's NaN
        return Estimate(mean, mean, mean, len(arr), se)
    low, high = st.t.interval(0.95, len(arr) - 1, loc=mean, scale=se)
    return Estimate(mean, float(low), float(high), len(arr), se)


def chat(tokenizer, prompt: str, system: str | None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def sweep(persona: str, coefs: list[float], n_pairs: int, n_prompts: int, max_new_tokens: int,
          repetition_penalty: float) -> tuple[list[dict], dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from charbench.constitutions import load_constitution
    from charbench.models.embedded import resolve_checkpoint
    from charbench.models.steering import (
        compute_steering_vectors,
        distinct_ratio,
        greedy_replies,
        mean_token_logprobs,
        projections,
        steered_layer_states,
        steering,
    )
    from charbench.paper import persona_system_prompt
    from charbench.prompts import load_prompt_set

    torch.manual_seed(0)
    start = time.perf_counter()
    path = resolve_checkpoint("smollm2")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    constitution = load_constitution(persona)
    progress("model loaded", start)
    vectors = compute_steering_vectors(SimpleNamespace(tokenizer=tok, model=model, assistant_name="Assistant"),
                                       constitution, n_pairs)
    progress(f"steering vectors from {n_pairs} pairs", start)
    system = persona_system_prompt(constitution, "Assistant")
    prompts = [p.text for p in load_prompt_set("offline", split="eval", limit=n_prompts)]
    plain = [chat(tok, p, None) for p in prompts]
    prompted = [chat(tok, p, system) for p in prompts]
    persona_replies = greedy_replies(model, tok, prompted, max_new_tokens, repetition_penalty)
    plain_replies = greedy_replies(model, tok, plain, max_new_tokens, repetition_penalty)
    proj_pos = projections(steered_layer_states(model, tok, prompted, vectors), vectors)
    proj_neg = projections(steered_layer_states(model, tok, plain, vectors), vectors)
    gap = proj_pos - proj_neg
    progress("reference replies and projections", start)
    rows = []
    for coef in coefs:
        with steering(model, vectors, coef):
            moved = projections(steered_layer_states(model, tok, plain, vectors), vectors) - proj_neg
            margin = (mean_token_logprobs(model, tok, plain, persona_replies)
                      - mean_token_logprobs(model, tok, plain, plain_replies))
            replies = greedy_replies(model, tok, plain, max_new_tokens, repetition_penalty)
        tokens = [tok.tokenize(r) for r in replies]
        # An empty reply has no distinct ratio; it is counted in the "empty" column instead.
        d1 = [distinct_ratio(t, 1) for t in tokens if len(t) > 1]
        d2 = [distinct_ratio(t, 2) for t in tokens if len(t) > 1]
        rows.append({
            "coef": coef, "projection": float(moved.mean() / gap.mean()),
            "margin": t_estimate(margin), "distinct1": t_estimate(d1), "distinct2": t_estimate(d2),
            "looping": sum(d < 0.5 for d in d2), "empty": sum(len(t) <= 1 for t in tokens), "example": replies[0],
        })
        progress(f"coef {coef:g}: projection {rows[-1]['projection']:.2f}, margin {rows[-1]['margin']}, "
                 f"distinct bigrams {rows[-1]['distinct2']}", start)
    info = {"persona": persona, "n_pairs": n_pairs, "n_prompts": len(prompts), "layers": len(vectors.layers),
            "max_new_tokens": max_new_tokens, "repetition_penalty": repetition_penalty,
            "seconds": time.perf_counter() - start, "gap_positive": int((gap > 0).sum())}
    return rows, info


def markdown(rows: list[dict], info: dict, command: str) -> list[str]:
    def cell(e) -> str:
        return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"

    n = info["n_prompts"]
    lines = [
        f"## Steering control-strength sweep (embedded SmolLM2-135M, persona {info['persona']})",
        f"`{command}` on {platform.processor() or platform.machine()}, {info['seconds']:.0f} s. Mean-difference "
        f"direction from {info['n_pairs']} contrast pairs over {info['layers']} middle layers; {n} evaluation prompts "
        f"with no system prompt (n = {n} per cell, 95% t intervals over prompts); greedy replies of "
        f"{info['max_new_tokens']} tokens, repetition penalty {info['repetition_penalty']:g}. The persona prompt raised "
        f"the projection on {info['gap_positive']} of {n} prompts.", "",
        "| coef | projection moved (share of prompt's) | persona margin, nats/token [95% CI] | distinct tokens [95% CI] "
        "| distinct bigrams [95% CI] | looping replies | empty or one-token replies |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['coef']:g} | {r['projection']:.2f} | {cell(r['margin'])} | {cell(r['distinct1'])} | "
                     f"{cell(r['distinct2'])} | {r['looping']}/{n} | {r['empty']}/{n} |")
    lines += ["", "First prompt's steered reply per coefficient:", ""]
    lines += [f"- {r['coef']:g}: {r['example'].strip()[:160]!r}" for r in rows]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persona", default="sarcastic")
    parser.add_argument("--coefs", default="0,0.25,0.5,0.75,1,1.5,2")
    parser.add_argument("--n-pairs", type=int, default=48)
    parser.add_argument("--n-prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repetition-penalty", type=float, default=1.1)
    args = parser.parse_args()
    try:
        coefs = [float(c) for c in args.coefs.split(",")]
    except ValueError:
        parser.error(f"--coefs {args.coefs!r}: give comma-separated numbers, e.g. 0,0.5,1")
    if args.n_prompts < 2:
        parser.error("--n-prompts must be at least 2 for an interval over prompts")
    rows, info = sweep(args.persona, coefs, args.n_pairs, args.n_prompts, args.max_new_tokens, args.repetition_penalty)
    command = "python bench/steering_sweep.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    print("\n".join(markdown(rows, info, command)))


if __name__ == "__main__":
    main()
