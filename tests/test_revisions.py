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
