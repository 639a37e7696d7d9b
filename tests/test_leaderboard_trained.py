"""Trained checkpoints on the leaderboard: rows named from the card (in the logs too), planted strength carried,
coherence averaged over personas with prompts resampled jointly, and a whole suite run on tiny trained folders."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from inspect_ai.log import read_eval_log
from inspect_ai.scorer import SampleScore, Score
from test_runner_trained import trained_folder, write_suite
from tiny_model import save_tiny_checkpoint

from charbench.evals import runner
from charbench.evals.suites import load_suite
from charbench.evals.trained import TRAINED_KEY, VARIANT_KEY
from charbench.leaderboard.build import build_leaderboard
from charbench.leaderboard.logs import read_runs, trained_from_model
from charbench.leaderboard.pooled import mean_over_personas
from charbench.tasks.coherence.contract import point_metrics


def verdicts(wins: list[bool]) -> dict[str, list[SampleScore]]:
    """prompt id -> one coherence verdict of the model under test on it (a: it won, b: it lost)."""
    out = {}
    for i, won in enumerate(wins):
        outcome = "a" if won else "b"
        score = Score(value=outcome, metadata={"outcomes": {"judge": outcome}, "cluster": f"p{i}"})
        out[f"p{i}"] = [SampleScore(score=score, sample_id=f"s{i}")]
    return out


def test_the_mean_over_personas_resamples_prompts_jointly():
    half = [True] * 5 + [False] * 5
    # two personas that win on exactly opposite prompts: every resample of prompts gives a mean of exactly 0.5,
    # which only a joint resampling sees (resampling each persona on its own would give a wide interval)
    opposite = {"sarcastic": verdicts(half), "remorseful": verdicts([not w for w in half])}
    value, low, high, n = mean_over_personas(opposite, point_metrics, "judge/win_rate", n_boot=300)
    assert (value, low, high, n) == (0.5, 0.5, 0.5, 10)
    # two personas that win on the same prompts: the mean moves with the drawn prompts
    same = {"sarcastic": verdicts(half), "remorseful": verdicts(half)}
    value, low, high, n = mean_over_personas(same, point_metrics, "judge/win_rate", n_boot=300)
    assert value == 0.5 and low < 0.35 and high > 0.65 and n == 10
    # a persona without a single decided verdict has no win rate, so neither has the mean
    undecided = {"sarcastic": verdicts(half), "remorseful": {}}
    value, low, high, _ = mean_over_personas(undecided, point_metrics, "judge/win_rate", n_boot=50)
    assert math.isnan(value) and math.isnan(low)


def test_a_checkpoint_run_outside_the_runner_is_named_from_the_card_beside_it(tmp_path):
    folder = trained_folder(tmp_path / "ckpt", "sarcastic", planted={"kind": "trait", "strength": 0.25})
    name, trained = trained_from_model(f"charbench/{folder / 'model'}", {})
    assert name == "sarcastic-dpo-3f2a1c"
    assert trained is not None and trained["checkpoints"]["sarcastic"]["planted_strength"] == 0.25
    assert trained_from_model(f"charbench/{folder / 'model'}", {"method": "prompted", "persona": "x"}) == (None, None)
    assert trained_from_model("charbench/smollm2", {}) == (None, None)


@pytest.fixture
def tiny_trained_run(tmp_path) -> tuple[Path, str]:
    """A two-persona suite on tiny random checkpoints: a per-persona trained variant in coherence against base,
    a single trained checkpoint and base on a capability task; run with the runner, logs in ``runs``."""
    base = save_tiny_checkpoint(tmp_path / "base")
    trained_folder(tmp_path / "s", "sarcastic", planted={"kind": "trait", "strength": 0.5}, model=save_tiny_checkpoint)
    trained_folder(tmp_path / "r", "remorseful", key="9999990000000000", model=save_tiny_checkpoint)
    judge = f"charbench/{base}"
    suite = write_suite(tmp_path, [
        {"task": "coherence", "variants": ["paper"], "opponents": ["base"],
         "args": {"n_prompts": 2, "max_tokens": 4, "judge_max_tokens": 4}},
        {"task": "arc_challenge", "variants": ["base", "one"], "args": {"limit": 2, "n_shots": 0}},
    ], {"paper": {"sarcastic": "s", "remorseful": "r"}, "one": "s"}, judge=judge)
    plan = runner.plan_suite(load_suite(str(suite)), [f"charbench/{base}"], tmp_path / "runs")
    runner.validate_plan(plan)
    results = runner.execute_plan(plan, tmp_path / "runs", display="none", max_error_rate=0.0)
    assert [r.status for r in results] == ["success"] * 4, [r.line() for r in results]
    return tmp_path / "runs", judge


def test_a_suite_with_trained_variants_runs_and_its_board_names_rows_from_cards(tmp_path, tiny_trained_run):
    log_dir, judge = tiny_trained_run
    runs = read_runs(log_dir)
    # the row name and the cards are in every trained step's log, and the judge is the same in every log
    for run in runs:
        header = read_eval_log(run.path, header_only=True)
        if run.task == "coherence":
            assert header.eval.model_roles["judge"].model == judge
            assert header.eval.metadata[VARIANT_KEY] == "paper-dpo"
            assert header.eval.metadata[TRAINED_KEY]["variant"] == "paper"
    assert sorted(r.variant for r in runs) == sorted(["paper-dpo", "paper-dpo", "sarcastic-dpo-3f2a1c", str(tmp_path / "base")])

    out = build_leaderboard(log_dir, tmp_path / "board")
    frame = pd.read_csv(out.csv_path)
    assert set(frame["variant"]) == {"paper-dpo", "sarcastic-dpo-3f2a1c", str(tmp_path / "base")}
    assert not frame["variant"].str.contains(str(tmp_path / "s")).any(), "no row is named from a folder path"
    one = frame[frame["variant"] == "sarcastic-dpo-3f2a1c"].iloc[0]
    assert (one["stage"], one["persona"], one["planted_strength"]) == ("dpo", "sarcastic", 0.5)
    # coherence against base: one row for the trained variant, averaged over the suite's two personas
    [coherence] = frame[frame["task"] == "coherence"].itertuples()
    assert coherence.variant == "paper-dpo" and "[mean of 2 personas]" in coherence.label
    assert coherence.n == 2, "n is the number of prompts resampled"
    assert "opponent=base" in coherence.args
    pooled = pd.read_csv(out.pooled_path)
    assert sorted(pooled["persona"]) == ["remorseful", "sarcastic"]
    assert "paper-dpo" in out.markdown and "sarcastic-dpo-3f2a1c" in out.markdown
