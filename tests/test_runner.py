"""The suite runner: plan and validation before work, variant identity, one judge, counted faults, sample-level
resumption after a kill, and one writer per log dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import runner_fixtures
import yaml
from inspect_ai.log import read_eval_log

from charbench.cli import main
from charbench.errors import CharbenchError
from charbench.evals import runner
from charbench.evals.suites import Suite, load_suite

TESTS = Path(__file__).parent


def write_suite(tmp_path: Path, tasks: list[dict], **extra) -> str:
    raw = {"name": "mini", "version": 1, "personas": ["sarcastic", "remorseful"],
           "classifier": {"kind": "tfidf", "n_prompts": 2}, "steer_coef": 0.5,
           "generate": {"max_tokens": 8, "temperature": 0.7, "top_p": 0.95, "seed": 0}, "tasks": tasks,
           "judge": "charbench/smollm2", **extra}
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


# -- plan, dry run, validation ---------------------------------------------------------------------------------
def test_dry_run_lists_every_step_model_judge_and_dataset_without_loading(tmp_path, capsys, no_model_loading):
    log_dir = tmp_path / "runs"
    code = main(["run", "--suite", "smoke", "--model", "charbench/smollm2", "--log-dir", str(log_dir), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert not log_dir.exists(), "a dry run writes nothing"
    plan = runner.plan_suite(load_suite("smoke"), ["charbench/smollm2"], log_dir)
    for step in plan.steps:
        assert f"- {step.name}  [" in out
    assert "judge: charbench/smollm2 (named" in out
    # every variant of the multi-persona tasks is visible in the model name that the logs will carry
    assert "model: charbench/smollm2+prompted  " in out and "model: charbench/smollm2+steered@0.5  " in out
    assert '"prompt_set": "offline"' in out  # the task's default data, though the suite leaves it unset


def test_every_variant_has_its_own_model_name_and_all_share_one_judge(tmp_path, no_model_loading):
    for suite_name in ("smoke", "standard", "paper"):
        plan = runner.plan_suite(load_suite(suite_name), ["charbench/smollm2"], tmp_path, judge="charbench/smollm2")
        runner.validate_plan(plan)
        by_entry: dict[str, set[str]] = {}
        for step in plan.steps:
            entry = step.name.rsplit("-", 1)[0]
            labels = by_entry.setdefault(entry, set())
            assert step.model.label not in labels, f"{step.name}: two variants would log the same model name"
            labels.add(step.model.label)
            # the multi-persona tasks no longer carry the method as a task argument on a charbench/ model
            assert "method" not in step.task_args
        judges = {s.roles["judge"].label for s in plan.steps if "judge" in s.roles}
        assert judges == {"charbench/smollm2"}


def test_default_judge_never_silently_judges_its_own_variants(tmp_path, capsys, no_model_loading):
    args = ["run", "--suite", "standard", "--model", "charbench/smollm2", "--log-dir", str(tmp_path), "--dry-run"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "would judge its own variants" in err and "--judge charbench/smollm2" in err
    assert main([*args, "--judge", "charbench/smollm2"]) == 0
    # a trained checkpoint is judged by the embedded base model by default
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    plan = runner.plan_suite(load_suite("standard"), [f"charbench/{ckpt}"], tmp_path)
    runner.validate_plan(plan)
    assert {s.roles["judge"].model for s in plan.steps if "judge" in s.roles} == {runner.DEFAULT_JUDGE}


@pytest.mark.parametrize("case, expected", [
    ("missing_checkpoint", "checkpoint path '/no/such/ckpt' does not exist. Fix:"),
    ("unknown_suite", "no suite 'nosuch'; built-in suites:"),
    ("unknown_task", "unknown task 'no_such_task'; known tasks:"),
    ("bad_variant", "each must be one of ('base', 'prompted', 'steered')"),
    ("bad_argument", "do not fit value_conflict"),
    ("steered_on_vllm", "needs a charbench/ model"),
    ("bad_error_rate", "--max-error-rate 1.5 must be in [0, 1)"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, capsys, no_model_loading, case, expected):
    log_dir = tmp_path / "runs"
    suite, model, extra = "smoke", "charbench/smollm2", []
    if case == "missing_checkpoint":
        model = "charbench//no/such/ckpt"
    elif case == "unknown_suite":
        suite = "nosuch"
    elif case == "unknown_task":
        suite = write_suite(tmp_path, [{"task": "no_such_task", "variants": ["base"]}])
    elif case == "bad_variant":
        suite = write_suite(tmp_path, [{"task": "value_conflict", "variants": ["fancy"]}])
    elif case == "bad_argument":
        suite = write_suite(tmp_path, [{"task": "value_conflict", "variants": ["base"], "args": {"n_promtps": 3}}])
    elif case == "steered_on_vllm":
        model = "vllm/org/name"
    elif case == "bad_error_rate":
        extra = ["--max-error-rate", "1.5"]
    code = main(["run", "--suite", suite, "--model", model, "--log-dir", str(log_dir), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err
    assert len(err.splitlines()) == 1, err
    assert not log_dir.exists(), "nothing is written when the input is refused"


# -- one writer per log dir ------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_and_a_stale_lock_replaced(tmp_path, capsys, no_model_loading):
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = log_dir / runner.LOCK_NAME
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename, "started": "earlier"}))
        code = main(["run", "--suite", "smoke", "--model", "charbench/smollm2", "--log-dir", str(log_dir)])
        err = capsys.readouterr().err
        assert code == 2
        assert f"already being written by charbench run (pid {holder.pid}" in err and "another --log-dir" in err
        assert json.loads(lock.read_text())["pid"] == holder.pid, "the other writer's lock is left alone"
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and is replaced by ours for the length of the run
    with runner.log_dir_lock(log_dir) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(CharbenchError, match="already being written"), runner.log_dir_lock(log_dir):
            pass
    assert not (log_dir / runner.LOCK_NAME).exists()
    assert "removing a stale lock" in capsys.readouterr().out


# -- faults are counted ----------------------------------------------------------------------------------------
def tiny_plan(tmp_path: Path) -> runner.RunPlan:
    suite = Suite(name="tiny", version=1, personas=["sarcastic", "remorseful"], classifier={}, steer_coef=0.5,
                  generate={"seed": 0}, tasks=[{"task": "tiny", "variants": ["base"]}])
    step = runner.Step("scheduled_model/tiny-base", "tiny", {}, runner.ModelSpec("scheduled/model"))
    return runner.RunPlan(suite, ["scheduled/model"], runner.ModelSpec(runner.DEFAULT_JUDGE), False, [step], {})


def test_errored_samples_are_counted_and_a_step_over_the_threshold_is_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARBENCH_TEST_FAIL_EVERY", "3")  # items 3, 6 and 9 of 10 always fail
    under = runner.execute_plan(tiny_plan(tmp_path), tmp_path / "lenient", display="none", max_error_rate=0.5,
                                task_factories={"tiny": runner_fixtures.tiny})
    [result] = under
    assert (result.status, result.expected, result.samples, result.errored) == ("success", 10, 10, 3)
    assert not result.over_threshold
    summary = json.loads((tmp_path / "lenient" / runner.SUMMARY_NAME).read_text())
    assert summary["steps"][0]["errored"] == 3 and summary["steps"][0]["samples"] == 10
    # the errored samples are in the log, with their errors, not dropped
    log = read_eval_log(result.log)
    assert sorted(s.id for s in log.samples if s.error) == [3, 6, 9]

    # a changed configuration of the same step never mixes with the old log: it is refused with the fix
    with pytest.raises(CharbenchError, match="move .* aside or use a new --log-dir"):
        runner.run_step(tiny_plan(tmp_path).steps[0], tmp_path / "lenient", seed=0, display="none",
                        max_error_rate=0.5, task_factory=lambda: runner_fixtures.tiny(n=5))

    [strict] = runner.execute_plan(tiny_plan(tmp_path), tmp_path / "strict", display="none", max_error_rate=0.2,
                                   task_factories={"tiny": runner_fixtures.tiny})
    assert strict.over_threshold and strict.status == "error"
    assert (strict.samples, strict.errored) == (10, 3), "the run went on after the threshold was passed"
    assert "OVER ERROR THRESHOLD" in strict.line()


# -- resumption keeps finished work ----------------------------------------------------------------------------
def test_a_killed_step_resumes_with_its_finished_samples(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    first_calls, second_calls = tmp_path / "first.txt", tmp_path / "second.txt"
    env = {**os.environ, "CHARBENCH_TEST_KILL_AFTER": "4", "CHARBENCH_TEST_CALLS": str(first_calls),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, str(TESTS / "runner_fixtures.py"), str(root)], env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    [partial] = (root / "scheduled_model" / "tiny-base").glob("*.eval")
    assert read_eval_log(str(partial), header_only=True).status == "started"

    monkeypatch.setenv("CHARBENCH_TEST_CALLS", str(second_calls))
    result = runner_fixtures.run_tiny_step(str(root))
    assert (result.status, result.samples, result.errored) == ("success", 10, 0)
    ids = [s.id for s in read_eval_log(result.log).samples]
    assert sorted(ids) == list(range(1, 11)), "no sample lost or duplicated"
    finished_before = {int(n) for n in first_calls.read_text().split()} & set(range(1, 5))
    assert finished_before == {1, 2, 3, 4}
    asked_again = {int(n) for n in second_calls.read_text().split()}
    assert not asked_again & finished_before, "finished samples were recomputed instead of kept"
    assert asked_again == set(range(5, 11))


# -- the variant is in the logged model name (embedded model) -----------------------------------------------------
@pytest.mark.slow
def test_evals_df_shows_one_model_name_per_variant_and_one_judge(tmp_path):
    from inspect_ai.analysis import evals_df

    suite = write_suite(tmp_path, [
        {"task": "persona_responses", "variants": ["prompted", "steered"], "args": {"n_prompts": 1}},
        {"task": "revealed_preferences", "variants": ["base", "prompted"],
         "args": {"n_matches": 2, "max_tokens": 8, "judge_method": "likelihood",
                  "traits": ["sarcastic", "humble", "formal", "playful"]}},
    ])
    log_dir = tmp_path / "runs"
    assert main(["run", "--suite", suite, "--model", "charbench/smollm2", "--log-dir", str(log_dir),
                 "--display", "none", "--max-connections", "3"]) == 0
    df = evals_df(str(log_dir), quiet=True)
    # --max-connections replaces the suite's 32 for every step (Inspect's concurrency and the engine's batch).
    assert {read_eval_log(p, header_only=True).plan.config.max_connections for p in df["log"]} == {3}
    models = dict(zip(df["log"].map(lambda p: Path(p).parent.name), df["model"]))
    assert models == {
        "persona_responses-prompted": "charbench/smollm2+prompted",
        "persona_responses-steered": "charbench/smollm2+steered@0.5",
        "revealed_preferences-base": "charbench/smollm2",
        "revealed_preferences-prompted": "charbench/smollm2+prompted-sarcastic",
    }
    judges = {read_eval_log(p, header_only=True).eval.model_roles["judge"].model
              for p, t in zip(df["log"], df["task_name"]) if "revealed_preferences" in t}
    assert judges == {"charbench/smollm2"}


def test_charbench_run_exits_1_and_names_the_step_when_errors_pass_the_threshold(tmp_path, monkeypatch, capsys):
    from charbench import tasks
    from charbench.tasks.contract import TaskContract

    # register the tiny task as if it were a charbench task folder, so the whole command path runs
    monkeypatch.setattr(tasks, "tiny", runner_fixtures.tiny, raising=False)
    monkeypatch.setattr(tasks, "__all__", [*tasks.__all__, "tiny"])
    monkeypatch.setattr(runner, "_contract", lambda name: TaskContract(task=name, metrics=()))
    monkeypatch.setenv("CHARBENCH_TEST_FAIL_EVERY", "3")
    suite = write_suite(tmp_path, [{"task": "tiny", "variants": ["base"]}])
    args = ["run", "--suite", suite, "--model", "scheduled/model", "--log-dir", str(tmp_path / "runs"), "--display", "none"]
    assert main([*args, "--max-error-rate", "0.2"]) == 1
    captured = capsys.readouterr()
    assert "3 errored" in captured.out
    assert "step scheduled_model/tiny-base has 3/10 failed samples" in captured.err
    # the faults stop; running again retries only the errored samples and the step passes
    monkeypatch.delenv("CHARBENCH_TEST_FAIL_EVERY")
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CHARBENCH_TEST_CALLS", str(calls))
    assert main([*args, "--max-error-rate", "0.2"]) == 0
    assert sorted(int(n) for n in calls.read_text().split()) == [3, 6, 9]
    summary = json.loads((tmp_path / "runs" / runner.SUMMARY_NAME).read_text())
    assert [(s["step"], s["errored"], s["samples"]) for s in summary["steps"]] == [("scheduled_model/tiny-base", 0, 10)]


def test_a_task_without_a_scorer_has_nothing_unscored(tmp_path):
    from inspect_ai import Task

    def responses_only() -> Task:  # like persona_responses: data for a classifier, no score
        scored = runner_fixtures.tiny(n=3)
        return Task(dataset=scored.dataset, solver=scored.solver)

    result = runner.run_step(tiny_plan(tmp_path).steps[0], tmp_path, seed=0, display="none", max_error_rate=0.0,
                             task_factory=responses_only)
    assert (result.samples, result.errored, result.unscored, result.over_threshold) == (3, 0, 0, False)
