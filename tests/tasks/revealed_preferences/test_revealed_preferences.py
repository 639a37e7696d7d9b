from collections import Counter

import pytest
from helpers import mock_model
from inspect_ai import eval as inspect_eval

from charbench.errors import TaskParameterError
from charbench.tasks.revealed_preferences.dataset import balanced_pairs, normalise_traits
from charbench.tasks.revealed_preferences.task import revealed_preferences

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


def _model(reply):
    """A mockllm model answering ``reply(system_text)``: the tests below key on the system prompt only."""
    from helpers import output
    from inspect_ai.model import get_model

    def respond(messages, tools, tool_choice, config):
        return output(reply("\n".join(m.text for m in messages if m.role == "system")))

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


def _biased_judge(prompt):
    # Names "calm" when the response shows it, else "warm" whenever offered (the judge's own leaning), else
    # the first-listed candidate (order is seeded per sample, so that part is a coin flip).
    response = prompt.split("<assistant_response>")[1].split("</assistant_response>")[0]
    first, second = prompt.split("candidate traits are: ")[1].split(".")[0].split(" and ")
    offered = (first, second)
    pick = "calm" if "calm" in offered and "calm" in response.lower() else "warm" if "warm" in offered else first
    return f"<answer>{pick}</answer>"


def _metrics(log):
    return {k: v.value for k, v in log.results.scores[0].metrics.items()}


def test_null_control_measures_a_judge_bias_and_the_correction_removes_it():
    # The model writes the same reply whatever it is asked, so the only spread is the judge's leaning to
    # "warm": the null control shows the same spread, and the prior-corrected rating has none.
    task = revealed_preferences(traits=TRAITS, n_matches=40, judge_method="generative")
    log = inspect_eval(task, model=_model(lambda system: "A reply."), model_roles={"judge": mock_model(_biased_judge)},
                       display="none")[0]
    m = _metrics(log)
    assert m["elo_sd"] > 100 and m["null_elo_sd"] == pytest.approx(m["elo_sd"])
    assert m["elo/warm"] == max(v for k, v in m.items() if k.startswith("elo/"))
    assert m["corrected_elo_sd"] == pytest.approx(0.0, abs=1e-6)
    assert m["corrected_n_valid"] == 40 and m["corrected_invalid"] == 0 and m["null_invalid"] == 0
    assert m["corrected_elo_sd_low"] <= m["corrected_elo_sd"] <= m["corrected_elo_sd_high"]


def test_prior_correction_keeps_a_real_preference():
    # The model shows "calm" whenever it is one of its two options; the judge still leans to "warm".
    # Raw ratings put warm second; after removing the judge's leaning calm stays on top and warm drops.
    def reply(system):
        return "Staying calm about it." if "calm" in system.lower() else "A reply."

    task = revealed_preferences(traits=TRAITS, n_matches=80, judge_method="generative")
    log = inspect_eval(task, model=_model(reply), model_roles={"judge": mock_model(_biased_judge)}, display="none")[0]
    m = _metrics(log)
    raw = {k.split("/")[1]: v for k, v in m.items() if k.startswith("elo/")}
    corrected = {k.split("/")[1]: v for k, v in m.items() if k.startswith("corrected_elo/")}
    assert sorted(raw, key=raw.get)[-2:] == ["warm", "calm"]
    assert max(corrected, key=corrected.get) == "calm"
    assert corrected["warm"] < raw["warm"] - 100
    assert m["null_elo/warm"] == max(v for k, v in m.items() if k.startswith("null_elo/"))


def test_null_control_off_reports_raw_only():
    task = revealed_preferences(traits=TRAITS, n_matches=10, judge_method="generative", null_control=False)
    log = inspect_eval(task, model=_model(lambda s: "A reply."), model_roles={"judge": mock_model(_biased_judge)},
                       display="none")[0]
    m = _metrics(log)
    assert "elo_sd" in m and not any(k.startswith(("null_", "corrected_")) for k in m)


def test_few_matches_are_flagged_beside_the_noise_corrected_spread():
    task = revealed_preferences(traits=TRAITS, n_matches=30, judge_method="generative")
    log = inspect_eval(task, model=_model(lambda s: "A reply."), model_roles={"judge": mock_model(_biased_judge)},
                       display="none")[0]
    m = _metrics(log)
    assert m["appearances_per_trait_min"] in (11, 12)  # 30 matches x 2 sides / 5 traits, balanced to +-1
    assert m["few_matches_warning"] == 1.0
    assert 0 <= m["elo_sd_nc"] <= m["elo_sd"]
    assert m["elo_sd_nc_low"] <= m["elo_sd_nc"] <= m["elo_sd_nc_high"]


