from __future__ import annotations

from inspect_ai.model import ChatMessageAssistant
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.tasks.personas import persona_messages, persona_model


@solver
def persona_generate(method: str, steer_coef: float) -> Solver:
    """Generate the sample's response as its persona under ``method``."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = state.metadata["persona"]
        model = persona_model(persona, method, steer_coef)
        output = await model.generate(persona_messages(persona, method, state.messages))
        state.output = output
        state.messages.append(ChatMessageAssistant(content=output.completion, model=output.model))
        return state

    return solve
