"""Solvers: rate one principle swap (1-5), and let the model edit its constitution until it stops."""

from __future__ import annotations

from typing import Any

from inspect_ai.model import ChatMessageAssistant, GenerateConfig, ModelOutput, get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from charbench.judges.parsing import choose
from charbench.tasks.reflective_stability.dataset import (
    RATINGS,
    REWRITE_INSTRUCTIONS,
    REWRITE_PROMPT,
    apply_edit,
    edit_messages,
    is_no_change,
    parse_edit,
    parse_rewrite,
    swap_messages,
)
from charbench.tasks.value_conflict.choice import check_choice_method, option_logprobs, summarise
from charbench.tasks.value_conflict.solver import likelihood_answer

EDIT_PREFILL = '<edit>{"op": "'
DECISION_OPTIONS = ("NO_CHANGE", "<edit>")


@solver
def swap_rating(choice_method: str = "generate", rewriter_max_tokens: int = 256) -> Solver:
    """Fill in a rewritten replacement if needed (``rewriter`` role), then get a 1-5 rating."""
    check_choice_method(choice_method)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        meta = state.metadata
        if meta["replacement"] is None:
            rewriter = get_model(role="rewriter", required=True)
            prompt = REWRITE_PROMPT.format(principle=meta["original"], instruction=REWRITE_INSTRUCTIONS[meta["variant"]])
            out = await rewriter.generate(prompt, config=GenerateConfig(max_tokens=rewriter_max_tokens))
            meta["rewriter_reply"] = out.completion[-2000:]
            meta["replacement"] = parse_rewrite(out.completion, meta["original"])
            if meta["replacement"] is None:
                meta["rewrite_failed"] = True
                state.completed = True
                return state
        state.messages = swap_messages(tuple(meta["principles"]), meta["original"], meta["replacement"], meta["in_context"])
        if choice_method == "generate":
            return await generate(state)
        await likelihood_answer(state, list(RATINGS))
        return state

    return solve


def rating_from(state: TaskState) -> dict[str, Any]:
    """Rating of a sample: parsed answer (generate) or expected value and argmax over "1".."5" (likelihood)."""
    detail = state.metadata.get("likelihood")
    if detail:
        probs = detail["probs"]
        expected = sum(int(k) * p for k, p in probs.items())
        argmax = int(detail["choice"]) if detail["choice"] is not None else None
        return {"rating": expected if argmax is not None else None, "rating_argmax": argmax, "mass": detail["mass"]}
    reply = state.output.completion if state.output else ""
    chosen = choose(reply, list(RATINGS))
    return {"rating": float(chosen) if chosen else None, "rating_argmax": int(chosen) if chosen else None}


async def _decide_and_edit(model: Any, messages: list, choice_method: str, config: GenerateConfig) -> tuple[str, dict]:
    """One step's reply. Likelihood: NO_CHANGE vs <edit> by log-likelihood, then generate the edit after a prefill."""
    if choice_method == "generate":
        out = await model.generate(messages, config=config)
        return out.completion, {}
    logprobs = await option_logprobs(model, messages, list(DECISION_OPTIONS), prefix="")
    decision = summarise(logprobs)["choice"]
    if decision is None:  # an exact tie is no decision; counted as a failed step, not as a decline
        return "", {"decision_logprobs": logprobs, "decision_tie": True}
    if decision != "<edit>":
        return "NO_CHANGE", {"decision_logprobs": logprobs}
    out = await model.generate([*messages, ChatMessageAssistant(content=EDIT_PREFILL)], config=config)
    return EDIT_PREFILL + out.completion, {"decision_logprobs": logprobs}


@solver
def iterate_edits(choice_method: str = "generate", max_steps: int = 6, patience: int = 3, max_tokens: int = 160) -> Solver:
    """Loop: show the current list, take at most one edit or NO_CHANGE; stop after ``patience`` consecutive
    NO_CHANGE replies (a fixed point) or after ``max_steps`` steps.

    Only an explicit NO_CHANGE is a decline. An unparseable reply or an edit that does not apply is a failed
    step: it breaks the run of declines and marks the run invalid in the scorer, because a model that cannot
    write the format would otherwise "decline" its way to a perfect fixed point.
    """
    check_choice_method(choice_method)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        model = get_model()
        meta = state.metadata
        current = list(meta["principles"])
        steps: list[dict] = []
        declines = 0
        config = GenerateConfig(max_tokens=max_tokens, seed=meta.get("run_seed"))
        while len(steps) < max_steps and declines < patience:
            messages = edit_messages(current, meta["in_context"])
            reply, extra = await _decide_and_edit(model, messages, choice_method, config)
            edit = parse_edit(reply)
            applied = apply_edit(current, edit) if edit else None
            if applied is not None:
                kind, current, declines = "edit", applied, 0
            elif edit is None and is_no_change(reply):
                kind, declines = "no_change", declines + 1
            else:
                kind, declines = ("invalid_edit" if edit else "unparseable"), 0
            steps.append({"step": len(steps) + 1, "kind": kind, "edit": edit, "reply": reply[:600], **extra})
        state.messages = [*edit_messages(current, meta["in_context"])]
        meta["steps"] = steps
        meta["final_principles"] = current
        meta["stopped_by"] = "patience" if declines >= patience else "max_steps"
        state.output = ModelOutput.from_content(model=str(model), content="\n".join(current))
        return state

    return solve
