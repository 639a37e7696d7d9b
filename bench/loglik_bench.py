"""Log-likelihood scoring speed on ARC-Challenge 25-shot: per-item shots against one fixed set of shots, each
scored by the plain padded batch and by the cached context.

    python bench/loglik_bench.py [--items 8] [--shots 25] [--rounds 1]

The same ARC items are built twice, with ``shots=per_item`` (each item draws its own 25 examples, task version 1)
and ``shots=fixed`` (one seeded draw for every item, the default from version 2), and each set is scored through
the ``charbench/smollm2`` provider one item per call, as the task's scorer calls it. "plain" is one padded row
per (context, continuation), the method charbench used before the KV-cache change; "cached" computes each
context once, reusing the provider's cached prefix from the previous item, and packs the choices after it.
The four runs alternate within each round so that machine load hits them alike; the largest difference between
the plain and the cached log-probs of each item set is printed too (float rounding, well under 1e-4).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

SELECTIONS = ("per_item", "fixed")
METHODS = {False: "plain padded batch", True: "cached context, prefix reused"}


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    reused_tokens: int = 0
    computed_tokens: int = 0


def item_pairs(n_items: int, n_shots: int, selection: str) -> list[list[tuple[str, str]]]:
    from charbench.tasks.capability.task import arc_challenge

    items = []
    for sample in arc_challenge(n_shots=n_shots, limit=n_items, shots=selection).dataset:
        meta = sample.metadata or {}
        contexts = list(meta.get("contexts") or [sample.input] * len(meta["continuations"]))
        items.append(list(zip(contexts, meta["continuations"])))
    return items


def timed_run(api: Any, items: list[list[tuple[str, str]]], cache_context: bool, batch_size: int,
              timing: Timing) -> None:
    from charbench.models.logprobs import PrefixCache

    api._prefix = PrefixCache()  # each timed run starts cold, as a fresh process would
    start = time.perf_counter()
    scores = [s.logprob for pairs in items
              for s in api.continuation_logprobs(pairs, batch_size=batch_size, cache_context=cache_context)]
    timing.seconds.append(time.perf_counter() - start)
    timing.scores = scores
    timing.reused_tokens, timing.computed_tokens = api._prefix.reused_tokens, api._prefix.computed_tokens


def print_table(args: argparse.Namespace, n_items: int, n_pairs: int, timings: dict[tuple[str, bool], Timing]) -> None:
    base = min(timings[("per_item", False)].seconds)
    print(f"ARC-Challenge {args.shots}-shot fixtures, {n_items} items, {n_pairs} (context, choice) pairs per "
          f"selection, batch {args.batch_size}, best of {args.rounds}")
    print("| shots | method | seconds | items/s | vs per_item plain | context tokens computed / reused |")
    print("|---|---|---|---|---|---|")
    for (selection, cached), timing in timings.items():
        best = min(timing.seconds)
        tokens = f"{timing.computed_tokens} / {timing.reused_tokens}" if cached else "all, per choice"
        print(f"| {selection} | {METHODS[cached]} | {best:.2f} | {n_items / best:.2f} | {base / best:.1f} | {tokens} |")
    for selection in SELECTIONS:
        plain, cached = timings[(selection, False)].scores, timings[(selection, True)].scores
        worst = max(abs(a - b) for a, b in zip(plain, cached))
        print(f"{selection}: largest |log-prob difference| plain vs cached: {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--shots", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    from inspect_ai.model import get_model

    from charbench.models.logprobs import logprob_model

    items = {selection: item_pairs(args.items, args.shots, selection) for selection in SELECTIONS}
    api = logprob_model(get_model("charbench/smollm2"))
    timed_run(api, items["fixed"][:2], True, args.batch_size, Timing())  # warm-up (thread pools, allocations)
    timings = {(selection, cached): Timing() for selection in SELECTIONS for cached in METHODS}
    for _ in range(args.rounds):
        for (selection, cached), timing in timings.items():
            timed_run(api, items[selection], cached, args.batch_size, timing)
    print_table(args, len(items["fixed"]), sum(len(i) for i in items["fixed"]), timings)


if __name__ == "__main__":
    main()
