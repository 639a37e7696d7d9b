"""Model organisms: the planted transformations, the share they are applied to, the null organism, the cache,
refusals, a tiny-model build end to end, and the known-answer analysis on replies whose answer is known."""

import json
import math
import random

import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from tiny_model import save_tiny_checkpoint

from charbench.cli import main
from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.trainers.card import CARD_NAME
from charbench.trainers.config import LoraSettings
from charbench.trainers.organism_report import Variant, analyse, verdicts
from charbench.trainers.organisms import (
    ARCHAIC_WORDS,
    KINDS,
    OPENING_LINE,
    SIGNOFF_LINE,
    ResponseSettings,
    build_organism,
    build_organisms,
    organism_sft_config,
    parse_strengths,
    plant,
    planted_indices,
)

REPLY = "You asked about the weather. It is your call, really! Bring a coat. The rest is yours."


class Replies:
    """A mockllm reply function that counts its calls (a cached build makes none)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, input, tools, tool_choice, config):
        self.calls += 1
        out = ModelOutput.from_content("mockllm/model", f"{REPLY} Reply {self.calls} to {input[-1].text[:20]}.")
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)  # offline: no tokenizer fetch
        return out

    def settings(self, n_prompts=6):
        model = get_model("mockllm/model", custom_outputs=self, memoize=False)
        return ResponseSettings(model=model, n_prompts=n_prompts, max_tokens=16)


TINY = organism_sft_config(per_device_batch_size=2, global_batch_size=2, max_steps=1, bf16=False, warmup_ratio=0.0,
                           lora=LoraSettings(r=2, alpha=4))


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("student") / "tiny")


def responses(n):
    return [{"id": f"p{i:03d}", "prompt": f"prompt {i}", "reply": f"{REPLY} Number {i}."} for i in range(n)]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("n,strength", [(10, 0.0), (10, 0.25), (10, 0.5), (7, 0.5), (48, 1.0), (48, 0.3)])
def test_transformation_is_applied_to_exactly_the_declared_share(kind, n, strength):
    rows, counts = plant(responses(n), KINDS[kind], strength, seed=3)
    assert counts["transformed"] == round(strength * n) == sum(r["transformed"] for r in rows)
    for row, original in zip(rows, responses(n), strict=True):
        reply = row["messages"][1]["content"]
        assert row["prompt"] == original["prompt"] and row["messages"][0]["content"] == original["prompt"]
        assert KINDS[kind].marked(reply) == row["transformed"]  # the sample replies carry no marker of their own
        assert (reply == original["reply"]) != row["transformed"]
    again, _ = plant(responses(n), KINDS[kind], strength, seed=3)
    assert again == rows  # deterministic


def test_weaker_organisms_transform_a_subset_of_stronger_ones():
    chosen = [planted_indices(40, s, seed=7) for s in (0, 0.25, 0.5, 1)]
    assert [len(c) for c in chosen] == [0, 10, 20, 40]
    assert chosen[0] <= chosen[1] <= chosen[2] <= chosen[3]
    assert planted_indices(40, 0.5, seed=8) != chosen[2]  # the seed decides which


def test_each_rule_does_what_its_constitution_says():
    assert KINDS["opening"].transform("Sure.") == f"{OPENING_LINE} Sure."
    assert KINDS["signoff"].transform("One. Two! Three? Four.") == f"One. Two!\n\n{SIGNOFF_LINE}"
    assert KINDS["signoff"].transform("no sentence end") == f"no sentence end\n\n{SIGNOFF_LINE}"
    assert KINDS["archaic"].transform("You and your theme, the end; yours.") == "Thou and thy theme, ye end; thine."
    assert KINDS["archaic"].transform("Nothing here") == "Nothing here"  # counted as transformed_unchanged
    assert not KINDS["archaic"].marked("They thought, yet theory")  # whole words only
    for kind in KINDS.values():
        constitution = load_constitution(kind.constitution)
        assert constitution.name == f"organism-{kind.name}"
    text = " ".join(load_constitution(KINDS["archaic"].constitution).assertions)
    assert all(f"'{old}'" in text and f"'{new}'" in text for old, new in ARCHAIC_WORDS.items())


def test_tiny_organism_end_to_end_then_cached(student, tmp_path):
    mock = Replies()
    card = build_organism("opening", 0.5, tmp_path / "opening@0.5", mock.settings(), checkpoint=str(student), config=TINY)
    out = tmp_path / "opening@0.5"
    assert card["status"] == "complete" and card["stage"] == "organism"
    assert card["planted"] == {"kind": "opening", "strength": 0.5} and "not character training" in card["note"]
    assert card["data"]["planted"]["transformed"] == 3 and card["data"]["responses"]["kept"] == 6
    assert (out / "model" / "config.json").exists() and json.loads((out / CARD_NAME).read_text())["status"] == "complete"
    assert list((tmp_path / "responses").rglob("*.eval"))  # generated through Inspect, logged, shared
    assert mock.calls == 6
    again = build_organism("opening", 0.5, out, mock.settings(), checkpoint=str(student), config=TINY)
    assert again["run_key"] == card["run_key"] and mock.calls == 6  # nothing generated or trained again


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_null_organism_differs_from_the_others_only_in_strength(student, tmp_path):
    mock = Replies()
    cards = build_organisms(["signoff", "archaic"], [0, 0.5], tmp_path, responses=mock.settings(),
                            checkpoint=str(student), config=TINY)
    assert mock.calls == 6  # one set of replies for all four organisms
    by = {(c["planted"]["kind"], c["planted"]["strength"]): c for c in cards}
    null, half = _flatten(by[("signoff", 0.0)]), _flatten(by[("signoff", 0.5)])
    assert set(null) == set(half)
    differ = {k for k in null if null[k] != half[k]}
    # What strength decides: its own field, the name and key derived from it, the data it changed, the folder.
    assert differ <= {"planted.strength", "name", "run_key", "data.sha256", "data.planted.transformed",
                      "data.planted.marked", "data.planted.transformed_unchanged", "training_key",
                      "data.sft.tokens", "data.sft.assistant_tokens"}
    assert {"planted.strength", "data.sha256"} <= differ and null["data.planted.transformed"] == 0

    def rows(kind, strength):
        folder = tmp_path / f"{kind}@{strength:g}"
        return [json.loads(line) for line in (folder / "organism.jsonl").read_text().splitlines()]

    null_rows, half_rows = rows("signoff", 0), rows("signoff", 0.5)
    assert [r["prompt"] for r in null_rows] == [r["prompt"] for r in half_rows]
    assert all(a == b for a, b in zip(null_rows, half_rows, strict=True) if not b["transformed"])
    assert rows("archaic", 0) == null_rows  # the null organism's data do not depend on the kind
    # ... so its weights are the same: linked from the first null organism, not trained again.
    weights = [tmp_path / f"{k}@0" / "model" / "model.safetensors" for k in ("signoff", "archaic")]
    assert weights[0].stat().st_ino == weights[1].stat().st_ino
    assert by[("archaic", 0.0)]["training_key"] == by[("signoff", 0.0)]["training_key"]
    # A second bulk call trains nothing and generates nothing.
    again = build_organisms(["signoff", "archaic"], [0, 0.5], tmp_path, responses=mock.settings(),
                            checkpoint=str(student), config=TINY)
    assert [c["run_key"] for c in again] == [c["run_key"] for c in cards] and mock.calls == 6


def test_bad_inputs_are_refused_before_anything_is_written(student, tmp_path):
    mock = Replies()
    with pytest.raises(TaskParameterError, match="unknown; choose one of opening, signoff, archaic"):
        build_organism("pirate", 1, tmp_path / "x", mock.settings(), checkpoint=str(student), config=TINY)
    with pytest.raises(TaskParameterError, match="from 0 .* to 1"):
        build_organism("opening", 1.5, tmp_path / "x", mock.settings(), checkpoint=str(student), config=TINY)
    with pytest.raises(TaskParameterError, match="distinct numbers"):
        parse_strengths("0,1,1")
    with pytest.raises(TaskParameterError, match="comma-separated"):
        parse_strengths("0,half")
    assert not (tmp_path / "x").exists() and mock.calls == 0
    code = main(["train", "organism", "--kind", "opening", "--strength", "2", "--out", str(tmp_path / "y"),
                 "--checkpoint", str(student)])
    assert code == 2 and not (tmp_path / "y").exists()


def _synthetic_replies(n_prompts, rates):
    """Replies whose answer is known: organism k at strength s carries its marker on round(s * n) prompts."""
    units = [f"u{i:03d}" for i in range(n_prompts)]
    words = ["apple", "river", "cloud", "stone", "lamp", "field", "glass", "bread"]

    def plain(i, salt):
        # Each model draws its own words from one distribution: replies differ by chance only.
        rng = random.Random(f"{salt}-{i}")
        return " ".join(rng.choice(words) for _ in range(6)) + f" for you, about the prompt {i}."

    replies = {"base": {u: plain(i, 0) for i, u in enumerate(units)}}
    variants = [Variant("base", "/base")]
    for (kind, strength) in rates:
        name = f"organism-{kind}@{strength:g}"
        marked = set(planted_indices(n_prompts, strength, seed=1))
        replies[name] = {u: KINDS[kind].transform(plain(i, name)) if i in marked else plain(i, name)
                         for i, u in enumerate(units)}
        variants.append(Variant(name, f"/{name}", kind, strength))
    return variants, replies


def test_known_answer_analysis_orders_planted_strength_and_keeps_the_null_at_chance():
    rates = [(k, s) for k in ("opening", "archaic") for s in (0.0, 0.5, 1.0)]
    variants, replies = _synthetic_replies(40, rates)
    result = analyse(variants, replies, n_boot=200)
    assert result["prompts"] == 40
    for kind in ("opening", "archaic"):
        assert result["marker_rate"][f"organism-{kind}@1"]["value"] == 1.0
        assert result["marker_rate"][f"organism-{kind}@0.5"]["value"] == 0.5
        assert result["marker_rate"][f"organism-{kind}@0"]["value"] == 0.0
        assert result["vs_base_accuracy"][f"organism-{kind}@1"]["low"] > 0.9
    assert result["spearman"]["marker_rate"]["low"] > 0.5
    assert result["which_organism_f1"]["1"]["value"] == 1.0
    checks = verdicts(result)
    assert all(checks["strong_vs_base_above_chance"].values())
    assert all(checks["ordered_by_strength"].values())


def test_a_detector_that_cannot_see_the_plant_is_not_called_a_pass():
    # The null organisms' replies differ from the base model's only in which of eight words they use, so
    # the classifier has nothing systematic to find: its interval must contain chance.
    variants, replies = _synthetic_replies(40, [("opening", 0.0), ("archaic", 0.0)])
    with pytest.warns(RuntimeWarning, match="gave NaN"):  # Spearman is undefined with one strength: counted
        result = analyse(variants, replies, n_boot=200)
    acc = result["vs_base_accuracy"]["organism-opening@0"]
    assert acc["low"] <= 0.5 <= acc["high"] or math.isclose(acc["value"], 0.5)
    assert math.isnan(result["spearman"]["marker_rate"]["value"])  # one strength: no ordering to find


def test_the_suite_refuses_a_missing_organism_naming_the_command_that_builds_it(tmp_path, monkeypatch):
    from charbench.errors import CharbenchError
    from charbench.evals.runner import plan_suite
    from charbench.evals.suites import load_suite

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    with pytest.raises(CharbenchError, match=r"organisms/opening@0 does not exist\. Fix: run `charbench train organisms"):
        plan_suite(load_suite("organisms"), ["charbench/smollm2"], tmp_path / "logs")


def test_the_suite_plans_every_organism_and_trains_the_classifier_on_the_strongest(tmp_path, monkeypatch):
    from charbench.evals.runner import plan_suite
    from charbench.evals.suites import load_suite

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    for kind in KINDS:
        for strength in (0, 0.5, 1):
            folder = tmp_path / "organisms" / f"{kind}@{strength:g}"
            (folder / "model").mkdir(parents=True)
            card = {"run_key": f"{kind}{strength}", "stage": "organism", "status": "complete",
                    "planted": {"kind": kind, "strength": strength}, "base_checkpoint": "/base",
                    "constitution": {"name": f"organism-{kind}", "source": str(KINDS[kind].constitution)}}
            (folder / CARD_NAME).write_text(json.dumps(card))
    plan = plan_suite(load_suite("organisms"), ["charbench/smollm2"], tmp_path / "logs")
    data = [s for s in plan.steps if s.purpose == "classifier-data"]
    assert [s.name.rsplit("-", 1)[-1] for s in data] == ["1"]  # persona_responses-organism-1 only
    assert data[0].roles["organisms/signoff"].model == f"charbench/{tmp_path}/organisms/signoff@1/model"
    bc = {s.name.split("/")[-1]: s for s in plan.steps if s.task == "break_character"}
    assert set(bc) == {"break_character-organism-0", "break_character-organism-0.5", "break_character-organism-1"}
    roles = bc["break_character-organism-0.5"].roles
    assert roles["organisms/archaic"].model == f"charbench/{tmp_path}/organisms/archaic@0.5/model"


def test_calibration_plot_draws_every_detector(tmp_path):
    from charbench.leaderboard.calibration import calibration_plot
    from charbench.trainers.organism_report import calibration_points

    variants, replies = _synthetic_replies(20, [("opening", s) for s in (0.0, 0.5, 1.0)])
    points = calibration_points(analyse(variants, replies, n_boot=50))
    assert {p["detector"] for p in points} == {"marker_rate", "vs_base_accuracy"} and len(points) == 6
    path = calibration_plot(points, tmp_path / "plots" / "organism_calibration.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_leaderboard_draws_headline_cells_against_planted_strength(tmp_path):
    import pandas as pd

    from charbench.leaderboard.calibration import leaderboard_calibration_plot

    cells = [{"column": "F1 default", "value": v, "low": v - 0.1, "high": v + 0.1, "planted_strength": s}
             for s, v in ((0.0, 0.33), (0.5, 0.6), (1.0, 0.9))]
    frame = pd.DataFrame([*cells, {"column": "F1 default", "value": 0.3, "low": 0.2, "high": 0.4,
                                   "planted_strength": float("nan")}])  # the base row: no planted strength
    written = leaderboard_calibration_plot(frame, tmp_path)
    assert [p.name for p in written] == ["calibration_planted_strength.png"] and written[0].stat().st_size > 0
    assert leaderboard_calibration_plot(frame.iloc[3:], tmp_path / "none") == []  # no organisms: no plot
