"""Generation and log-likelihood speed of the charbench/ provider's two engines, side by side, in one run.

    VLLM_CPU_KVCACHE_SPACE=2 .venv-vllm/bin/python bench/vllm_bench.py [--prompts 64] [--max-tokens 128]

Runs in the vLLM environment (``make test-vllm`` builds ``.venv-vllm``). The same prompts (the offline set's
evaluation prompts, one user turn each, rendered by the chat template), greedy decoding, ``--max-tokens`` new
tokens at most, through:

1. raw transformers ``generate`` on the prepared SmolLM2 checkpoint, batches of 32 (the batch Inspect's
   transformers provider forms), no Inspect;
2. ``charbench/smollm2`` (transformers engine) through ``inspect_ai.eval``;
3. raw vLLM: ``LLM.generate`` on the same token ids, no Inspect;
4. ``charbench/smollm2 -M engine=vllm`` through ``inspect_ai.eval``;
5. Inspect's own ``vllm/`` provider (it starts ``vllm serve`` and talks to it over HTTP) through ``inspect_ai.eval``.

Throughput is output tokens (each reply's tokens before its end-of-sequence token, on every path) over the wall
time of the generation alone; engine and server start-up are reported on their own lines. Then log-likelihood items/s on the same ARC-Challenge fixture
items (``--loglik-items``, 25-shot) for both engines. Prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time

# The raw transformers baseline and the prompts are generation_bench's, so both tables measure the same thing
# (a script's own folder is on sys.path).
from generation_bench import prompts, raw_transformers, timed_eval

ENGINE = {"engine": "vllm", "gpu_memory_utilization": 0.5, "max_model_len": 4096}


def inspect_run(model, texts: list[str], max_tokens: int, log_dir: str) -> tuple[float, int]:
    seconds, _samples, produced = timed_eval(model, texts, max_tokens, log_dir)
    return seconds, produced


def raw_vllm(api, texts: list[str], max_tokens: int) -> tuple[float, int]:
    from inspect_ai.model import ChatMessageUser
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    ids = [api.prompt_token_ids([ChatMessageUser(content=t)]) for t in texts]
    llm = api._engine().llm  # the engine thread is idle between calls; LLM.generate steps it itself
    start = time.perf_counter()
    outs = llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids],
                        SamplingParams(temperature=0, max_tokens=max_tokens), use_tqdm=False)
    eos = api.tokenizer.eos_token_id
    return time.perf_counter() - start, sum(len(o.outputs[0].token_ids) - (list(o.outputs[0].token_ids)[-1:] == [eos])
                                            for o in outs)


def loglik(api, items: list[list[tuple[str, str]]]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    scores = [s.logprob for pairs in items for s in api.continuation_logprobs(pairs)]
    return time.perf_counter() - start, scores


def arc_items(n: int, shots: int) -> list[list[tuple[str, str]]]:
    from charbench.tasks.capability.task import arc_challenge

    items = []
    for sample in arc_challenge(n_shots=shots, limit=n).dataset:
        meta = sample.metadata or {}
        contexts = list(meta.get("contexts") or [sample.input] * len(meta["continuations"]))
        items.append(list(zip(contexts, meta["continuations"])))
    return items


class Rows(list):
    """Measured rows, each also printed the moment it is measured (a later failure keeps the earlier numbers)."""

    def append(self, row: tuple[str, float, int]) -> None:
        super().append(row)
        print(f"[measured] {row[0]}: {row[2]} tokens in {row[1]:.1f} s = {row[2] / row[1]:.1f} tokens/s", flush=True)


class Notes(list):
    def append(self, note: str) -> None:
        super().append(note)
        print(f"[measured] {note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--loglik-items", type=int, default=12)
    parser.add_argument("--shots", type=int, default=25)
    parser.add_argument("--skip-inspect-vllm", action="store_true", help="skip Inspect's vllm/ provider (server)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")

    from inspect_ai.model import get_model

    from charbench.models.embedded import prepare_smollm2

    texts = prompts(args.prompts)
    logs = tempfile.mkdtemp(prefix="vllm-bench-")
    rows = Rows()
    notes = Notes()

    raw = raw_transformers(texts, args.max_tokens, batch_size=32, system=None)
    rows.append(("raw transformers generate (batches of 32)", raw.seconds, raw.tokens))
    tf_model = get_model("charbench/smollm2")
    rows.append(("charbench/smollm2, transformers engine, through Inspect", *inspect_run(tf_model, texts, args.max_tokens, logs)))

    start = time.perf_counter()
    vl_model = get_model("charbench/smollm2", **ENGINE)
    notes.append(f"vLLM engine start (in process, compilation included): {time.perf_counter() - start:.0f} s")
    rows.append(("raw vLLM LLM.generate (same token ids)", *raw_vllm(vl_model.api, texts, args.max_tokens)))
    rows.append(("charbench/smollm2 -M engine=vllm, through Inspect", *inspect_run(vl_model, texts, args.max_tokens, logs)))

    items = arc_items(args.loglik_items, args.shots)
    n_pairs = sum(len(i) for i in items)
    loglik(tf_model.api, items[:1])  # warm-up: first-call allocations
    t_tf, s_tf = loglik(tf_model.api, items)
    notes.append(f"log-likelihood, transformers engine: {len(items)} items in {t_tf:.1f} s")
    t_vl, s_vl = loglik(vl_model.api, items)
    notes.append(f"log-likelihood, vLLM engine: {len(items)} items in {t_vl:.1f} s")
    worst = max(abs(a - b) for a, b in zip(s_tf, s_vl))

    if not args.skip_inspect_vllm:
        if shutil.which("vllm") is None:
            notes.append("Inspect vllm/ skipped: no `vllm` command on PATH (run with .venv-vllm/bin first on PATH)")
        else:
            vl_model.api.close()  # one engine at a time on this machine
            path = str(prepare_smollm2())
            start = time.perf_counter()
            try:
                served = get_model(f"vllm/{path}", gpu_memory_utilization=0.5, max_model_len=4096, dtype="float32",
                                   lazy_init=False)
            except RuntimeError as exc:  # reported, not fatal: the other rows stand
                notes.append(f"Inspect vllm/ could not start its server: {' '.join(str(exc).split())[:300]}")
            else:
                notes.append(f"Inspect vllm/ server start (`vllm serve` subprocess): {time.perf_counter() - start:.0f} s")
                rows.append(("Inspect vllm/ provider (vllm serve, HTTP)", *inspect_run(served, texts, args.max_tokens, logs)))
                served.api.close()

    raw_tf = rows[0][2] / rows[0][1]
    raw_vl = next(n / t for name, t, n in rows if name.startswith("raw vLLM"))
    print(f"## vLLM engine against transformers (issue 15)\n_Run on {platform.node()} ({os.cpu_count()} cores, "
          f"shared), {time.strftime('%Y-%m-%d %H:%M')}; command: `VLLM_CPU_KVCACHE_SPACE=2 .venv-vllm/bin/python "
          f"bench/vllm_bench.py --prompts {args.prompts} --max-tokens {args.max_tokens} --loglik-items "
          f"{args.loglik_items}`. {len(texts)} offline evaluation prompts, greedy, at most {args.max_tokens} new "
          "tokens, float32 on both engines._\n")
    print("| path | seconds | output tokens | tokens/s | vs raw transformers | vs raw vLLM |\n|---|---|---|---|---|---|")
    for name, seconds, produced in rows:
        rate = produced / seconds
        print(f"| {name} | {seconds:.1f} | {produced} | {rate:.1f} | {rate / raw_tf:.2f} | {rate / raw_vl:.2f} |")
    print(f"\nLog-likelihood, ARC-Challenge {args.shots}-shot fixtures, {len(items)} items ({n_pairs} pairs):\n")
    print("| engine | seconds | items/s |\n|---|---|---|")
    print(f"| transformers (cached context) | {t_tf:.1f} | {len(items) / t_tf:.2f} |")
    print(f"| vLLM (prompt log-probs) | {t_vl:.1f} | {len(items) / t_vl:.2f} |")
    print(f"\nLargest |log-prob difference| between the engines on these pairs: {worst:.1e} nats.")
    for note in notes:
        print(f"- {note}")
    shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":  # vLLM starts worker processes that re-import this file
    main()
