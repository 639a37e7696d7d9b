"""coherence_judge_validation: positive controls must be won by the intact reply, the null control is ~0.5."""

import random

from helpers import FakeLogprobAPI, mock_model  # noqa: F401  (FakeLogprobAPI registers the fakelogprob/ provider)
from inspect_ai import eval as inspect_eval
from inspect_ai.model import get_model

from charbench.judges.pairwise import ANSWER_OPENER
from charbench.tasks.coherence.validation import (
    coherence_judge_validation,
    shuffled_sentences,
    shuffled_words,
    validation_report,
)


def reply_for(prompt):
    """A fluent three-sentence reply that names its prompt, so a reply to another prompt differs from it."""
    return f"You asked: {prompt.strip()[:30]} The moon pulls the sea. The sun helps a little."


def slot_of_intact_reply(context):
    """'1' or '2': where the intact reply to the judged message sits in the judge prompt."""
    prompt = context.rsplit("\n" + ANSWER_OPENER, 1)[0]
    message = prompt.split("<message>\n")[1].split("\n</message>")[0]
    first = prompt.split("<response_1>\n")[1].split("\n</response_1>")[0]
    return "1" if first == reply_for(message) else "2"


def run(judge, n=3, **kw):
    log = inspect_eval(coherence_judge_validation(n_prompts=n, **kw), model=mock_model(reply_for),
                       model_roles={"judge": judge}, display="none")[0]
    assert log.status == "success", log.error
    return {k: v.value for k, v in log.results.scores[0].metrics.items()}


def test_a_judge_that_prefers_the_intact_reply_passes_every_positive_control():
    def score(context, answer):
        return -0.1 if answer == slot_of_intact_reply(context) + "</answer>" else -4.0

    m = run(get_model("fakelogprob/judge", score=score, memoize=False), n=3)
    for condition in ("word_shuffle", "sentence_shuffle", "unrelated"):
        assert m[f"{condition}/accuracy"] == 1.0 and m[f"{condition}/n"] == 3, condition
        assert m[f"{condition}/accuracy_low"] > 0.4 and m[f"{condition}/order_averaged_accuracy"] == 1.0
    # the null control compares the reply with an identical one: the judge cannot tell which is which
    assert m["null/n"] == 3 and m["null/inconsistent_rate"] == 1.0 and m["position_1_share"] < 1.0


def test_a_position_biased_judge_is_at_zero_accuracy_and_shows_its_bias():
    m = run(get_model("fakelogprob/judge", score=lambda c, a: -0.1 if a == "1</answer>" else -3.0, memoize=False))
    assert m["word_shuffle/accuracy"] == 0.0 and m["word_shuffle/inconsistent_rate"] == 1.0
    assert m["position_1_share"] == 1.0 and m["n_position_verdicts"] == 3 * 4 * 2


def test_the_generating_judge_is_validated_the_same_way():
    m = run(mock_model("<answer>INVALID</answer>"), n=2, judge_method="generate")
    assert m["word_shuffle/invalid_rate"] == 1.0 and m["word_shuffle/accuracy"] == 0.0


def test_shuffles_always_change_the_text_and_skip_what_cannot_change():
    rng = random.Random(0)
    for _ in range(20):
        assert shuffled_words("one two three", rng) != "one two three"
        assert shuffled_sentences(reply_for("Why?"), rng) != reply_for("Why?")
    assert shuffled_words("same same", rng) is None and shuffled_sentences("Only one sentence here.", rng) is None


def test_not_applicable_pairs_are_counted_outside_n():
    judged = {"outcome": "a", "positions": ["1", "2"]}
    per_sample = [{"word_shuffle": judged, "sentence_shuffle": {"outcome": "not_applicable"}, "unrelated": judged,
                   "null": {"outcome": "b", "positions": ["2", "1"]}}] * 2
    report = validation_report(per_sample)
    assert report["sentence_shuffle/n"] == 0 and report["sentence_shuffle/not_applicable"] == 2
    assert report["word_shuffle/accuracy"] == 1.0 and report["null/win_rate"] == 0.0
