"""Solvers: write generated scenarios (``generator`` role), and elicit a forced choice by generation or likelihood."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import anyio
from inspect_ai.model import GenerateConfig, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.constitutions import Constitution
from charbench.paper import persona_system_prompt
from charbench.tasks.value_conflict.choice import check_choice_method, option_logprobs, summarise
from charbench.tasks.value_conflict.dataset import Scenario, generator_prompt, parse_generated, scenario_messages


@solver
def generated_scenario(constitution: Constitution, mode: str, temperature: float | None = None,
                       max_tokens: int = 1024) -> Solver:
    """For placeholder samples, get the scenario from the ``generator`` role and write the sample's prompt.

    The samples of one generated scenario (3 framings x 2 orders) share one generator reply: the first sample to
    need it asks, the others wait on the scenario's lock and reuse the reply. The replies live on this solver
    (one per task), so two tasks in one process never see each other's scenarios.
    """
    config = GenerateConfig(temperature=temperature, max_tokens=max_tokens)
    replies: dict[str, tuple[Scenario | None, str]] = {}
    locks: dict[str, anyio.Lock] = {}

    async def shared_generation(entry: dict) -> tuple[Scenario | None, str]:
        key = entry["id"]
        async with locks.setdefault(key, anyio.Lock()):
            if key not in replies:
                generator = get_model(role="generator", required=True)
                output = await generator.generate(generator_prompt(constitution, entry), config=config)
                replies[key] = (parse_generated(output.completion, entry), output.completion)
        return replies[key]

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if not state.metadata.get("generated"):
            return state
        entry = state.metadata["generation"]
        scenario, reply = await shared_generation(entry)
        state.metadata["generator_reply"] = reply[-4000:]
        if scenario is None:
            state.metadata["generation_failed"] = True
            state.completed = True
            return state
        state.metadata["scenario"] = asdict(scenario)
        system = persona_system_prompt(constitution) if state.metadata.get("include_prompted") else None
        order = state.metadata["order"] if mode == "forced" else None
        state.messages = scenario_messages(scenario, state.metadata["framing"], order, system)
        return state

    return solve


async def likelihood_answer(state: TaskState, options: list[str]) -> dict[str, Any]:
    """Score ``options`` after the prompt and ``<answer>``; set the output to the argmax as an answer tag."""
    model = get_model()
    logprobs = await option_logprobs(model, state.messages, options)
    summary = summarise(logprobs)
    content = f"<answer>{summary['choice']}</answer>" if summary["choice"] is not None else "(tie between options)"
    state.output = ModelOutput.from_content(model=str(model), content=content)
    state.messages.append(state.output.message)
    detail = {"logprobs": logprobs, **summary}
    state.metadata["likelihood"] = detail
    return detail


@solver
def forced_choice(choice_method: str = "generate") -> Solver:
    """Answer the forced-choice prompt: generate (parsed later) or pick "1"/"2" by log-likelihood."""
    check_choice_method(choice_method)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if state.metadata.get("generation_failed"):
            return state
        if choice_method == "generate":
            return await generate(state)
        await likelihood_answer(state, ["1", "2"])
        return state

    return solve


@solver
def free_response() -> Solver:
    """Let the model answer the user's message freely (the judge labels the approach)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if state.metadata.get("generation_failed"):
            return state
        return await generate(state)

    return solve
