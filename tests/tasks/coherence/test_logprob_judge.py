"""The log-probability coherence judge: the verdict is the most probable allowed answer after ``<answer>``."""

import anyio
import pytest
from helpers import FakeLogprobAPI, mock_model  # noqa: F401  (FakeLogprobAPI registers the fakelogprob/ provider)
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model

from charbench.errors import TaskParameterError
from charbench.judges.pairwise import ANSWER_OPENER, judge_pair_logprob, logprob_position
from charbench.tasks.coherence.task import coherence


def logprob_judge(score):
    return get_model("fakelogprob/judge", score=score, memoize=False)


def prompt_of(context):
    """The judge prompt inside the fake's rendering (messages joined, then the prefill)."""
    return context.rsplit("\n" + ANSWER_OPENER, 1)[0]


def run(judge, n=4, opponent="B reply"):
    task = coherence(n_prompts=n, judge_method="logprob")
    log = inspect_eval(task, model=mock_model("A reply"), model_roles={"opponent": mock_model(opponent), "judge": judge},
                       display="none")[0]
    assert log.status == "success", log.error
    return log, {k: v.value for k, v in log.results.scores[0].metrics.items()}


def test_a_judge_whose_answer_follows_the_text_gives_a_consistent_win():
    contexts = []

    def score(context, answer):  # the answer naming the slot that holds "A reply" is the likely one
        contexts.append(context)
        prompt = prompt_of(context)
        a_slot = "1" if prompt.index("A reply") < prompt.index("B reply") else "2"
        return -0.1 if answer == f"{a_slot}</answer>" else -3.0

    log, m = run(logprob_judge(score), n=5)
    assert m["judge/win_rate"] == 1.0 and m["judge/n_consistent"] == 5 and m["judge/consistency_rate"] == 1.0
    # the reply is prefilled with the answer opener after the appendix D prompt, in both orders
    assert all(c.endswith(ANSWER_OPENER + "\nassistant:") for c in contexts)
    assert all(prompt_of(c).startswith("I need your help to evaluate the coherence") for c in contexts)
    assert len({prompt_of(c) for c in contexts}) == 10  # 5 pairs x 2 orders
    # the answer log-probs are kept per order for every sample
    first = log.samples[0].scores["pairwise_coherence"].metadata["logprobs"]["judge"]
    assert first[0] == {"1": -0.1, "2": -3.0, "invalid": -3.0} and first[1] == {"1": -3.0, "2": -0.1, "invalid": -3.0}


def test_a_judge_that_always_prefers_position_one_gives_no_consistent_verdict():
    _log, m = run(logprob_judge(lambda context, answer: -0.5 if answer == "1</answer>" else -2.0))
    assert m["judge/n_consistent"] == 0 and m["judge/inconsistent_rate"] == 1.0


def test_invalid_and_ties_are_counted_as_invalid():
    _log, m = run(logprob_judge(lambda context, answer: -0.2 if answer.startswith("INVALID") else -1.0))
    assert m["judge/invalid_rate"] == 1.0 and m["judge/n_consistent"] == 0
    assert logprob_position({"1": -1.0, "2": -1.0, "invalid": -5.0}) == "invalid"
    assert logprob_position({"1": -1.0, "2": -1.5, "invalid": -5.0}) == "1"


def test_a_judge_without_log_probabilities_is_refused_with_the_alternative():
    with pytest.raises(TaskParameterError, match="judge_method=generate"):
        anyio.run(judge_pair_logprob, mock_model("<answer>1</answer>"), "m", "a", "b", "- t")


def test_unknown_judge_method_is_refused_before_any_work():
    with pytest.raises(TaskParameterError, match="choose 'generate'"):
        coherence(judge_method="logits")
