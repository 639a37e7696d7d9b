"""``charbench/coherence`` (paper section 3.3, appendix D): which variant replies more coherently, in character."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.log import EvalSample, read_eval_log
from inspect_ai.model import ChatMessageUser, GenerateConfig, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.judges.pairwise import JUDGE_PROMPTS, check_judge_method, judge_template
from charbench.prompts import load_prompt_set
from charbench.tasks.coherence.contract import CONTRACT
from charbench.tasks.coherence.scorer import pairwise_coherence
from charbench.tasks.contract import contract_metadata

logger = logging.getLogger(__name__)

JOINS = ("exact", "inner")

# (persona, split, prompt id): a persona or break-character log holds every prompt once per persona and
# split, so the prompt alone does not identify a response. Logs without persona or split leave them None.
JoinKey = tuple[str | None, str | None, str]


@dataclass(frozen=True)
class LoggedResponse:
    message: str
    response: str
    failed: bool


def _message_text(sample: EvalSample) -> str:
    if isinstance(sample.input, str):
        return sample.input
    users = [m for m in sample.input if isinstance(m, ChatMessageUser)]
    return users[-1].text if users else ""


def _key_text(key: JoinKey) -> str:
    persona, split, prompt_id = key
    return f"persona={persona or '-'}, split={split or '-'}, prompt id={prompt_id}"


def responses_from_log(path: str) -> dict[JoinKey, LoggedResponse]:
    """(persona, split, prompt id) -> the message and final response of one sample of the log.

    The prompt id is the sample's ``prompt_id`` metadata (charbench's persona tasks), else its sample id.
    A key that occurs twice (several epochs, or two samples with the same prompt id) is refused: there is no
    way to tell which response to compare.
    """
    try:
        log = read_eval_log(path)
    except FileNotFoundError as exc:
        raise TaskParameterError(f"log {path} does not exist; pass the path of an .eval or .json log written by inspect eval") from exc
    if not log.samples:
        raise TaskParameterError(f"log {path} has no samples; pass a log written with samples (not a header-only log)")
    out: dict[JoinKey, LoggedResponse] = {}
    seen: Counter[JoinKey] = Counter()
    for s in log.samples:
        meta = s.metadata or {}
        key: JoinKey = (meta.get("persona"), meta.get("split"), str(meta.get("prompt_id", s.id)))
        seen[key] += 1
        response = s.output.completion if s.output else ""
        out[key] = LoggedResponse(_message_text(s), response, failed=bool(s.error) or not response.strip())
    repeated = [k for k, count in seen.items() if count > 1]
    if repeated:
        raise TaskParameterError(
            f"log {path} holds {len(repeated)} key(s) more than once, e.g. {_key_text(repeated[0])} "
            f"({seen[repeated[0]]} samples), so the join would be ambiguous. Compare logs run with one epoch, "
            "whose samples differ in persona, split or prompt id."
        )
    return out


def joined_dataset(log_a: str, log_b: str, constitution: str, join: str = "exact") -> tuple[MemoryDataset, dict]:
    """Pairs of responses with the same (persona, split, prompt id) and the counts of the join.

    Each pair is judged against its own persona's traits; ``constitution`` serves logs without personas.
    """
    a, b = responses_from_log(log_a), responses_from_log(log_b)
    only_a, only_b = sorted(set(a) - set(b), key=str), sorted(set(b) - set(a), key=str)
    shared = sorted(set(a) & set(b), key=str)
    if not shared:
        example_a = _key_text(next(iter(a))) if a else "none"
        example_b = _key_text(next(iter(b))) if b else "none"
        raise TaskParameterError(
            f"logs {log_a} and {log_b} share no (persona, split, prompt id); e.g. A has {example_a}, B has "
            f"{example_b}. Compare runs made on the same prompts, personas and splits."
        )
    if join == "exact" and (only_a or only_b):
        first = (only_a or only_b)[0]
        raise TaskParameterError(
            f"logs {log_a} and {log_b} do not hold the same samples: {len(only_a)} only in A, {len(only_b)} only "
            f"in B (e.g. {_key_text(first)}). Run both on the same prompts, or pass -T join=inner to compare "
            f"the {len(shared)} shared ones (the unmatched counts are kept in the task metadata)."
        )
    samples, traits_for = [], {}
    for i, key in enumerate(shared):
        ra, rb = a[key], b[key]
        if ra.message != rb.message:
            raise TaskParameterError(
                f"logs {log_a} and {log_b} show different messages for {_key_text(key)} "
                f"({ra.message[:60]!r} vs {rb.message[:60]!r}); they were not run on the same prompt set."
            )
        persona, split, prompt_id = key
        if persona not in traits_for:
            traits_for[persona] = load_constitution(persona or constitution).traits_text
        missing = " and ".join(side for side, r in (("log_a", ra), ("log_b", rb)) if r.failed)
        samples.append(Sample(
            id=f"j{i:04d}", input=ra.message,
            metadata={"prompt": ra.message, "response_a": ra.response, "response_b": rb.response,
                      "traits": traits_for[persona], "persona": persona, "split": split, "prompt_id": prompt_id,
                      # the independent unit: one prompt, whichever personas and splits it was shown with
                      "cluster": prompt_id, "missing_response": missing or None},
        ))
    counts = {"matched": len(shared), "only_a": len(only_a), "only_b": len(only_b),
              "missing_response": sum(1 for s in samples if (s.metadata or {}).get("missing_response"))}
    if only_a or only_b:
        logger.warning("coherence join: %d pairs matched, %d samples only in %s, %d only in %s (not compared)",
                       len(shared), len(only_a), log_a, len(only_b), log_b)
    return MemoryDataset(samples, name="coherence_from_logs"), counts


@solver
def generate_pair(config: GenerateConfig) -> Solver:
    """Response A from the model under test, B from the ``opponent`` role, on the same message."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if "response_a" in state.metadata:
            return state
        state = await generate(state)
        opponent = get_model(role="opponent", required=True)
        other = await opponent.generate(state.messages[:-1], config=config)
        state.metadata["response_a"] = state.output.completion
        state.metadata["response_b"] = other.completion
        state.metadata["model_b"] = str(opponent)
        return state

    return solve


