"""Every command checks its inputs before work starts and ends in one line naming the problem and the fix."""

from __future__ import annotations

import os

import pytest
from helpers import mock_model
from inspect_ai import eval as inspect_eval

from charbench.cli import _environment_defaults, build_parser, main
from charbench.errors import TaskParameterError


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("charbench: error: "), err
    assert "Traceback" not in err
    return err


def test_leaderboard_on_a_missing_or_empty_folder_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "dir"
    assert main(["leaderboard", str(missing)]) == 2
    err = one_error_line(capsys)
    assert "does not exist" in err and "Fix:" in err and not missing.exists() and not (tmp_path / "no").exists()
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", str(tmp_path / "empty")]) == 2
    assert "holds no Inspect logs" in one_error_line(capsys)
    assert list((tmp_path / "empty").iterdir()) == []


def test_leaderboard_output_that_cannot_be_written_is_named(tmp_path, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run.json").write_text("{}")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["leaderboard", str(logs), "--out", str(blocker)]) == 2
    assert "is a file" in one_error_line(capsys)
    assert main(["leaderboard", str(logs), "--out", str(blocker / "sub")]) == 2
    assert "is not writable" in one_error_line(capsys)


def test_compare_elo_and_classifier_on_a_missing_log(tmp_path, capsys):
    assert main(["compare-elo", str(tmp_path / "a.eval"), str(tmp_path / "b.eval"), "--out", str(tmp_path / "o")]) == 2
    err = one_error_line(capsys)
    assert "a.eval does not exist" in err and "Fix:" in err and "Errno" not in err
    assert main(["classifier", "train", "--logs", str(tmp_path / "train.eval"), "--out", str(tmp_path / "clf")]) == 2
    err = one_error_line(capsys)
    assert "train.eval does not exist" in err and "persona_responses" in err and not (tmp_path / "clf").exists()


def test_classifier_settings_are_checked_before_training(tmp_path, capsys):
    log = tmp_path / "train.eval"
    log.write_text("")
    blocker = tmp_path / "file"
    blocker.write_text("")
    base = ["classifier", "train", "--logs", str(log)]
    assert main([*base, "--out", str(blocker)]) == 2 and "is a file" in one_error_line(capsys)
    assert main([*base, "--out", str(tmp_path / "clf"), "--epochs", "0"]) == 2
    assert "--epochs 0 must be positive" in one_error_line(capsys)
    assert main([*base, "--out", str(tmp_path / "clf"), "--encoder", str(tmp_path / "no-encoder")]) == 2
    assert "neither minilm" in one_error_line(capsys)


def test_gate_with_missing_inputs_cannot_evaluate(tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: []\n")
    assert main(["gate", "--candidate", str(tmp_path / "cand"), "--rules", str(rules)]) == 2
    assert "--candidate" in one_error_line(capsys)
    (tmp_path / "cand").mkdir()
    assert main(["gate", "--candidate", str(tmp_path / "cand"), "--rules", str(tmp_path / "none.yaml")]) == 2
    assert "rules" in one_error_line(capsys)


def test_unexpected_failures_are_one_line_unless_debug(tmp_path, capsys, monkeypatch):
    import charbench.leaderboard.build as build

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(build, "build_leaderboard", broken)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run.json").write_text("{}")
    assert main(["leaderboard", str(logs)]) == 2
    err = one_error_line(capsys)
    assert "RuntimeError: boom second line" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["leaderboard", str(logs), "--debug"])


def test_hub_offline_mode_is_only_set_for_commands_that_never_need_the_hub(monkeypatch, tmp_path):
    parser = build_parser()
    cases = {
        ("run", "--suite", "smoke", "--model", "charbench/org/name"): False,
        ("classifier", "train", "--logs", "x", "--out", "y", "--encoder", "answerdotai/ModernBERT-base"): False,
        ("classifier", "train", "--logs", "x", "--out", "y"): True,  # the embedded encoder
        ("leaderboard", str(tmp_path)): True,
        ("models",): True,
    }
    for argv, offline in cases.items():
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        _environment_defaults(parser.parse_args(list(argv)))
        assert (os.environ.get("HF_HUB_OFFLINE") == "1") is offline, argv
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the user's own setting always wins
    _environment_defaults(parser.parse_args(["models"]))
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_break_character_without_a_classifier_says_how_to_get_one():
    with pytest.raises(TaskParameterError, match=r"-T classifier=<folder>.*charbench classifier train"):
        inspect_eval("charbench/break_character", model=mock_model("hi"), display="none")
