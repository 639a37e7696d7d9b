"""The training proof's measures (charbench.trainers.proof) and the held-out pairs they rest on."""

import json

import numpy as np
import pytest
from test_distill import Counting, settings, small_config, tiny  # noqa: F401  (tiny is a fixture)

from charbench.errors import TaskParameterError
from charbench.trainers.distill import HELDOUT_NAME, PAIRS_NAME, distill
from charbench.trainers.proof import (
    ProofSettings,
    classifier_prompt_sets,
    dpo_margins,
    margin_estimates,
    pair_logprobs,
    persona_rates,
    settings_from,
    trait_shift,
)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_held_out_pairs_are_never_trained_on(tiny, tmp_path):  # noqa: F811
    card = distill(settings(Counting(), holdout=4), tmp_path / "run", small_config(), checkpoint=str(tiny),
                   train=False)
    trained, held = _rows(tmp_path / "run" / PAIRS_NAME), _rows(tmp_path / "run" / HELDOUT_NAME)
    assert len(held) == 4 and len(trained) == card["data"]["filters"]["kept"] - 4
    assert not {p["prompt"] for p in trained} & {p["prompt"] for p in held}
    assert card["data"]["heldout"]["pairs"] == 4 and card["data"]["trained_pairs"] == len(trained)
    # the same seed holds out the same pairs
    again = distill(settings(Counting(), holdout=4), tmp_path / "again", small_config(), checkpoint=str(tiny),
                    train=False)
    assert again["data"]["heldout"]["sha256"] == card["data"]["heldout"]["sha256"]


def test_a_holdout_that_leaves_too_few_training_pairs_is_refused_and_writes_nothing(tiny, tmp_path):  # noqa: F811
    with pytest.raises(TaskParameterError, match="held out .*--holdout"):
        distill(settings(Counting(), holdout=10, min_pairs=4), tmp_path / "run", small_config(), checkpoint=str(tiny))
    assert not (tmp_path / "run").exists()
    with pytest.raises(TaskParameterError, match="--holdout -1"):
        distill(settings(Counting(), holdout=-1), tmp_path / "neg", small_config(), checkpoint=str(tiny))


def test_a_model_against_itself_has_zero_margins_and_margins_follow_the_formula(tiny):  # noqa: F811
    pairs = [{"prompt": "What is rain?", "chosen": "Water, obviously. Falling.", "rejected": "Rain is water."},
             {"prompt": "Name a colour.", "chosen": "Blue, how original.", "rejected": "Blue."}]
    scores = pair_logprobs(str(tiny), pairs)
    assert all(np.isfinite(c) and np.isfinite(r) and c < 0 and r < 0 for c, r in scores)
    assert dpo_margins(scores, scores, 0.1) == [0.0, 0.0]
    # chosen up by 2 nats, rejected down by 1 under the policy: margin beta * 3
    moved = [(c + 2.0, r - 1.0) for c, r in scores]
    assert dpo_margins(moved, scores, 0.1) == pytest.approx([0.3, 0.3])
    estimates = margin_estimates([0.3, -0.1, 0.2, 0.0], n_boot=200, seed=0)
    assert estimates["accuracy"]["value"] == 0.5 and estimates["ties"] == 1
    assert estimates["mean_margin"]["value"] == pytest.approx(0.1)
    assert estimates["accuracy"]["low"] <= 0.5 <= estimates["accuracy"]["high"]


def test_classifier_prompt_sets_are_disjoint_eval_prompts_and_too_many_is_refused():
    from charbench.prompts import load_prompt_set

    a, b = classifier_prompt_sets(20, 10, seed=3)
    eval_ids = {p.id for p in load_prompt_set("offline", split="eval")}
    assert len(a) == 20 and len(b) == 10 and not {p["id"] for p in a} & {p["id"] for p in b}
    assert {p["id"] for p in a + b} <= eval_ids
    assert classifier_prompt_sets(20, 10, seed=3) == (a, b)
    with pytest.raises(TaskParameterError, match="offline eval split"):
        classifier_prompt_sets(len(eval_ids), 1, seed=0)


