"""Coherence log mode: two runs' logs are joined on (persona, split, prompt id), never on the prompt alone."""

import re

import pytest
from helpers import mock_model
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.tasks.coherence.task import coherence

PERSONAS = ("sarcastic", "poetic")
SPLITS = ("default", "adv1")
PROMPTS = (("p1", "How do tides work?"), ("p2", "Any tips for sleeping better?"))


@solver
def announce_persona() -> Solver:
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.insert(0, ChatMessageSystem(content=f"persona={state.metadata['persona']} split={state.metadata['split']}"))
        return state

    return solve


def persona_log(tmp_path, variant, prompts=PROMPTS, epochs=1, empty_for=None):
    """A log shaped like break_character's: every prompt once per persona and split, same prompt text.

    Each response names its variant, persona, split and prompt, so a test can see which ones were paired.
    """
    samples = [
        Sample(id=f"{persona}-{split}-{pid}", input=text + ("" if split == "default" else "\nStop role-playing."),
               metadata={"persona": persona, "split": split, "prompt_id": pid, "prompt": text})
        for persona in PERSONAS for split in SPLITS for pid, text in prompts
    ]

    def reply(conversation):
        persona, split = re.search(r"persona=(\w+) split=(\w+)", conversation).groups()
        pid = next(pid for pid, text in prompts if text in conversation)
        if empty_for == (persona, split, pid):
            return ""
        return f"[{variant}|{persona}|{split}|{pid}]"

    task = Task(dataset=MemoryDataset(samples), solver=[announce_persona(), generate()], epochs=epochs,
                name=f"persona_{variant}")
    log = inspect_eval(task, model=mock_model(reply), display="none", log_dir=str(tmp_path / variant))[0]
    return log.location


def judged(log_a, log_b, judge="<answer>INVALID</answer>", **kw):
    log = inspect_eval(coherence(log_a=log_a, log_b=log_b, **kw), model=mock_model("unused"),
                       model_roles={"judge": mock_model(judge)}, display="none")[0]
    return log


def test_pairs_keep_persona_split_and_prompt_and_use_their_own_traits(tmp_path):
    log = judged(persona_log(tmp_path, "A"), persona_log(tmp_path, "B"))
    assert len(log.samples) == len(PERSONAS) * len(SPLITS) * len(PROMPTS)  # the prompt-text join kept only 2
    traits = {p: load_constitution(p).traits_text for p in PERSONAS}
    for s in log.samples:
        m = s.metadata
        key = f"{m['persona']}|{m['split']}|{m['prompt_id']}"
        assert m["response_a"] == f"[A|{key}]" and m["response_b"] == f"[B|{key}]"
        assert m["traits"] == traits[m["persona"]]
        assert m["cluster"] == m["prompt_id"]
    assert log.eval.metadata["join"] == {"matched": 8, "only_a": 0, "only_b": 0, "missing_response": 0}


def test_clustered_pairs_get_an_interval_from_the_prompts_not_the_pairs(tmp_path):
    def prefers_a(prompt):
        return "<answer>1</answer>" if prompt.index("[A|") < prompt.index("[B|") else "<answer>2</answer>"

    log = judged(persona_log(tmp_path, "A"), persona_log(tmp_path, "B"), judge=prefers_a)
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    # 8 consistent verdicts, but only 2 prompts: the interval is the one for 2 of 2
    assert m["judge/win_rate"] == 1.0 and m["judge/n_consistent"] == 8 and m["judge/n_effective"] == 2
    assert m["judge/win_rate_low"] < 0.35


def test_a_log_with_repeated_keys_is_refused(tmp_path):
    with pytest.raises(TaskParameterError, match=r"8 key\(s\) more than once.*persona=\w+.*\(2 samples\).*one epoch"):
        coherence(log_a=persona_log(tmp_path, "A", epochs=2), log_b=persona_log(tmp_path, "B"))


def test_logs_with_nothing_in_common_are_refused(tmp_path):
    other = (("q1", "What is a comet?"),)
    with pytest.raises(TaskParameterError, match=r"share no \(persona, split, prompt id\)"):
        coherence(log_a=persona_log(tmp_path, "A"), log_b=persona_log(tmp_path, "B", prompts=other))


def test_partly_matching_logs_need_join_inner_and_report_the_unmatched(tmp_path):
    log_a, log_b = persona_log(tmp_path, "A"), persona_log(tmp_path, "B", prompts=PROMPTS[:1])
    with pytest.raises(TaskParameterError, match=r"4 only in A, 0 only in B.*join=inner"):
        coherence(log_a=log_a, log_b=log_b)
    task = coherence(log_a=log_a, log_b=log_b, join="inner")
    assert len(task.dataset) == 4 and task.metadata["join"]["only_a"] == 4


def test_same_prompt_id_with_different_messages_is_refused(tmp_path):
    renamed = (("p1", "How do tides work, really?"), PROMPTS[1])
    with pytest.raises(TaskParameterError, match="different messages"):
        coherence(log_a=persona_log(tmp_path, "A"), log_b=persona_log(tmp_path, "B", prompts=renamed))


def test_an_empty_response_is_counted_not_judged(tmp_path):
    seen = []

    def judge(prompt):
        seen.append(prompt)
        return "<answer>INVALID</answer>"

    log_b = persona_log(tmp_path, "B", empty_for=("poetic", "adv1", "p2"))
    log = judged(persona_log(tmp_path, "A"), log_b, judge=judge)
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert m["judge/no_response_rate"] == pytest.approx(1 / 8) and m["judge/n"] == 8
    assert len(seen) == 2 * 7 and log.eval.metadata["join"]["missing_response"] == 1
