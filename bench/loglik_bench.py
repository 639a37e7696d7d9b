"""Log-likelihood scoring speed on ARC-Challenge 25-shot, the plain padded batch against the cached context.

    python bench/loglik_bench.py [--items 12] [--shots 25] [--rounds 2]

Both methods score the same (context, continuation) pairs through the ``charbench/smollm2`` provider, in
alternating rounds so that machine load hits both alike; the largest difference between their log-probs is
printed too (it should be float rounding, well under 1e-4). "plain" is one padded row per
(context, continuation), the method charbench used before the KV-cache change.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--shots", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from inspect_ai.model import get_model

    from charbench.models.logprobs import PrefixCache, logprob_model
    from charbench.tasks.capability.task import arc_challenge

    items = []
    for sample in arc_challenge(n_shots=args.shots, limit=args.items).dataset:
        meta = sample.metadata or {}
        contexts = list(meta.get("contexts") or [sample.input] * len(meta["continuations"]))
        items.append(list(zip(contexts, meta["continuations"])))
    api = logprob_model(get_model("charbench/smollm2"))
    n_pairs = sum(len(i) for i in items)

    def run(cache_context: bool) -> tuple[float, list[float]]:
        api._prefix = PrefixCache()  # each timed run starts cold, as a fresh process would
        start = time.perf_counter()
        scores = [s.logprob for pairs in items
                  for s in api.continuation_logprobs(pairs, batch_size=args.batch_size, cache_context=cache_context)]
        return time.perf_counter() - start, scores

    run(True)  # warm-up (thread pools, first-call allocations)
    times: dict[bool, list[float]] = {False: [], True: []}
    worst = 0.0
    for _ in range(args.rounds):
        t_plain, plain = run(False)
        t_cached, cached = run(True)
        times[False].append(t_plain)
        times[True].append(t_cached)
        worst = max(worst, max(abs(a - b) for a, b in zip(plain, cached)))
    best_plain, best_cached = min(times[False]), min(times[True])
    print(f"ARC-Challenge {args.shots}-shot fixtures, {len(items)} items, {n_pairs} (context, choice) pairs, "
          f"batch {args.batch_size}, best of {args.rounds}")
    print("| method | seconds | items/s | ratio |\n|---|---|---|---|")
    print(f"| plain padded batch (previous) | {best_plain:.2f} | {len(items) / best_plain:.2f} | 1.0 |")
    print(f"| one KV cache per context, prefix reused | {best_cached:.2f} | {len(items) / best_cached:.2f} | "
          f"{best_plain / best_cached:.1f} |")
    print(f"largest |log-prob difference| between the two: {worst:.2e}")


if __name__ == "__main__":
    main()
