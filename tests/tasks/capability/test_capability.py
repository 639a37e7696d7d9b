"""Capability regression tasks: prompt assembly, log-likelihood scoring, fixture checks, paired deltas."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from inspect_ai.model import ModelName
from inspect_ai.scorer import Target
from inspect_ai.solver import TaskState

from charbench.errors import TaskParameterError
from charbench.stats import Estimate
from charbench.tasks.capability.comparison import (
    PairingError,
    capability_drop_check,
    mmlu_pooled,
    paired_accuracy_delta,
    paired_delta_from_logs,
    per_item_correct_from_log,
    shot_selection,
    subject_spread,
)
from charbench.tasks.capability.dataset import (
    FixtureError,
    arc_record_to_item,
    assemble_context,
    build_samples,
    fixed_shot_order,
    item_pairs,
    item_to_sample,
    load_benchmark,
    load_items,
    mmlu_record_to_item,
    sample_shots,
    winogrande_record_to_item,
)
from charbench.tasks.capability.scorer import choose, loglikelihood_choice, mc2_score


def arc_record(i: str, question: str, texts: list[str], key: str) -> dict:
    return {"id": i, "question": question, "choices": {"text": texts, "label": list("ABCD"[: len(texts)])},
            "answerKey": key}


SHOT_1 = arc_record("s1", "What do plants need to make food?", ["sunlight", "sand"], "A")
SHOT_2 = arc_record("s2", "Which is a mammal?", ["a trout", "a whale"], "B")
QUERY = arc_record("q1", "What color is the sky on a clear day?", ["green", "blue"], "B")


# (1) few-shot prompt assembly ------------------------------------------------------------------------------
def test_arc_few_shot_prompt_is_exact():
    shots = [arc_record_to_item(SHOT_1), arc_record_to_item(SHOT_2)]
    item = arc_record_to_item(QUERY)
    pairs = item_pairs(item, shots)
    expected = (
        "Question: What do plants need to make food?\nAnswer: sunlight\n\n"
        "Question: Which is a mammal?\nAnswer: a whale\n\n"
        "Question: What color is the sky on a clear day?\nAnswer:"
    )
    assert pairs == [(expected, " green"), (expected, " blue")]
    assert item.gold == 1
    sample = item_to_sample(item, shots, "arc_challenge")
    assert sample.input == expected and sample.id == "q1" and sample.target == "B"
    assert sample.metadata["continuations"] == [" green", " blue"] and "contexts" not in sample.metadata


def test_mmlu_and_winogrande_prompts_are_exact():
    dev = {"question": "2 + 2 =", "subject": "elementary_mathematics", "choices": ["3", "4"], "answer": 1}
    test = {"question": "3 + 3 =", "subject": "elementary_mathematics", "choices": ["6", "7"], "answer": 0}
    (ctx, cont), _ = item_pairs(mmlu_record_to_item(test), [mmlu_record_to_item(dev)])
    assert ctx == (
        "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
        "2 + 2 =\nA. 3\nB. 4\nAnswer: B\n\n"
        "3 + 3 =\nA. 6\nB. 7\nAnswer:"
    )
    assert cont == " A"

    shot = {"sentence": "Ann thanked Bo because _ had helped her.", "option1": "Ann", "option2": "Bo", "answer": "2"}
    query = {"sentence": "The cup fell off the table because the _ was tilted.", "option1": "cup", "option2": "table",
             "answer": "2"}
    pairs = item_pairs(winogrande_record_to_item(query), [winogrande_record_to_item(shot)])
    assert pairs == [
        ("Ann thanked Bo because Bo had helped her.\n\nThe cup fell off the table because the cup", " was tilted."),
        ("Ann thanked Bo because Bo had helped her.\n\nThe cup fell off the table because the table", " was tilted."),
    ]
    assert assemble_context("Q", ["a", "b"], "H: ") == "H: a\n\nb\n\nQ"


@pytest.mark.parametrize("shots", ["fixed", "per_item"])
def test_shots_are_stable_and_independent_of_limit(shots):
    full, _ = load_benchmark("arc_challenge", n_shots=3, seed=7, shots=shots)
    few, _ = load_benchmark("arc_challenge", n_shots=3, seed=7, limit=2, shots=shots)
    other_seed, _ = load_benchmark("arc_challenge", n_shots=3, seed=8, limit=2, shots=shots)
    assert [s.id for s in few] == [s.id for s in full[:2]]
    assert [s.input for s in few] == [s.input for s in full[:2]]
    assert len(set(s.id for s in full)) == len(full)
    assert few[0].input != other_seed[0].input
    pool = [arc_record_to_item(SHOT_1), arc_record_to_item(SHOT_2), arc_record_to_item(QUERY)]
    assert all(s.id != "q1" for s in sample_shots(pool, 2, 0, "q1"))


def test_fixed_shots_are_one_seeded_draw_shared_by_every_item():
    samples, info = load_benchmark("arc_challenge", n_shots=3, seed=7, shots="fixed")
    assert info["shots"] == "fixed" and info["fixed_shot_replaced"] == 0 and len(info["fixed_shot_ids"]) == 3
    assert all(s.metadata["shot_ids"] == info["fixed_shot_ids"] for s in samples)
    block = samples[0].input[: samples[0].input.rindex("Question:")]
    assert block.count("Question:") == 3 and all(s.input.startswith(block) for s in samples)
    _, other = load_benchmark("arc_challenge", n_shots=3, seed=8, shots="fixed")
    assert other["fixed_shot_ids"] != info["fixed_shot_ids"]
    per_item, per_item_info = load_benchmark("arc_challenge", n_shots=3, seed=7, shots="per_item")
    assert per_item_info["shots"] == "per_item" and "fixed_shot_ids" not in per_item_info
    assert len({tuple(s.metadata["shot_ids"]) for s in per_item}) > 1


def test_an_item_among_the_fixed_shots_gets_the_next_one_in_their_order_and_is_recorded():
    extra = arc_record("s3", "Which is a planet?", ["Mars", "the Moon"], "A")
    pool = [arc_record_to_item(r) for r in (SHOT_1, SHOT_2, QUERY, extra)]
    seed = next(s for s in range(100) if "q1" in [p.id for p in fixed_shot_order(pool, s)[:2]])
    order = [p.id for p in fixed_shot_order(pool, seed)]
    outsider = arc_record_to_item(arc_record("q2", "What melts ice?", ["heat", "cold"], "A"))
    own, other = build_samples("arc_challenge", [arc_record_to_item(QUERY), outsider], pool, 2, seed, "fixed")
    assert own.metadata["shot_ids"] == [i for i in order[:3] if i != "q1"]
    assert own.metadata["fixed_shot_replaced"] == {"own_id": "q1", "replacement_id": order[2]}
    assert other.metadata["shot_ids"] == order[:2] and "fixed_shot_replaced" not in other.metadata


# (2) log-likelihood scorer vs a hand computation ---------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    from inspect_ai.model import get_model

    return get_model("charbench/smollm2")


def hand_logprob(model, context: str, continuation: str) -> float:
    """Independent computation: one unbatched forward pass, log-softmax, gather the continuation tokens."""
    import torch

    tok, net = model.api.tokenizer, model.api.model
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(net(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def run_scorer(model, sample):
    state = TaskState(model=ModelName(model), sample_id=sample.id, epoch=1, input=sample.input, messages=[],
                      metadata=sample.metadata)
    return asyncio.run(loglikelihood_choice(model=model)(state, Target(sample.target)))


def test_loglikelihood_scorer_matches_hand_computation(smollm2):
    shots = [arc_record_to_item(SHOT_1), arc_record_to_item(SHOT_2)]
    item = arc_record_to_item(QUERY)
    sample = item_to_sample(item, shots, "arc_challenge")
    score = run_scorer(smollm2, sample)

    hand = [hand_logprob(smollm2, ctx, cont) for ctx, cont in item_pairs(item, shots)]
    assert score.metadata["logprobs"] == pytest.approx(hand, abs=1e-3)
    hand_pred = max(range(2), key=lambda i: hand[i])
    hand_pred_norm = max(range(2), key=lambda i: hand[i] / len(item.continuations[i]))
    assert hand[0] != pytest.approx(hand[1], abs=1e-2)  # the choice is not a coin flip
    assert score.metadata["pred"] == hand_pred
    assert score.metadata["pred_norm"] == hand_pred_norm
    assert score.answer == "AB"[hand_pred]
    assert score.value == ("C" if hand_pred == item.gold else "I")
    assert score.metadata["correct"] == int(hand_pred == item.gold) and score.metadata["gold"] == 1


def test_winogrande_partial_scoring_uses_per_choice_contexts(smollm2):
    query = {"sentence": "The cup fell off the table because the _ was tilted.", "option1": "cup",
             "option2": "table", "answer": "2"}
    item = winogrande_record_to_item(query)
    sample = item_to_sample(item, [], "winogrande")
    score = run_scorer(smollm2, sample)
    hand = [hand_logprob(smollm2, ctx, cont) for ctx, cont in item_pairs(item)]
    assert score.metadata["logprobs"] == pytest.approx(hand, abs=1e-3)


def test_scorer_refuses_a_model_without_logprobs():
    from inspect_ai.model import get_model

    item = arc_record_to_item(QUERY)
    with pytest.raises(TaskParameterError, match="charbench/<checkpoint>"):
        run_scorer(get_model("mockllm/model"), item_to_sample(item, [], "arc_challenge"))


def test_choose_and_mc2_by_hand():
    # raw argmax picks 0; per character: -4/2=-2 vs -6/12=-0.5 picks 1
    assert choose([-4.0, -6.0], [" a", " much longer"], gold=1) == {
        "pred": 0, "pred_norm": 1, "correct": 0, "correct_norm": 1}
    assert choose([-1.0, -1.0], [" x", " y"], gold=0)["pred"] == 0  # ties go to the first choice
    # p = (0.5, 0.3, 0.2) after normalisation; true answers are the first two
    lps = [math.log(0.5), math.log(0.3), math.log(0.2)]
    assert mc2_score(lps, [1, 1, 0]) == pytest.approx(0.8)


# (3) malformed fixtures fail naming the item -------------------------------------------------------------------
def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_out_of_range_gold_names_the_item_and_file(tmp_path):
    bad_arc = write_jsonl(tmp_path / "arc_bad.jsonl", [SHOT_1, arc_record("arc_oops_7", "Q?", ["x", "y"], "E")])
    with pytest.raises(FixtureError, match=r"arc_oops_7.*arc_bad\.jsonl"):
        load_items(bad_arc, arc_record_to_item)

    bad_mmlu = write_jsonl(tmp_path / "mmlu_bad.jsonl", [
        {"question": "Capital of France?", "subject": "geography", "choices": ["Paris", "Rome"], "answer": 2}])
    item_id = "mmlu-geography-"
    with pytest.raises(FixtureError, match=rf"out of range.*{item_id}[0-9a-f]{{12}}.*mmlu_bad\.jsonl"):
        load_items(bad_mmlu, mmlu_record_to_item)

    bad_wino = write_jsonl(tmp_path / "wino_bad.jsonl", [
        {"sentence": "A helped B because _ was kind.", "option1": "A", "option2": "B", "answer": "3"}])
    with pytest.raises(FixtureError, match=r"winogrande-[0-9a-f]{12}.*wino_bad\.jsonl"):
        load_items(bad_wino, winogrande_record_to_item)


def test_task_parameter_errors():
    with pytest.raises(TaskParameterError, match=r"n_shots=30.*26 examples"):
        load_benchmark("arc_challenge", n_shots=30)
    with pytest.raises(TaskParameterError, match="revision="):
        load_benchmark("mmlu", source="hub")
    with pytest.raises(TaskParameterError, match="n_shots must be 0"):
        load_benchmark("truthfulqa_mc", n_shots=2)
    samples, info = load_benchmark("mmlu", n_shots=2, limit=3)
    assert info["fixture"] is True and info["n_shots"] == 2 and len(samples) == 3
    assert info["shots"] == "per_subject"
    with pytest.raises(TaskParameterError, match="per_item"):
        load_benchmark("arc_challenge", shots="random")
    with pytest.raises(TaskParameterError, match="mmlu takes no shots"):
        load_benchmark("mmlu", shots="fixed")
    assert load_benchmark("truthfulqa_mc", limit=1)[1]["shots"] == "none"


def test_task_metadata_records_the_shot_selection_and_comparison_refuses_a_mismatch():
    from inspect_ai import eval as inspect_eval

    from charbench.tasks.capability.task import arc_challenge, hellaswag, winogrande

    for make in (arc_challenge, hellaswag, winogrande):
        assert make(limit=1).metadata["shots"] == "fixed"
        assert make(limit=1, shots="per_item").metadata["shots"] == "per_item"
    # The logs need no scores: the settings are checked before any item is read.
    logs = [inspect_eval(arc_challenge(n_shots=2, limit=1, shots=shots), model="mockllm/model", display="none")[0]
            for shots in ("fixed", "per_item")]
    with pytest.raises(PairingError, match="shots"):
        paired_delta_from_logs(logs[0], logs[1])


def test_logs_without_a_recorded_selection_read_as_version_1_rules():
    assert shot_selection({"benchmark": "arc_challenge", "n_shots": 25}) == "per_item"
    assert shot_selection({"benchmark": "mmlu", "n_shots": 5}) == "per_subject"
    assert shot_selection({"benchmark": "truthfulqa_mc", "n_shots": 0}) == "none"
    assert shot_selection({"benchmark": "arc_challenge", "n_shots": 25, "shots": "fixed"}) == "fixed"


# (4) end to end: the same checkpoint against itself ------------------------------------------------------------
@pytest.mark.slow
def test_arc_challenge_runs_and_self_comparison_is_zero(tmp_path):
    from inspect_ai import eval as inspect_eval

    from charbench.tasks.capability import arc_challenge
    from charbench.tasks.capability.comparison import paired_delta_from_logs

    runs = []
    for run in ("candidate", "baseline"):
        (log,) = inspect_eval(arc_challenge(limit=4), model="charbench/smollm2", log_dir=str(tmp_path / run),
                              display="none")
        assert log.status == "success"
        assert log.eval.metadata["fixture"] is True and log.eval.metadata["n_shots"] == 25
        assert log.eval.metadata["shots"] == "fixed"
        runs.append(log)
    candidate, baseline = (per_item_correct_from_log(log.location) for log in runs)
    assert len(candidate) == 4 and set(candidate) == set(baseline)
    delta = paired_accuracy_delta(candidate, baseline)
    assert delta.value == 0.0 and delta.se == 0.0 and delta.n == 4
    assert capability_drop_check(delta, max_drop_points=1.0)
    assert paired_delta_from_logs(runs[0].location, runs[1].location).value == 0.0
    metrics = runs[0].results.scores[0].metrics
    assert metrics["accuracy"].value == pytest.approx(sum(candidate.values()) / 4)


# (5) paired-delta math -------------------------------------------------------------------------------------
def test_paired_delta_by_hand():
    candidate = {"a": 1, "b": 1, "c": 0, "d": 1}
    baseline = {"d": 0, "c": 1, "b": 0, "a": 1}  # order must not matter
    delta = paired_accuracy_delta(candidate, baseline)
    # differences (a..d) = 0, 1, -1, 1: mean 0.25, sd = sqrt(2.75/3), se = sd/2
    se = math.sqrt(2.75 / 3) / 2
    assert delta.value == pytest.approx(0.25)
    assert delta.se == pytest.approx(se)
    assert delta.low == pytest.approx(0.25 - 1.959964 * se, abs=1e-5)
    assert delta.high == pytest.approx(0.25 + 1.959964 * se, abs=1e-5)
    assert delta.n == 4

    with pytest.raises(PairingError, match="same items"):
        paired_accuracy_delta({"a": 1, "b": 0}, {"a": 1, "z": 0})


def test_drop_gate_and_mmlu_pooled_by_hand():
    # lower bound = -0.01 - 1.96 * 0.02 = -0.0492: passes a 5-point gate, fails a 4-point gate
    delta = Estimate(-0.01, -0.0492, 0.0292, 400, 0.02)
    assert capability_drop_check(delta, max_drop_points=5.0)
    assert not capability_drop_check(delta, max_drop_points=4.0)
    assert not capability_drop_check(Estimate(0.0, float("nan"), float("nan"), 1), max_drop_points=50.0)

    correct = {"g1": 1, "g2": 1, "g3": 1, "g4": 1, "m1": 0, "m2": 0, "m3": 1, "m4": 0}
    subjects = {k: ("geo" if k.startswith("g") else "math") for k in correct}
    pooled = mmlu_pooled(correct)
    # 5 of 8 correct: mean 0.625, sd (ddof=1) = sqrt(8 * 0.625 * 0.375 / 7), se = sd / sqrt(8)
    assert pooled.value == pytest.approx(0.625)
    assert pooled.se == pytest.approx(math.sqrt(8 * 0.625 * 0.375 / 7) / math.sqrt(8))
    # across-subject spread: accuracies 1.0 and 0.25 -> sd = 0.75 / sqrt(2); a different quantity
    assert subject_spread(correct, subjects) == pytest.approx(0.75 / math.sqrt(2))
