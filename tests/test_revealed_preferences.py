from collections import Counter

import pytest
from inspect_ai import eval as inspect_eval

from charbench.errors import TaskParameterError
from charbench.tasks.revealed_preferences.dataset import balanced_pairs, normalise_traits
from charbench.tasks.revealed_preferences.task import revealed_preferences
from helpers import mock_model

TRAITS = ["warm", "blunt", "formal", "playful", "calm"]


def test_pairs_are_seeded_balanced_and_use_both_orders():
    pairs = balanced_pairs(TRAITS, 200, seed=3)
    assert pairs == balanced_pairs(TRAITS, 200, seed=3) != balanced_pairs(TRAITS, 200, seed=4)
    counts = Counter(t for p in pairs for t in p)
    assert max(counts.values()) - min(counts.values()) <= 2
    assert all(a != b for a, b in pairs)
    orders = Counter((a, b) < (b, a) for a, b in pairs)
    assert orders[True] > 60 and orders[False] > 60


@pytest.mark.parametrize("kwargs, message", [
    ({"condition": "love"}, "choose one of"),
    ({"traits": ["warm", "warm", "cold"]}, "duplicates"),
    ({"traits": ["warm"]}, "at least two"),
    ({"n_matches": 0}, "positive integer"),
])
def test_bad_parameters_say_what_is_allowed(kwargs, message):
    with pytest.raises(TaskParameterError, match=message):
        revealed_preferences(**{"traits": TRAITS, **kwargs})


def test_single_trait_string_from_cli_is_normalised():
    assert normalise_traits("warm,cold") == ["warm", "cold"]


def test_generative_judge_protocol_counts_invalid_and_ranks_winner():
    # The judge always names 'warm' when offered it, says nonsense otherwise: warm must top the ranking,
    # and every match without warm is an invalid judgement, counted not dropped.
    def judge(prompt):
        return "reasoning...\n<answer>warm</answer>" if "warm" in prompt.split("candidate traits")[-1] else "no idea"

    task = revealed_preferences(traits=TRAITS, n_matches=30, judge_method="generative")
    log = inspect_eval(task, model=mock_model("A reply."), model_roles={"judge": mock_model(judge)}, display="none")[0]
    assert log.status == "success"
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    with_warm = sum(1 for s in log.samples if "warm" in (s.metadata["trait_1"], s.metadata["trait_2"]))
    assert m["n_valid"] == with_warm and m["invalid"] == 30 - with_warm
    assert m["elo/warm"] == max(v for k, v in m.items() if k.startswith("elo/"))


def test_judge_validation_counts_recovered_traits():
    from charbench.tasks.revealed_preferences.task import trait_judge_validation

    # The judge names whichever candidate the response itself contains; the response states the forced trait.
    def respond(prompt):
        return "I am " + prompt.split("be ")[1].split(".")[0]

    def judge(prompt):
        response = prompt.split("<assistant_response>")[1].split("</assistant_response>")[0]
        traits = prompt.split("candidate traits are: ")[1].split(".")[0].split(" and ")
        return "<answer>" + next((t for t in traits if t in response), "neither") + "</answer>"

    task = trait_judge_validation(n_samples=12, traits=TRAITS, judge_method="generative")
    log = inspect_eval(task, model=mock_model(respond), model_roles={"judge": mock_model(judge)}, display="none")[0]
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert m["accuracy"] == 1.0 and m["n"] == 12 and m["invalid"] == 0
