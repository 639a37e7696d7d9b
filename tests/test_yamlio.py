"""The shared YAML loader: every way a file can fail names the file and the fix, and callers keep their error types."""

from __future__ import annotations

import pytest

from charbench.constitutions import load_constitution
from charbench.errors import CharbenchError, ConstitutionError, TaskParameterError
from charbench.evals.suites import load_suite
from charbench.leaderboard.gate import load_rules
from charbench.yamlio import load_yaml


def test_reads_a_mapping(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("a: 1\nb: [x, y]\n", encoding="utf-8")
    assert load_yaml(p, "test file") == {"a": 1, "b": ["x", "y"]}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"a: [1, 2\n", "not valid YAML"),
        (b"a: \xff\xfe\n", "not UTF-8"),
        (b"- 1\n- 2\n", "must be a mapping"),
        (b"", "got an empty file"),
    ],
)
def test_bad_file_names_file_and_fix(tmp_path, content, needle):
    p = tmp_path / "bad.yaml"
    p.write_bytes(content)
    with pytest.raises(CharbenchError, match=needle) as info:
        load_yaml(p, "test file", fix="See the docs.")
    assert str(p) in str(info.value)
    assert "See the docs." in str(info.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(CharbenchError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml", "test file")
    with pytest.raises(CharbenchError, match="is a directory"):
        load_yaml(tmp_path, "test file")


def test_expect_list_and_custom_error(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("a: 1\n", encoding="utf-8")
    with pytest.raises(TaskParameterError, match=r"must be a list"):
        load_yaml(p, "test file", expect=list, error=TaskParameterError)


def test_callers_use_the_shared_messages(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"x: \xff\n")
    with pytest.raises(ConstitutionError, match="constitution file .*not UTF-8"):
        load_constitution(bad)
    with pytest.raises(CharbenchError, match="suite .*not UTF-8"):
        load_suite(str(bad))
    with pytest.raises(CharbenchError, match="gate rules file .*not UTF-8.*docs/ci.md"):
        load_rules(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n", encoding="utf-8")
    # The constitution keeps its own schema message for a non-mapping top level.
    with pytest.raises(ConstitutionError, match="not a YAML mapping"):
        load_constitution(listed)
    with pytest.raises(CharbenchError, match="top level must be a mapping.*docs/ci.md"):
        load_rules(listed)


SUITE = "name: s\nversion: 1\npersonas: [sarcastic]\nclassifier: {}\nsteer_coef: 0.5\ngenerate: {}\ntasks: []\n"


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("version: 1", "version: one", "version must be a positive integer"),
        ("personas: [sarcastic]", "personas: sarcastic", "personas must be a non-empty list"),
        ("steer_coef: 0.5", "steer_coef: high", "steer_coef must be a number"),
        ("generate: {}", "generate: [1]", "generate must be a mapping"),
        ("tasks: []", "tasks: [coherence]", "tasks must be a list of mappings"),
        ("tasks: []", "tasks: []\nmax_connections: 0", "max_connections must be a positive integer"),
    ],
)
def test_suite_fields_are_checked(tmp_path, old, new, needle):
    good = tmp_path / "good.yaml"
    good.write_text(SUITE, encoding="utf-8")
    assert load_suite(str(good)).personas == ["sarcastic"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(SUITE.replace(old, new), encoding="utf-8")
    with pytest.raises(CharbenchError, match=needle):
        load_suite(str(bad))
