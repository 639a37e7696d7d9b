"""Time per decoding step of the seeded sampler, with transformers' top-p warper and with ``NucleusFilter`` (issue 14).

    .venv/bin/python bench/sampler_bench.py [--rows 54] [--temperature 0.7] [--top-p 0.95] [--repeats 10]

The scores are the embedded SmolLM2's next-token logits after ``--rows`` offline evaluation prompts (chat template
applied), the shape of one decoding step of a robustness-suite batch. Each line is the median of ``--repeats``
calls, on the same scores, side by side in one process; the kept tokens of the two top-p filters are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=54)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats take a whole number of at least 1")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from charbench.models.batching import NucleusFilter, RowSampler, Settings
    from charbench.models.embedded import prepare_smollm2
    from charbench.prompts import load_prompt_set

    path = prepare_smollm2()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    texts = [p.text for p in load_prompt_set("offline", split="eval")][: args.rows]
    if len(texts) < args.rows:
        raise SystemExit(f"the offline evaluation set has {len(texts)} prompts; ask for at most that many rows")
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                           add_generation_prompt=True) for t in texts]
    with torch.inference_mode():
        logits = model(**tokenizer(chats, return_tensors="pt", padding=True)).logits[:, -1].float()

    settings = Settings(max_new_tokens=1, do_sample=True, temperature=args.temperature, top_p=args.top_p)
    sampler = RowSampler(range(args.rows), settings, GenerationConfig())
    with_sort = RowSampler(range(args.rows), settings, GenerationConfig())
    with_sort.warpers[-1] = TopPLogitsWarper(args.top_p)  # what RowSampler ran before NucleusFilter
    scores = TemperatureLogitsWarper(args.temperature)(None, logits)
    theirs, ours = TopPLogitsWarper(args.top_p)(None, scores), NucleusFilter(args.top_p)(None, scores)
    differ = int((torch.isfinite(theirs) != torch.isfinite(ours)).sum())
    rows = [
        ("transformers `TopPLogitsWarper`", median_ms(lambda: TopPLogitsWarper(args.top_p)(None, scores), args.repeats)),
        ("`NucleusFilter`", median_ms(lambda: NucleusFilter(args.top_p)(None, scores), args.repeats)),
        ("whole `RowSampler` step, transformers' top-p (before)",
         median_ms(lambda: with_sort(None, logits.clone()), args.repeats)),
        ("whole `RowSampler` step, `NucleusFilter` (now)", median_ms(lambda: sampler(None, logits.clone()), args.repeats)),
    ]
    print(f"{args.rows} rows x {logits.shape[1]} tokens, temperature {args.temperature}, top-p {args.top_p}, "
          f"median of {args.repeats} calls")
    print("\n| step | ms |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} |")
    kept = torch.isfinite(ours).sum(dim=1)
    print(f"\nTokens kept per row: median {int(kept.median())}, max {int(kept.max())}; kept by one filter and not the "
          f"other: {differ} (of {scores.numel()}).")


if __name__ == "__main__":
    main()
