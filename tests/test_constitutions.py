import pytest
import yaml

from charbench.constitutions import builtin_names, load_constitution
from charbench.errors import ConstitutionError

VALID = {
    "name": "tester", "description": "A test persona.",
    "assertions": ["I test things."], "prompts": ["Test this?"],
    "values": [{"name": "rigor", "rank": 1, "description": "x"}, {"name": "speed", "rank": 2, "description": "y"},
               {"name": "fun", "rank": 2, "description": "z"}],
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


def test_user_constitution_by_path_keeps_ties(tmp_path):
    c = load_constitution(write(tmp_path, VALID))
    assert c.name == "tester" and [v.rank for v in c.values] == [1, 2, 2]


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
