"""The null-control response: the same prompt answered without any trait instruction."""

from __future__ import annotations

from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, solver


@solver
def null_response(system_prefix: str | None = None) -> Solver:
    """Generate a reply to the sample's user message with no trait choice offered; keep it in metadata.

    The judge later compares this reply against the same two traits as the real match. The reply carries no
    choice between them, so what the judge says about it measures the judge's own leaning (and the model's
    unprompted manner), which the prior-corrected rating subtracts. A persona prefix is kept so that a
    prompted persona's null is that persona writing freely, not the bare model.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        original = list(state.messages)
        state.messages = ([ChatMessageSystem(content=system_prefix)] if system_prefix else []) + [
            m for m in original if m.role != "system"]
        state = await generate(state)
        state.metadata["null_response"] = state.output.completion
        state.metadata["null_stop_reason"] = state.output.stop_reason
        state.messages = original
        return state

    return solve
