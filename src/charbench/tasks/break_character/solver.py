from __future__ import annotations

from inspect_ai.model import ChatMessageAssistant, GenerateConfig
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.tasks.personas import persona_messages, persona_model


@solver
def persona_generate(method: str, steer_coef: float, config: GenerateConfig) -> Solver:
    """Generate the sample's response as its persona under ``method``.

    ``config`` is passed on every call: a model fetched inside a solver (a steered variant, a persona role)
    does not inherit the task's generation settings, and without them a degenerate steered response runs
    to the provider's default token limit.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = state.metadata["persona"]
        model = persona_model(persona, method, steer_coef)
        output = await model.generate(persona_messages(persona, method, state.messages), config=config)
        state.output = output
        state.messages.append(ChatMessageAssistant(content=output.completion, model=output.model))
        return state

    return solve
