"""Generation speed of the charbench/ provider's transformers engine against raw transformers (issue 14).

    .venv/bin/python bench/generation_bench.py [--prompts 64] [--max-tokens 128] [--persona sarcastic]
                                               [--lock /tmp/charbench-cpu.lock]

The same prompts (the offline set's evaluation prompts, one user turn each, rendered by the chat template), greedy
decoding, at most ``--max-tokens`` new tokens, float32, side by side in one run (with ``--persona``, every prompt
opens with that persona's system prompt, as a prompted variant's do) through:

1. raw transformers ``generate`` on the prepared SmolLM2 checkpoint, batches of 32 (the issue's baseline), no
   Inspect, then in one batch of all the prompts (the batch the Inspect paths form here, since the eval runs with
   ``max_connections`` equal to the number of prompts);
2. ``charbench/smollm2 -M batching=inspect`` through ``inspect_ai.eval``: Inspect's own transformers queue, the
   path before issue 14;
3. ``charbench/smollm2`` (the provider's own batching, the default) through ``inspect_ai.eval``.

With ``--prefix-ab N`` (needs ``--persona``) only the provider runs, ``N`` times in turn in each of two forms: its
batches decoding with the persona prompt's KV cache repeated over their rows (transformers' form, before), and
with the prefix read once per decoding step (``charbench.models.shared_prefix``, now).

Throughput is generated tokens (each reply's tokens before its end-of-sequence token) over the wall time of the
generation: the ``generate`` loop for the raw path, the whole ``eval()`` call for the Inspect paths (the model is
loaded before). For the Inspect paths the time inside ``model.generate`` is reported too: the rest is Inspect's
and the provider's own work. ``--lock`` takes that file lock (flock) around each measurement, so that on a shared
machine each measurement runs alone without holding the lock for the whole run. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

BATCH = 32


@dataclass
class Measured:
    name: str
    seconds: float
    tokens: int
    replies: list[str]
    in_generate: float | None = None
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds


@contextlib.contextmanager
def held(lock_path: str | None) -> Iterator[None]:
    if lock_path is None:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prompts(n: int) -> list[str]:
    from charbench.prompts import load_prompt_set

    texts = [p.text for p in load_prompt_set("offline", split="eval")]
    if len(texts) < n:
        raise SystemExit(f"the offline evaluation set has {len(texts)} prompts; ask for at most that many")
    return texts[:n]


def persona_prompt(name: str | None) -> str | None:
    from charbench.constitutions import load_constitution
    from charbench.paper import persona_system_prompt

    return persona_system_prompt(load_constitution(name)) if name else None


def raw_transformers(texts: list[str], max_tokens: int, batch_size: int, system: str | None) -> Measured:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from charbench.models.embedded import prepare_smollm2

    path = prepare_smollm2()
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token, tok.padding_side = tok.eos_token, "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    opening = [{"role": "system", "content": system}] if system else []
    chats = [tok.apply_chat_template([*opening, {"role": "user", "content": t}], tokenize=False,
                                     add_generation_prompt=True) for t in texts]
    produced, replies = 0, []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(chats), batch_size):
            batch = tok(chats[i : i + batch_size], return_tensors="pt", padding=True)
            out = model.generate(**batch, max_new_tokens=max_tokens, do_sample=False)
            for row in out[:, batch["input_ids"].shape[1] :].tolist():  # the reply's tokens before its end token
                n = row.index(tok.eos_token_id) if tok.eos_token_id in row else len(row)
                produced += n
                replies.append(tok.decode(row[:n], skip_special_tokens=True, clean_up_tokenization_spaces=False))
    seconds = time.perf_counter() - start
    sizes = [min(batch_size, len(texts) - i) for i in range(0, len(texts), batch_size)]
    return Measured(f"raw transformers `generate`, batches of {batch_size}", seconds, produced, replies,
                    batch_sizes=sizes)


def timing_generate(api: Any, spent: list[float], sizes: list[int]) -> None:
    """Record the seconds and batch size of every ``model.generate`` call the provider makes."""
    inner = api.model.generate

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)
            sizes.append(int(kwargs["input_ids"].shape[0]))

    api.model.generate = timed


def timed_eval(model: Any, texts: list[str], max_tokens: int, log_dir: str,
               system: str | None = None) -> tuple[float, list[Any], int]:
    """Greedy replies to ``texts`` through one Inspect eval, every prompt in flight at once: (seconds, samples
    in prompt order, generated tokens as the provider counts them)."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig
    from inspect_ai.solver import generate

    opening = [ChatMessageSystem(content=system)] if system else []
    dataset = MemoryDataset([Sample(id=i, input=[*opening, ChatMessageUser(content=t)]) for i, t in enumerate(texts)])
    task = Task(dataset=dataset, solver=generate(),
                config=GenerateConfig(temperature=0, max_tokens=max_tokens))
    start = time.perf_counter()
    (log,) = eval(task, model=model, display="none", log_dir=log_dir, max_connections=len(texts))
    seconds = time.perf_counter() - start
    assert log.status == "success", log.error
    samples = sorted(log.samples or [], key=lambda s: int(s.id))
    produced = sum(s.output.usage.output_tokens for s in samples if s.output and s.output.usage)
    return seconds, samples, produced


