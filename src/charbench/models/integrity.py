"""Size and SHA-256 records for cached artefacts (prepared checkpoints, steering vectors).

A cache that was written completely but damaged later (a truncated download, a full disk, a stray edit)
must not be loaded: safetensors would fail with a traceback, or worse, a same-sized corruption would load
and change every number. Each artefact gets a record written after it; a load checks the record first and
raises :class:`CacheIntegrityError` naming the file, what differs and the command that rebuilds it.

The size is compared on every load (free). The hash is recomputed when the file's modification time differs
from the recorded one, and always by ``verify(..., full=True)`` (``charbench models`` does that), since
hashing a 540 MB checkpoint on every model load would cost about a second each time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from charbench.errors import CacheIntegrityError


def describe(path: Path) -> dict[str, Any]:
    """Size, modification time and SHA-256 of a file."""
    stat = path.stat()
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}


def describe_folder(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """``describe`` for every regular file directly in ``folder`` (except ``skip``), by file name."""
    return {p.name: describe(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


def check(path: Path, expected: dict[str, Any], fix: str, full: bool = False) -> None:
    """Raise CacheIntegrityError if ``path`` is missing or differs from ``expected`` (see the module doc)."""
    if not path.is_file():
        raise CacheIntegrityError(f"cached file {path} is missing. Fix: {fix}")
    stat = path.stat()
    if stat.st_size != expected["size"]:
        raise CacheIntegrityError(
            f"cached file {path} is damaged: {stat.st_size} bytes, {expected['size']} when it was written. Fix: {fix}")
    if full or stat.st_mtime_ns != expected.get("mtime_ns"):
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if digest != expected["sha256"]:
            raise CacheIntegrityError(
                f"cached file {path} is damaged: its SHA-256 differs from the one recorded when it was written. "
                f"Fix: {fix}")


def check_folder(folder: Path, files: dict[str, dict[str, Any]], fix: str, full: bool = False) -> None:
    for name, expected in files.items():
        check(folder / name, expected, fix, full=full)


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def record_file(path: Path) -> None:
    """Write ``<file>.sha256.json`` next to a cache file (after the file itself is complete)."""
    sidecar(path).write_text(json.dumps(describe(path)))


def verified_file(path: Path, fix: str, full: bool = False) -> bool:
    """True if ``path`` matches its sidecar record; False if it has none (an older cache: recompute it).

    Raises CacheIntegrityError when the record exists and the file does not match it, or the record itself
    cannot be read.
    """
    record = sidecar(path)
    if not record.exists():
        return False
    try:
        expected = json.loads(record.read_text())
        expected["size"], expected["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheIntegrityError(f"the integrity record {record} is unreadable ({exc}). Fix: {fix}") from exc
    check(path, expected, fix, full=full)
    return True