@task
def coherence(
    constitution: str = "sarcastic",
    judges: list[str] | str = "judge",
    judge_prompt: str = "paper",
    n_prompts: int = 8,
    prompt_set: str = "offline",
    prompt_revision: str | None = None,
    log_a: str | None = None,
    log_b: str | None = None,
    join: str = "exact",
    max_tokens: int = 96,
    temperature: float = 0.7,
    seed: int = 0,
    judge_max_tokens: int = 4096,
    judge_method: str = "generate",
    priority: str | None = None,
) -> Task:
    """Pairwise, order-swapped comparison of variant A (model under test or ``log_a``) against B.

    Args:
        constitution: whose traits the judges check character alignment against (for logs whose samples
            carry a persona, each sample's own persona is used instead).
        judges: model roles acting as judges (``judge,judge2,judge3``); one row of figures each, plus kappa.
        judge_prompt: ``paper`` (appendix D, word for word), ``coherence`` or ``traits`` (charbench's
            wordings, coherence first or trait alignment first).
        log_a, log_b: compare two existing runs instead of generating, joined on (persona, split, prompt id).
        join: ``exact`` (the logs must hold the same samples) or ``inner`` (compare the shared ones).
        prompt_revision: commit of a Hub prompt set (``prompt_set=wildchat`` or ``pure-dove``), required for those.
        judge_max_tokens: the judges' token budget; a reply that reaches it is counted as truncated.
        judge_method: ``generate`` (the paper's: the judge reasons, then answers in a tag) or ``logprob`` (the
            verdict is the allowed answer with the highest log-probability after an ``<answer>`` prefill;
            needs charbench/ judges, ignores ``judge_max_tokens``).
        priority: replaced by ``judge_prompt``; passing it is an error that says so.
    """
    if priority is not None:
        raise TaskParameterError(f"priority={priority!r} was replaced by judge_prompt: pass -T judge_prompt="
                                 f"{priority if priority in JUDGE_PROMPTS else 'paper'} (choices {JUDGE_PROMPTS}).")
    judge_template(judge_prompt)  # an unknown name fails here, before any generation
    check_judge_method(judge_method)
    if join not in JOINS:
        raise TaskParameterError(f"join={join!r}; choose 'exact' (the logs must match) or 'inner' (shared samples only).")
    roles = [r.strip() for r in judges.split(",")] if isinstance(judges, str) else list(judges)
    if (log_a is None) != (log_b is None):
        raise TaskParameterError("pass both log_a and log_b to compare two runs, or neither to generate with --model and the opponent role")
    metadata = {"constitution": constitution, "judges": roles, "judge_prompt": judge_prompt,
                "judge_method": judge_method, **contract_metadata(CONTRACT)}
    if log_a and log_b:
        dataset, counts = joined_dataset(log_a, log_b, constitution, join)
        metadata["join"] = counts
    else:
        traits = load_constitution(constitution).traits_text
        dataset = MemoryDataset([
            Sample(id=p.id, input=p.text, metadata={"prompt": p.text, "traits": traits, "cluster": p.id})
            for p in load_prompt_set(prompt_set, split="eval", limit=n_prompts, revision=prompt_revision)
        ], name="coherence")
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=0.95, seed=seed)
    return Task(
        dataset=dataset,
        solver=generate_pair(config),
        scorer=pairwise_coherence(roles, judge_prompt, judge_max_tokens, judge_method),
        config=config,
        version="2-A",
        metadata=metadata,
    )
