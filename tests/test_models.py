import pytest
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, get_model

from charbench.cli import main
from charbench.errors import ModelPathError
from charbench.models.embedded import prepare_smollm2, resolve_checkpoint
from helpers import mock_model


def test_preparation_converts_once_then_reuses_the_cache(tmp_path):
    first = prepare_smollm2(tmp_path)
    marker = first / "charbench-prepared.json"
    weights = first / "model.safetensors"
    assert marker.exists() and weights.stat().st_size > 100_000_000
    stamps = weights.stat().st_mtime_ns, marker.stat().st_mtime_ns
    again = prepare_smollm2(tmp_path)
    assert again == first and (weights.stat().st_mtime_ns, marker.stat().st_mtime_ns) == stamps  # nothing rewritten
    (weights).unlink()
    marker.unlink()  # an interrupted conversion leaves no marker: the next call converts again
    assert prepare_smollm2(tmp_path) == first and weights.exists()


def test_missing_checkpoint_path_is_an_error_not_a_hub_call(tmp_path):
    with pytest.raises(ModelPathError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "no-such-ckpt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelPathError, match="no config.json"):
        resolve_checkpoint(str(tmp_path / "empty"))


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["constitutions", "validate", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["constitutions", "validate", "sarcastic"]) == 0


def test_provider_prefill_variants_and_distinct_identities():
    base = get_model("charbench/smollm2")
    prompted = get_model("charbench/smollm2", persona="sarcastic")
    api = base.api
    open_turn = api.render([ChatMessageUser(content="Hi")])
    prefilled = api.render([ChatMessageUser(content="Hi"), ChatMessageAssistant(content="Well, well")])
    assert open_turn.endswith("<|im_start|>assistant\n")
    assert prefilled.endswith("<|im_start|>assistant\nWell, well")  # continued, not closed
    assert "sharp wit" in prompted.api.render([ChatMessageUser(content="Hi")]) and "sharp wit" not in open_turn
    assert {base.name, prompted.name} == {"smollm2", "smollm2+prompted-sarcastic"}


def test_tasks_resolve_through_the_inspect_entry_point():
    log = inspect_eval("charbench/revealed_preferences", model=mock_model("ok"),
                       model_roles={"judge": mock_model("<answer>warm</answer>")},
                       task_args={"traits": ["warm", "cold"], "n_matches": 2, "judge_method": "generative"}, display="none")[0]
    assert log.status == "success" and log.eval.task == "charbench/revealed_preferences"


async def _twice(model, prompt, config):
    first = await model.generate(prompt, config=config)
    second = await model.generate(prompt, config=config)
    return first.completion, second.completion


def test_temperature_zero_means_greedy_on_the_provider():
    import asyncio

    from inspect_ai.model import GenerateConfig

    model = get_model("charbench/smollm2")
    a, b = asyncio.run(_twice(model, "Name a colour.", GenerateConfig(temperature=0.0, max_tokens=8)))
    assert a and a == b


def test_cli_run_with_a_missing_checkpoint_fails_with_the_fix(tmp_path, capsys):
    code = main(["run", "--suite", "smoke", "--model", f"charbench/{tmp_path}/no-such-ckpt",
                 "--log-dir", str(tmp_path / "logs"), "--display", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Fix:" in err
