from __future__ import annotations

from inspect_ai.model import ChatMessageAssistant, GenerateConfig
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.tasks.personas import persona_messages, persona_model, resolve_variant


@solver
def persona_generate(method: str | None, config: GenerateConfig) -> Solver:
    """Generate the sample's response as its persona, under the variant the model under test states.

    ``config`` is passed on every call: a model fetched inside a solver (a steered variant, a persona role)
    does not inherit the task's generation settings, and without them a degenerate steered response runs
    to the provider's default token limit.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        persona = state.metadata["persona"]
        variant = resolve_variant(method)
        # Recorded per sample so a log read on its own says how each response was produced.
        state.metadata["method"] = variant.method
        model = persona_model(persona, variant)
        output = await model.generate(persona_messages(persona, variant, state.messages), config=config)
        state.output = output
        state.messages.append(ChatMessageAssistant(content=output.completion, model=output.model))
        return state

    return solve
