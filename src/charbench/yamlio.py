"""One YAML loader for every user-editable or shipped YAML file.

Each caller keeps its own schema checks; this module only turns the ways a file can fail to become a Python
object (missing, a directory, not UTF-8, bad syntax, wrong top-level type) into one CharbenchError that names the
file and the fix. It imports nothing heavy so that contracts and the CLI's argument parsing stay torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from charbench.errors import CharbenchError


def load_yaml(
    path: str | Path,
    what: str,
    *,
    expect: type | tuple[type, ...] = dict,
    fix: str = "",
    error: type[CharbenchError] = CharbenchError,
) -> Any:
    """Parse ``path`` as YAML and return its top-level object.

    ``what`` names the file's role in messages ("suite", "gate rules file"); ``fix`` is appended to every message
    (for example where the schema is documented). ``error`` lets a caller keep its own CharbenchError subclass so
    that existing ``except`` clauses still match.
    """
    p = Path(path).expanduser()
    hint = f" {fix}" if fix else ""
    if not p.exists():
        raise error(f"{what} {p} does not exist. Check the path.{hint}")
    if p.is_dir():
        raise error(f"{what} {p} is a directory; pass the path of one .yaml file.{hint}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} cannot be decoded). "
            "Fix: save the file as UTF-8 (in most editors: 'Save with encoding' > UTF-8), or check that the path "
            f"points at the YAML file and not at a binary file.{hint}"
        ) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {p}: not valid YAML ({exc}). Fix the syntax; quote strings that contain ':'.{hint}") from exc
    if not isinstance(raw, expect):
        wanted = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
        wanted = {"dict": "a mapping (key: value lines)", "list": "a list ('- ' items)"}.get(wanted, wanted)
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise error(f"{what} {p}: the top level must be {wanted}, got {got}.{hint}")
    return raw
