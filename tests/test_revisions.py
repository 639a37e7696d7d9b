"""Hub data revisions: where a step's revision comes from, and the errors that name the option that fixes it."""

import pytest

from charbench.errors import CharbenchError, TaskParameterError
from charbench.evals.revisions import check_hub_data, check_unused, parse_revision_options, step_hub_data
from charbench.tasks.contract import TaskContract, contract_for

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_revision_options_are_parsed_and_malformed_ones_refused():
    assert parse_revision_options([f"allenai/WildChat-1M={SHA}", "cais/mmlu=v1.0"]) == {
        "allenai/WildChat-1M": SHA, "cais/mmlu": "v1.0"}
    for bad in ("wildchat=abc", "allenai/WildChat-1M", "allenai/WildChat-1M="):
        with pytest.raises(CharbenchError, match="REPO=REVISION"):
            parse_revision_options([bad])


def test_entry_beats_command_line_beats_suite_and_offline_data_reads_nothing():
    args = {"prompt_set": "wildchat"}
    (data,) = step_hub_data(args, None, {"allenai/WildChat-1M": "cli"}, {"allenai/WildChat-1M": "suite"})
    assert (data.revision, data.origin, data.argument) == ("cli", "--revision", "prompt_revision")
    (data,) = step_hub_data({**args, "prompt_revision": "own"}, None, {"allenai/WildChat-1M": "cli"}, {})
    assert (data.revision, data.origin) == ("own", "entry")
    (data,) = step_hub_data(args, None, {}, {"allenai/WildChat-1M": "suite"})
    assert data.origin == "suite"
    (data,) = step_hub_data({"prompt_set": "lima"}, None, {}, {})
    assert data.origin == "pinned" and data.revision
    assert step_hub_data({"prompt_set": "offline"}, "allenai/ai2_arc", {}, {}) == []
    assert step_hub_data({"source": "fixtures"}, "allenai/ai2_arc", {}, {}) == []


def test_a_missing_or_floating_revision_names_the_option():
    (missing,) = step_hub_data({"source": "hub"}, "allenai/ai2_arc", {}, {})
    assert missing.origin == "missing" and missing.argument == "revision"
    with pytest.raises(CharbenchError, match=r"--revision allenai/ai2_arc=<commit sha>"):
        check_hub_data("m/arc_challenge-base", [missing])
    (floating,) = step_hub_data({"source": "hub", "revision": "main"}, "allenai/ai2_arc", {}, {})
    with pytest.raises(CharbenchError, match="branch 'main', which moves"):
        check_hub_data("m/arc_challenge-base", [floating])


def test_an_unused_revision_is_refused_with_what_the_suite_reads():
    check_unused({"cais/mmlu": SHA}, {"cais/mmlu"})
    with pytest.raises(CharbenchError, match=r"allenai/WildChat1M, which no step .* reads: cais/mmlu"):
        check_unused({"allenai/WildChat1M": SHA}, {"cais/mmlu"})


def test_capability_contracts_name_their_hub_dataset_and_keep_it_in_the_log():
    contract = contract_for("arc_challenge")
    assert contract is not None and contract.hub_dataset == "allenai/ai2_arc"
    assert TaskContract.from_metadata(contract.to_metadata()).hub_dataset == "allenai/ai2_arc"


def test_prompt_revision_reaches_the_prompt_loader_and_is_refused_for_shipped_prompts():
    from charbench.tasks.revealed_preferences.task import revealed_preferences

    with pytest.raises(TaskParameterError, match="only applies to Hub prompt sets"):
        revealed_preferences(n_matches=2, prompt_revision=SHA)


# -- the paper suite as a user with the Hub and GPUs would plan it -------------------------------------------------
PAPER_HUB = ("allenai/WildChat-1M", "LDJnr/Pure-Dove", "truthfulqa/truthful_qa", "allenai/winogrande", "Rowan/hellaswag",
             "allenai/ai2_arc", "cais/mmlu")


