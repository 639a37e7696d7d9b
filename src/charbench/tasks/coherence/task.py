"""``charbench/coherence`` (paper section 3.3, appendix D): which variant replies more coherently, in character."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.log import read_eval_log
from inspect_ai.model import GenerateConfig, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.judges.pairwise import PRIORITIES
from charbench.prompts import load_prompt_set
from charbench.tasks.coherence.scorer import pairwise_coherence


def responses_from_log(path: str) -> dict[str, str]:
    """Prompt text -> final response, for joining two runs' logs on the prompt."""
    log = read_eval_log(path)
    if not log.samples:
        raise TaskParameterError(f"log {path} has no samples; pass a log written with samples")
    out = {}
    for s in log.samples:
        prompt = (s.metadata or {}).get("prompt") or (s.input if isinstance(s.input, str) else s.messages[0].text)
        out[prompt] = s.output.completion if s.output else ""
    return out


def joined_dataset(log_a: str, log_b: str, traits: str) -> MemoryDataset:
    a, b = responses_from_log(log_a), responses_from_log(log_b)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise TaskParameterError(f"logs {log_a} and {log_b} share no prompt; compare runs made on the same prompts")
    return MemoryDataset([
        Sample(id=f"j{i:04d}", input=p, metadata={"prompt": p, "response_a": a[p], "response_b": b[p], "traits": traits})
        for i, p in enumerate(shared)
    ], name="coherence_from_logs")


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
    priority: str = "coherence",
    n_prompts: int = 8,
    prompt_set: str = "offline",
    log_a: str | None = None,
    log_b: str | None = None,
    max_tokens: int = 96,
    temperature: float = 0.7,
    seed: int = 0,
) -> Task:
    """Pairwise, order-swapped comparison of variant A (model under test or ``log_a``) against B.

    Args:
        constitution: whose traits the judges check character alignment against.
        judges: model roles acting as judges (``judge,judge2,judge3``); one row of figures each, plus kappa.
        priority: ``coherence`` (the paper's appendix D) or ``traits`` (trait alignment first).
        log_a, log_b: compare two existing runs instead of generating (joined on the prompt).
    """
    if priority not in PRIORITIES:
        raise TaskParameterError(f"priority={priority!r}; choose one of {PRIORITIES}.")
    roles = [r.strip() for r in judges.split(",")] if isinstance(judges, str) else list(judges)
    traits = load_constitution(constitution).traits_text
    if (log_a is None) != (log_b is None):
        raise TaskParameterError("pass both log_a and log_b to compare two runs, or neither to generate with --model and the opponent role")
    if log_a and log_b:
        dataset = joined_dataset(log_a, log_b, traits)
    else:
        dataset = MemoryDataset([
            Sample(id=p.id, input=p.text, metadata={"prompt": p.text, "traits": traits})
            for p in load_prompt_set(prompt_set, split="eval", limit=n_prompts)
        ], name="coherence")
    config = GenerateConfig(max_tokens=max_tokens, temperature=temperature, top_p=0.95, seed=seed)
    return Task(
        dataset=dataset,
        solver=generate_pair(config),
        scorer=pairwise_coherence(roles, priority),
        config=config,
        version="1-A",
        metadata={"constitution": constitution, "judges": roles, "priority": priority},
    )