def test_generative_judge_runs_at_paper_temperature_and_truncated_replies_are_invalid():
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    seen = []

    def respond(messages, tools, tool_choice, config):
        seen.append(config)
        # A reasoning judge cut off mid-thought: the tag it quoted must not be read as its verdict.
        out = ModelOutput.from_content(model="mockllm/model", content="Maybe <answer>warm</answer>? Let me think",
                                       stop_reason="max_tokens")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out

    judge = get_model("mockllm/model", custom_outputs=respond, memoize=False)
    task = revealed_preferences(traits=TRAITS, n_matches=10, judge_method="generative")
    log = inspect_eval(task, model=_model(lambda s: "A reply."), model_roles={"judge": judge}, display="none")[0]
    m = _metrics(log)
    assert m["n_valid"] == 0 and m["invalid"] == 10 and m["truncated"] == 10
    assert all(c.temperature == 0.1 and c.top_p == 0.95 and c.max_tokens >= 4096 for c in seen)
    assert {s.scores["trait_choice"].metadata["problem"] for s in log.samples} == {"truncated"}


def _synthetic_matches(strengths, n, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    names = [f"t{i:02d}" for i in range(len(strengths))]
    out = []
    for _ in range(n):
        i, j = rng.choice(len(strengths), 2, replace=False)
        win = rng.random() < 1 / (1 + np.exp(-(strengths[i] - strengths[j])))
        out.append((names[i], names[j]) if win else (names[j], names[i]))
    return names, out


def test_compare_elo_corrects_per_trait_changes_for_multiple_testing(monkeypatch):
    import numpy as np

    from charbench.tasks.revealed_preferences import comparison

    # 40 traits, the same true ratings in both runs except three that move by 2 logits: uncorrected 95%
    # intervals flag some unchanged traits by chance; after Benjamini-Hochberg only real changes remain.
    base = np.random.default_rng(0).normal(0, 0.5, 40)
    moved = base.copy()
    moved[:3] += 2.0
    runs = {"a": _synthetic_matches(base, 6000, 1), "b": _synthetic_matches(moved, 6000, 2)}
    monkeypatch.setattr(comparison, "matches_from_log", lambda path: (*runs[path], 0))
    frame, _draws = comparison.compare_elo_runs("a", "b", n_boot=200)
    flagged = set(frame.loc[frame["q_value"] < comparison.FDR, "trait"])
    assert {"t00", "t01", "t02"} <= flagged
    assert len(flagged - {"t00", "t01", "t02"}) <= 1
    raw = frame[(frame["low"] > 0) | (frame["high"] < 0)]
    assert len(raw) >= len(flagged)  # the correction never adds discoveries
    assert np.all(frame["q_value"] >= frame["p_value"] - 1e-12)


def test_compare_elo_counts_an_unscored_sample_instead_of_crashing(tmp_path):
    from inspect_ai.log import write_eval_log

    from charbench.tasks.revealed_preferences.comparison import matches_from_log

    task = revealed_preferences(traits=TRAITS, n_matches=6, judge_method="generative", null_control=False)
    log = inspect_eval(task, model=_model(lambda s: "A reply."), model_roles={"judge": mock_model(_biased_judge)},
                       display="none")[0]
    log.samples[0].scores = None
    path = str(tmp_path / "one-unscored.eval")
    write_eval_log(log, path)
    _traits, matches, invalid = matches_from_log(path)
    assert invalid >= 1 and len(matches) + invalid == 6


def test_bootstrap_resamples_prompts_not_matches():
    # Two samples on one prompt always move together: with every match on a single prompt, every resample is
    # the whole data set again and the interval has zero width.
    from types import SimpleNamespace

    from charbench.tasks.revealed_preferences.scorer import elo_summary

    def sample(winner, loser, prompt):
        return SimpleNamespace(sample_id=f"{winner}-{loser}-{prompt}",
                               sample_metadata={"trait_1": winner, "trait_2": loser, "prompt_id": prompt},
                               score=SimpleNamespace(metadata={"winner": winner, "loser": loser}))

    matches = [("warm", "calm"), ("calm", "blunt"), ("warm", "blunt"), ("blunt", "warm"), ("calm", "warm")] * 4
    one_prompt = elo_summary([sample(w, l, "p0") for w, l in matches], n_boot=50, n_orderings=0)
    assert one_prompt["elo_sd_low"] == pytest.approx(one_prompt["elo_sd_high"])
    many = elo_summary([sample(w, l, f"p{i}") for i, (w, l) in enumerate(matches)], n_boot=50, n_orderings=0)
    assert many["elo_sd_high"] - many["elo_sd_low"] > 10


def test_a_reply_that_fills_the_budget_is_truncated_even_without_a_stop_reason():
    # The embedded provider reports stop_reason "unknown"; a reply that used every token is still cut off.
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    def respond(messages, tools, tool_choice, config):
        out = ModelOutput.from_content(model="mockllm/model", content="<answer>warm</answer> but", stop_reason="unknown")
        out.usage = ModelUsage(input_tokens=1, output_tokens=config.max_tokens, total_tokens=1 + config.max_tokens)
        return out

    judge = get_model("mockllm/model", custom_outputs=respond, memoize=False)
    task = revealed_preferences(traits=TRAITS, n_matches=6, judge_method="generative", judge_max_tokens=20,
                                null_control=False)
    m = _metrics(inspect_eval(task, model=_model(lambda s: "A reply."), model_roles={"judge": judge}, display="none")[0])
    assert m["truncated"] == 6 and m["n_valid"] == 0