def _paper(tmp_path, *extra):
    from charbench.cli import main

    return main(["run", "--suite", "paper", "--model", "charbench/smollm2", "--judge", "openai/gpt-5-mini",
                 "--log-dir", str(tmp_path / "runs"), "--dry-run", *extra])


def test_paper_suite_without_revisions_is_refused_naming_the_option(tmp_path, capsys, no_model_loading):
    # the dry run shows the plan and names every missing revision with the option that pins it ...
    assert _paper(tmp_path) == 0
    out = capsys.readouterr().out
    assert "hub data: allenai/WildChat-1M@MISSING" in out
    assert "7 Hub datasets have no revision" in out and "--revision cais/mmlu=<commit sha>" in out
    # ... and the run refuses before it writes anything
    from charbench.cli import main

    code = main(["run", "--suite", "paper", "--model", "charbench/smollm2", "--judge", "openai/gpt-5-mini",
                 "--log-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "runs").exists()
    assert "allenai/WildChat-1M" in err and "--revision allenai/WildChat-1M=<commit sha>" in err
    assert len(err.strip().splitlines()) == 1


def test_paper_suite_dry_run_lists_steps_models_judge_data_and_revisions(tmp_path, capsys, no_model_loading):
    from charbench.evals import runner
    from charbench.evals.suites import load_suite

    options = [f"--revision={repo}={SHA}" for repo in PAPER_HUB]
    assert _paper(tmp_path, *options, "--engine", "vllm", "--engine-arg", "dtype=bfloat16") == 0
    out = capsys.readouterr().out
    assert not (tmp_path / "runs").exists(), "a dry run writes nothing"
    steps = runner.plan_suite(load_suite("paper"), ["charbench/smollm2"], tmp_path / "runs").steps
    assert len(steps) == 18 and all(f"- {s.name}  [" in out for s in steps)
    assert "judge: openai/gpt-5-mini (named" in out
    for repo in PAPER_HUB:
        assert f"hub data: {repo}@{SHA}" in out, repo
    assert "every Hub dataset has a fixed revision" in out
    # base and prompted variants run on the vLLM engine; steered stays on transformers, visibly, step by step
    models = [line for line in out.splitlines() if line.strip().startswith("model: ")]
    assert models and all(('"engine": "vllm"' in m) != ("+steered" in m) for m in models)
    assert '"dtype": "bfloat16"' in out


def test_a_suite_can_pin_its_own_revisions(tmp_path):
    from charbench.evals.revisions import check_plan_revisions, pin_revisions
    from charbench.evals.runner import plan_suite
    from charbench.evals.suites import load_suite

    suite = load_suite("paper")
    suite.revisions = {repo: SHA for repo in PAPER_HUB}
    plan = plan_suite(suite, ["charbench/smollm2"], tmp_path)
    pin_revisions(plan, {"cais/mmlu": "v2"})
    check_plan_revisions(plan)
    mmlu = next(s for s in plan.steps if s.task == "mmlu")
    assert mmlu.task_args["revision"] == "v2"  # the command line beats the suite
    assert all(s.task_args.get("prompt_revision") == SHA for s in plan.steps if s.task == "break_character")


def test_engine_arguments_are_parsed_and_only_go_with_the_vllm_engine():
    from charbench.evals.engines import apply_engine, parse_engine_args
    from charbench.evals.runner import ModelSpec

    assert parse_engine_args(["tensor_parallel_size=2", "gpu_memory_utilization=0.85", "dtype=bfloat16"]) == {
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.85, "dtype": "bfloat16"}
    with pytest.raises(CharbenchError, match="KEY=VALUE"):
        parse_engine_args(["tensor_parallel_size"])
    with pytest.raises(CharbenchError, match="is for --engine vllm"):
        apply_engine([], "transformers", {"dtype": "bfloat16"})
    judge = ModelSpec("charbench/smollm2")
    specs = [ModelSpec("charbench/smollm2", {"method": "steered"}), judge, judge, ModelSpec("openai/gpt-5-mini")]
    assert apply_engine(specs, "vllm", {"dtype": "bfloat16"}) == 1
    assert judge.args == {"engine": "vllm", "dtype": "bfloat16"} and "engine" not in specs[0].args