def through_inspect(name: str, model_args: dict[str, Any], texts: list[str], max_tokens: int,
                    log_dir: str, system: str | None) -> Measured:
    from inspect_ai.model import get_model

    model = get_model("charbench/smollm2", memoize=False, **model_args)
    spent: list[float] = []
    sizes: list[int] = []
    timing_generate(model.api, spent, sizes)
    seconds, samples, produced = timed_eval(model, texts, max_tokens, log_dir, system)
    model.api.close()
    return Measured(name, seconds, produced, [s.output.completion for s in samples], sum(spent), sizes)


def prefix_ab(texts: list[str], max_tokens: int, log_dir: str, system: str, lock: str | None,
              rounds: int) -> list[Measured]:
    """The provider on the same prompts, its prefix repeated per row and read once, ``rounds`` times in turn."""
    from inspect_ai.model import get_model

    rows = []
    for _ in range(rounds):
        for repeated in (True, False):
            model = get_model("charbench/smollm2", memoize=False)
            api: Any = model.api  # the charbench provider
            if repeated:
                api.batcher().prefix_sharing = False  # decided, so the batcher never switches it on
            spent: list[float] = []
            sizes: list[int] = []
            timing_generate(model.api, spent, sizes)
            with held(lock):
                seconds, samples, produced = timed_eval(model, texts, max_tokens, log_dir, system)
            model.api.close()
            name = "prefix repeated over the rows" if repeated else "prefix read once per step"
            rows.append(Measured(name, seconds, produced, [s.output.completion for s in samples], sum(spent), sizes))
            print(f"[measured] {name}: {produced} tokens in {seconds:.1f} s ({sum(spent):.1f} s in generate)",
                  flush=True)
    return rows