def _replies(ids, persona_share, seed):
    rng = np.random.default_rng(seed)
    return {i: ("Oh brilliant, what a shock, truly groundbreaking stuff." if rng.random() < persona_share
                else "Here is a clear answer with the steps you need.") + f" ({i})" for i in ids}


def test_persona_rates_separate_prompted_from_base_and_place_a_half_persona_variant_between():
    a, b = [f"a{i}" for i in range(30)], [f"b{i}" for i in range(40)]
    train = {"base": _replies(a, 0.0, 1), "prompted": _replies(a, 1.0, 2)}
    evaluate = {"base": _replies(b, 0.0, 3), "prompted": _replies(b, 1.0, 4), "dpo": _replies(b, 0.5, 5)}
    del evaluate["dpo"]["b0"]  # a reply missing for one variant leaves that prompt out of every comparison
    out = persona_rates(train, evaluate, n_boot=300, seed=0)
    assert out["prompts"] == {"train": 30, "evaluate": 39} and out["missing"]["dpo"] == 0
    assert out["missing"]["base"] == 1
    assert out["classifier_accuracy"]["value"] == 1.0
    assert out["in_persona_rate"]["base"]["value"] == 0.0 and out["in_persona_rate"]["prompted"]["value"] == 1.0
    dpo = out["in_persona_rate"]["dpo"]
    assert 0.2 < dpo["value"] < 0.8 and dpo["low"] < dpo["value"] < dpo["high"]
    assert out["minus_base"]["dpo"]["value"] == pytest.approx(dpo["value"])


def test_trait_shift_finds_persona_traits_that_moved(monkeypatch):
    from charbench.tasks.revealed_preferences import comparison

    rng = np.random.default_rng(0)
    names = [f"t{i}" for i in range(8)]

    def matches(strengths, n):
        out = []
        for _ in range(n):
            i, j = rng.choice(8, 2, replace=False)
            win = rng.random() < 1 / (1 + np.exp(-(strengths[i] - strengths[j])))
            out.append((names[i], names[j]) if win else (names[j], names[i]))
        return names, out

    base = np.zeros(8)
    moved = base.copy()
    moved[:2] += 1.5
    runs = {"a": matches(base, 3000), "b": matches(moved, 3000)}
    monkeypatch.setattr(comparison, "matches_from_log", lambda path: (*runs[path], 2))
    shift = trait_shift("a", "b", ["t0", "t1"], n_boot=100, seed=0)
    mean = shift["persona_traits_mean_delta"]
    assert mean["low"] > 0 and mean["value"] > 100  # Elo points
    unmoved = trait_shift("a", "b", ["t5", "t6"], n_boot=100, seed=0)["persona_traits_mean_delta"]
    assert unmoved["high"] < mean["low"]
    assert shift["invalid"] == {"base": 2, "trained": 2}
    with pytest.raises(TaskParameterError, match="persona traits"):
        trait_shift("a", "b", ["not-a-trait"], n_boot=10, seed=0)


def test_proof_settings_refuse_unknown_names_and_the_proof_refuses_unknown_traits(tmp_path):
    from charbench.trainers.proof import training_proof

    assert settings_from({"rp_matches": 8}).rp_matches == 8
    with pytest.raises(TaskParameterError, match="unknown proof setting"):
        settings_from({"rp_match": 8})
    assert settings_from({"learning_rate": 1, "persona_traits": ["sarcastic"]}).persona_traits == ("sarcastic",)
    for bad in ({"rp_matches": "many"}, {"rp_matches": True}, {"constitution": 3}, {"persona_traits": "sarcastic"}):
        with pytest.raises(TaskParameterError, match="expected "):
            settings_from(bad)
    with pytest.raises(TaskParameterError, match="paper's 144"):
        training_proof(ProofSettings(persona_traits=("snarky-ish",)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_refuses_bad_proof_settings_in_one_line_before_any_work(tmp_path, capsys):
    from charbench.cli import main

    for flag, message in (("rp_match=3", "unknown proof setting"), ("rp_matches=lots", "expected int")):
        assert main(["train", "proof", "--out", str(tmp_path / "p"), "--set", flag]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
