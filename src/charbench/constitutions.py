"""Constitutions: a persona's first-person assertions, sample prompts and ordered values.

A constitution is a YAML file with keys ``name``, ``description``, ``assertions``, ``prompts`` and an
optional ``values`` list (``{name, rank, description}``; rank 1 is the highest priority). Ranks must be
distinct: value-conflict scenarios score whether the higher-ranked value wins, which a tie leaves undefined.
The 11 personas of Open Character Training ship with the package; users pass their own by path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from charbench.errors import ConstitutionError
from charbench.paths import data_path
from charbench.yamlio import load_yaml

REQUIRED_FIELDS = ("name", "description", "assertions", "prompts")
OPTIONAL_FIELDS = ("values",)
VALUE_FIELDS = ("name", "rank", "description")


@dataclass(frozen=True)
class Value:
    name: str
    rank: int
    description: str


@dataclass(frozen=True)
class Constitution:
    name: str
    description: str
    assertions: tuple[str, ...]
    prompts: tuple[str, ...]
    values: tuple[Value, ...] = field(default_factory=tuple)
    source: str = ""

    @property
    def traits_text(self) -> str:
        """The assertions as the bullet list the paper's teacher prompt inserts as ``{TRAITS}``."""
        return "\n".join(f"- {a}" for a in self.assertions)

    def value_rank(self, value: str) -> int:
        for v in self.values:
            if v.name == value:
                return v.rank
        raise ConstitutionError(
            f"value '{value}' is not among the values of constitution '{self.name}' "
            f"({', '.join(v.name for v in self.values) or 'it has none'}). "
            f"Use one of those names, or add the value to {self.source or 'the constitution file'}."
        )


def builtin_names() -> list[str]:
    return sorted(p.stem for p in data_path("constitutions").glob("*.yaml"))


def _fail(source: str, problem: str, fix: str) -> ConstitutionError:
    return ConstitutionError(f"{source}: {problem}. Fix: {fix}")


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def _string_list(raw: dict, key: str, source: str) -> tuple[str, ...]:
    items = raw[key]
    if not isinstance(items, list) or not items:
        raise _fail(source, f"field '{key}' must be a non-empty list of strings, got {items!r}",
                    f"give '{key}' at least one entry, e.g. '{key}:\\n  - \"...\"'")
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise _fail(source, f"entry {i} of '{key}' is not a non-empty string ({item!r})",
                        f"write each entry of '{key}' as a quoted sentence")
        # A repeated entry would be shown to judges and teachers twice and weigh double; spacing and case
        # differences are copy-paste slips, not distinct statements.
        norm = _normalised(item)
        if norm in first_seen:
            raise _fail(source, f"entries {first_seen[norm]} and {i} of '{key}' are the same text ({item.strip()!r})",
                        f"delete one of them, or reword it so that each entry of '{key}' says something different")
        first_seen[norm] = i
    return tuple(s.strip() for s in items)


def _values(raw_values: object, source: str) -> tuple[Value, ...]:
    if raw_values is None:
        return ()
    if not isinstance(raw_values, list):
        raise _fail(source, "field 'values' must be a list", "write 'values:' as a list of {name, rank, description}")
    out: list[Value] = []
    for i, item in enumerate(raw_values):
        if not isinstance(item, dict):
            raise _fail(source, f"values[{i}] is not a mapping", "write each value as {name: ..., rank: 1, description: ...}")
        unknown = set(item) - set(VALUE_FIELDS)
        missing = [k for k in ("name", "rank") if k not in item]
        if unknown:
            raise _fail(source, f"values[{i}] has unknown key(s) {sorted(unknown)}", f"allowed keys are {list(VALUE_FIELDS)}")
        if missing:
            raise _fail(source, f"values[{i}] is missing {missing}", "every value needs a name and an integer rank (1 = highest)")
        if isinstance(item["rank"], bool) or not isinstance(item["rank"], int) or item["rank"] < 1:
            raise _fail(source, f"values[{i}] rank {item['rank']!r} is not a positive integer", "use rank 1 for the highest priority, 2 for the next, and so on")
        out.append(Value(str(item["name"]), int(item["rank"]), str(item.get("description", ""))))
    names = [v.name for v in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(source, f"value(s) {dupes} appear more than once", "give each value a single entry")
    by_rank: dict[int, list[str]] = {}
    for v in out:
        by_rank.setdefault(v.rank, []).append(v.name)
    ties = {rank: names for rank, names in sorted(by_rank.items()) if len(names) > 1}
    if ties:
        listed = "; ".join(f"rank {rank}: {', '.join(names)}" for rank, names in ties.items())
        raise _fail(source, f"field 'values' gives two or more values the same rank ({listed}), so a conflict "
                            "between them has no stated winner and priority adherence is undefined for it",
                    "give every value its own rank (1 = highest, then 2, 3, ...), deciding which of the tied values "
                    "the persona would put first")
    return tuple(sorted(out, key=lambda v: v.rank))


def parse_constitution(raw: object, source: str) -> Constitution:
    """Validate a parsed YAML mapping; every problem names the file, the field and the fix."""
    if not isinstance(raw, dict):
        raise _fail(source, "the file is not a YAML mapping", f"start the file with the keys {list(REQUIRED_FIELDS)}")
    unknown = sorted(set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise _fail(source, f"unknown key(s) {unknown}",
                    f"allowed keys are {list(REQUIRED_FIELDS + OPTIONAL_FIELDS)}; check the spelling")
    for key in REQUIRED_FIELDS:
        if key not in raw:
            raise _fail(source, f"missing required field '{key}'", f"add '{key}:' (required fields: {list(REQUIRED_FIELDS)})")
    for key in ("name", "description"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise _fail(source, f"field '{key}' must be a non-empty string", f"write '{key}: \"...\"'")
    return Constitution(
        name=raw["name"].strip(),
        description=raw["description"].strip(),
        assertions=_string_list(raw, "assertions", source),
        prompts=_string_list(raw, "prompts", source),
        values=_values(raw.get("values"), source),
        source=source,
    )


def load_constitution(name_or_path: str | Path) -> Constitution:
    """Load a built-in persona by name (``"sarcastic"``) or a user's constitution by path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not (text.endswith((".yaml", ".yml")) or path.exists()):
        builtin = data_path("constitutions", f"{text}.yaml")
        if not builtin.exists():
            raise ConstitutionError(
                f"no constitution named '{text}'. Built-in personas: {', '.join(builtin_names())}; "
                "or pass the path of your own YAML file (see charbench/data/README.md)."
            )
        path = builtin
    if not path.exists():
        raise ConstitutionError(f"constitution file {path} does not exist. Check the path, or use a built-in name: {', '.join(builtin_names())}.")
    if path.is_dir():
        raise ConstitutionError(f"{path} is a directory, not a constitution file. Pass the path of one .yaml file.")
    # parse_constitution gives the schema-specific message for a non-mapping top level, so accept any object here.
    raw = load_yaml(path, "constitution file", expect=object, error=ConstitutionError,
                    fix="See charbench/data/README.md for the format.")
    return parse_constitution(raw, str(path))