def prefix_ab_report(rows: list[Measured], args: argparse.Namespace, started: str) -> list[str]:
    lines = [
        "## A shared prompt prefix read once per decoding step (issue 14)",
        f"_Run on {platform.node()} ({os.cpu_count()} cores), {started}; command: `.venv/bin/python "
        f"bench/generation_bench.py --prompts {args.prompts} --max-tokens {args.max_tokens} --persona {args.persona} "
        f"--prefix-ab {args.prefix_ab}{' --lock ' + args.lock if args.lock else ''}`. `charbench/smollm2`, greedy, "
        f"every prompt in flight; the two forms in turn._",
        "",
        "| round | form | seconds | inside `model.generate` (s) | generated tokens | tokens/s | batches |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, row in enumerate(rows):
        lines.append(f"| {i // 2 + 1} | {row.name} | {row.seconds:.1f} | {row.in_generate:.1f} | {row.tokens} "
                     f"| {row.rate:.1f} | {'+'.join(map(str, row.batch_sizes))} |")
    pairs = list(zip(rows[::2], rows[1::2]))
    ratios = ", ".join(f"{a.seconds / b.seconds:.2f}" for a, b in pairs)
    same = ", ".join(f"{same_replies(a, b)}/{len(a.replies)}" for a, b in pairs)
    lines += ["", f"Wall-time ratio repeated / read once, per round: {ratios}. Identical replies per round: {same}."]
    return lines


def same_replies(a: Measured, b: Measured) -> int:
    return sum(x == y for x, y in zip(a.replies, b.replies))


def report(rows: list[Measured], args: argparse.Namespace, started: str) -> list[str]:
    raw, old, new = rows[0], rows[-2], rows[-1]
    lines = [
        "## Generation through the provider (issue 14)",
        f"_Run on {platform.node()} ({os.cpu_count()} cores, shared), {started}; command: `.venv/bin/python "
        f"bench/generation_bench.py --prompts {args.prompts} --max-tokens {args.max_tokens}"
        f"{' --persona ' + args.persona if args.persona else ''}{' --lock ' + args.lock if args.lock else ''}`. "
        f"{args.prompts} offline evaluation prompts{' after the ' + args.persona + ' system prompt' if args.persona else ''}"
        ", greedy, at most "
        f"{args.max_tokens} new tokens, float32, Inspect `max_connections={args.prompts}`; one run, side by side._",
        "",
        f"| path | seconds | generated tokens | tokens/s | vs raw (batches of {BATCH}) "
        "| inside `model.generate` (s) | batches |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        inside = f"{row.in_generate:.1f}" if row.in_generate is not None else "all"
        batches = "+".join(map(str, row.batch_sizes))
        lines.append(f"| {row.name} | {row.seconds:.1f} | {row.tokens} | {row.rate:.1f} | {row.rate / raw.rate:.2f} "
                     f"| {inside} | {batches} |")
    lines += ["", f"Identical replies: charbench batching vs raw {same_replies(new, raw)}/{len(raw.replies)}, vs "
              f"Inspect's queue {same_replies(new, old)}/{len(raw.replies)}; Inspect's queue vs raw "
              f"{same_replies(old, raw)}/{len(raw.replies)}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--persona", help="open every prompt with this persona's system prompt (a prompted variant)")
    parser.add_argument("--lock", help="flock this file around each measurement (shared machines)")
    parser.add_argument("--prefix-ab", type=int, metavar="N",
                        help="only the provider, N rounds of its prefix repeated per row against read once")
    args = parser.parse_args()
    if args.prefix_ab is not None and args.prefix_ab < 1:
        parser.error("--prefix-ab takes a number of rounds of at least 1")
    if args.prefix_ab and not args.persona:
        parser.error("--prefix-ab compares ways of decoding after a shared persona prompt: give --persona too")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")
    started = time.strftime("%Y-%m-%d %H:%M")
    texts = prompts(args.prompts)
    system = persona_prompt(args.persona)
    log_dir = tempfile.mkdtemp(prefix="generation-bench-")
    if args.prefix_ab:
        assert system is not None
        ab = prefix_ab(texts, args.max_tokens, log_dir, system, args.lock, args.prefix_ab)
        print("\n".join(prefix_ab_report(ab, args, started)))
        return
    paths = [
        lambda: raw_transformers(texts, args.max_tokens, BATCH, system),
        lambda: raw_transformers(texts, args.max_tokens, len(texts), system),
        lambda: through_inspect("`charbench/smollm2 -M batching=inspect` (Inspect's queue, before)",
                                {"batching": "inspect"}, texts, args.max_tokens, log_dir, system),
        lambda: through_inspect("`charbench/smollm2` (charbench batching, now)", {}, texts, args.max_tokens,
                                log_dir, system),
    ]
    rows = []
    for measure in paths:
        with held(args.lock):
            row = measure()
        rows.append(row)
        print(f"[measured] {row.name}: {row.tokens} tokens in {row.seconds:.1f} s = {row.rate:.1f} tokens/s",
              flush=True)
    print("\n".join(report(rows, args, started)))


if __name__ == "__main__":
    main()
