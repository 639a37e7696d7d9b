import pytest
import yaml

from charbench.constitutions import builtin_names, load_constitution
from charbench.errors import ConstitutionError

VALID = {
    "name": "tester", "description": "A test persona.",
    "assertions": ["I test things."], "prompts": ["Test this?"],
    "values": [{"name": "rigor", "rank": 1, "description": "x"}, {"name": "speed", "rank": 2, "description": "y"},
               {"name": "fun", "rank": 3, "description": "z"}],
}


def write(tmp_path, data):
    path = tmp_path / "persona.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_all_eleven_builtin_personas_load_with_values():
    names = builtin_names()
    assert len(names) == 11 and {"sarcastic", "flourishing", "misaligned"} <= set(names)
    for name in names:
        c = load_constitution(name)
        assert len(c.assertions) >= 10 and c.prompts and c.values
    assert load_constitution("flourishing").value_rank("honesty") < load_constitution("flourishing").value_rank("likability")


def test_user_constitution_by_path_orders_values_by_rank(tmp_path):
    c = load_constitution(write(tmp_path, VALID))
    assert c.name == "tester" and [v.name for v in c.values] == ["rigor", "speed", "fun"]


def test_builtin_value_ranks_are_distinct():
    for name in builtin_names():
        ranks = [v.rank for v in load_constitution(name).values]
        assert len(ranks) == len(set(ranks)), name


def test_tied_value_ranks_fail_naming_file_field_values_and_fix(tmp_path):
    values = [{"name": "rigor", "rank": 1}, {"name": "speed", "rank": 2}, {"name": "fun", "rank": 2}]
    path = write(tmp_path, {**VALID, "values": values})
    with pytest.raises(ConstitutionError) as err:
        load_constitution(path)
    message = str(err.value)
    assert str(path) in message and "'values'" in message and "rank 2: speed, fun" in message
    assert "Fix: give every value its own rank" in message


@pytest.mark.parametrize("field", ["assertions", "prompts"])
def test_duplicate_entries_fail_naming_both_positions(tmp_path, field):
    # Differences of case and spacing alone do not make a second entry distinct.
    entries = ["I test things.", "I check twice.", "i  test things."]
    path = write(tmp_path, {**VALID, field: entries})
    with pytest.raises(ConstitutionError) as err:
        load_constitution(path)
    message = str(err.value)
    assert str(path) in message and f"entries 0 and 2 of '{field}'" in message and "Fix: delete one" in message


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_non_utf8_file_fails_with_a_constitution_error(tmp_path, encoding):
    path = tmp_path / "persona.yaml"
    path.write_bytes(yaml.safe_dump({**VALID, "description": "Un persona déjà testé."}, allow_unicode=True).encode(encoding))
    with pytest.raises(ConstitutionError) as err:
        load_constitution(path)
    message = str(err.value)
    assert str(path) in message and "not UTF-8" in message and "save the file as UTF-8" in message


def test_boolean_rank_is_not_a_rank(tmp_path):
    values = [{"name": "rigor", "rank": True}]
    with pytest.raises(ConstitutionError, match=r"values\[0\] rank True is not a positive integer"):
        load_constitution(write(tmp_path, {**VALID, "values": values}))


@pytest.mark.parametrize("field", ["name", "description", "assertions", "prompts"])
def test_missing_field_names_file_field_and_fix(tmp_path, field):
    data = {k: v for k, v in VALID.items() if k != field}
    path = write(tmp_path, data)
    with pytest.raises(ConstitutionError) as err:
        load_constitution(path)
    message = str(err.value)
    assert str(path) in message and f"'{field}'" in message and "Fix:" in message


def test_empty_assertions_and_unknown_key_fail_clearly(tmp_path):
    with pytest.raises(ConstitutionError, match=r"'assertions' must be a non-empty list"):
        load_constitution(write(tmp_path, {**VALID, "assertions": []}))
    with pytest.raises(ConstitutionError, match=r"unknown key\(s\) \['trait'\]"):
        load_constitution(write(tmp_path, {**VALID, "trait": "x"}))


def test_unknown_value_names_value_and_constitution():
    with pytest.raises(ConstitutionError, match="'speed'.*'flourishing'"):
        load_constitution("flourishing").value_rank("speed")


def test_unknown_builtin_lists_the_choices():
    with pytest.raises(ConstitutionError, match="sarcastic"):
        load_constitution("no-such-persona")
