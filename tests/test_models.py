import pytest
from helpers import mock_model
from inspect_ai import eval as inspect_eval
from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, get_model

from charbench.cli import main
from charbench.errors import ModelPathError
from charbench.models.embedded import prepare_smollm2, resolve_checkpoint


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


# -- cache integrity -------------------------------------------------------------------------------------


def _fake_prepared_smollm2(home):
    """A prepared-model folder as prepare_smollm2 leaves it (tiny weights, real marker), without the 20 s conversion."""
    from tiny_model import save_tiny_checkpoint

    from charbench.models.embedded import smollm2_dir, write_marker

    target = save_tiny_checkpoint(smollm2_dir(home))
    write_marker(target, {"source": "test"})
    return target


def test_damaged_prepared_model_is_refused_with_the_rebuild_command(tmp_path):
    import os

    from charbench.errors import CacheIntegrityError

    target = _fake_prepared_smollm2(tmp_path)
    assert prepare_smollm2(tmp_path) == target and prepare_smollm2(tmp_path, verify=True) == target
    weights = target / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(CacheIntegrityError, match=r"model.safetensors is damaged: \d+ bytes.*charbench models --force"):
        prepare_smollm2(tmp_path)
    stat = weights.stat()
    flipped = bytearray(original)
    flipped[-10] ^= 0xFF
    weights.write_bytes(bytes(flipped))  # same size, new mtime: the hash is checked
    with pytest.raises(CacheIntegrityError, match="SHA-256 differs.*charbench models --force"):
        prepare_smollm2(tmp_path)
    marker_mtime = (target / "charbench-prepared.json").stat().st_mtime_ns
    recorded = __import__("json").loads((target / "charbench-prepared.json").read_text())["files"]["model.safetensors"]
    os.utime(weights, ns=(stat.st_atime_ns, recorded["mtime_ns"]))  # same size and mtime: only a full check sees it
    assert prepare_smollm2(tmp_path) == target
    with pytest.raises(CacheIntegrityError, match="SHA-256"):
        prepare_smollm2(tmp_path, verify=True)
    assert (target / "charbench-prepared.json").stat().st_mtime_ns == marker_mtime  # nothing rewritten silently


def test_damaged_cache_stops_the_provider_and_the_cli_in_one_line(tmp_path, monkeypatch, capsys):
    from charbench.errors import CacheIntegrityError

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    target = _fake_prepared_smollm2(tmp_path)
    (target / "tokenizer.json").write_text("{}")
    with pytest.raises(CacheIntegrityError, match="tokenizer.json"):
        get_model("charbench/smollm2", memoize=False)
    capsys.readouterr()  # drop the fixture's save progress bars
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tokenizer.json" in err and "charbench models --force" in err


def test_a_marker_without_sizes_and_hashes_is_converted_again(tmp_path, monkeypatch):
    from charbench.models import embedded

    target = _fake_prepared_smollm2(tmp_path)
    (target / "charbench-prepared.json").write_text('{"source": "older charbench"}')
    converted = []
    monkeypatch.setattr(embedded, "_convert", lambda t, m: converted.append(t) or t)
    assert prepare_smollm2(tmp_path) == target and converted == [target]
    (target / "charbench-prepared.json").write_text("{not json")
    with pytest.raises(Exception, match="unreadable.*charbench models --force"):
        prepare_smollm2(tmp_path)


# -- loading safety --------------------------------------------------------------------------------------


def test_pickle_only_checkpoints_need_an_explicit_opt_in(tmp_path):
    import torch
    from tiny_model import save_tiny_checkpoint

    from charbench.errors import UnsafeWeightsError

    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    reference = get_model(f"charbench/{ckpt}", memoize=False).api.model.state_dict()
    (ckpt / "model.safetensors").unlink()
    torch.save(reference, ckpt / "pytorch_model.bin")
    with pytest.raises(UnsafeWeightsError, match=r"pytorch_model.bin.*-M allow_pickle=true"):
        get_model(f"charbench/{ckpt}", memoize=False)
    with pytest.raises(Exception, match="allow_pickle='maybe' is not a boolean"):
        get_model(f"charbench/{ckpt}", memoize=False, allow_pickle="maybe")
    loaded = get_model(f"charbench/{ckpt}", memoize=False, allow_pickle="true").api.model.state_dict()
    assert all(torch.equal(loaded[k], reference[k]) for k in reference)


def test_remote_code_in_a_checkpoint_is_not_run_by_default(tmp_path):
    import json

    from tiny_model import save_tiny_checkpoint

    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    sentinel = tmp_path / "remote-code-ran"
    (ckpt / "evil.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n"
                                  "from transformers import LlamaForCausalLM as EvilModel\n")
    config = json.loads((ckpt / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "evil.EvilModel", "AutoConfig": "evil.EvilModel"}
    (ckpt / "config.json").write_text(json.dumps(config))
    try:
        get_model(f"charbench/{ckpt}", memoize=False)
    except Exception as exc:  # refusing to load is as good as loading without the code; running it is not
        assert "trust_remote_code" in str(exc)
    assert not sentinel.exists()


def test_steered_variants_generate_with_a_repetition_penalty(tmp_path, monkeypatch):
    from tiny_model import save_tiny_checkpoint

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path / "home"))
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    steered = get_model(f"charbench/{ckpt}", memoize=False, method="steered", persona="sarcastic", steer_pairs=2).api
    assert steered.model.generation_config.repetition_penalty == 1.1  # the paper's reference setting
    assert steered.model_name.endswith("+steered-sarcastic@0.5")  # the default is not spelled out in the name
    plain = get_model(f"charbench/{ckpt}", memoize=False, method="steered", persona="sarcastic", steer_pairs=2,
                      repetition_penalty=1.0).api
    assert plain.model.generation_config.repetition_penalty == 1.0 and plain.model_name.endswith("+rp1")
    base = get_model(f"charbench/{ckpt}", memoize=False).api
    assert base.repetition_penalty is None and base.model.generation_config.repetition_penalty in (None, 1.0)
    custom = get_model(f"charbench/{ckpt}", memoize=False, repetition_penalty="1.3").api
    assert custom.model.generation_config.repetition_penalty == 1.3 and custom.model_name.endswith("+rp1.3")
    with pytest.raises(Exception, match="positive number"):
        get_model(f"charbench/{ckpt}", memoize=False, repetition_penalty="-1")


def test_yaml_is_only_ever_safe_loaded():
    # yaml.load with the default or full Loader can build arbitrary Python objects from a suite or rule file.
    import re
    from pathlib import Path

    import charbench

    root = Path(charbench.__file__).parent
    unsafe = re.compile(r"yaml\.(load|load_all|unsafe_load|full_load|full_load_all)\(|Loader\s*=\s*yaml\.(Unsafe|Full)?Loader")
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if unsafe.search(line)]
    assert offenders == [], f"use yaml.safe_load: {offenders}"
    assert any("yaml.safe_load" in p.read_text() for p in root.rglob("*.py"))
