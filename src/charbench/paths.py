"""Where charbench keeps prepared models and caches (never inside the repository)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def charbench_home() -> Path:
    """Cache directory: ``$CHARBENCH_HOME``, else ``$XDG_CACHE_HOME/charbench``, else ``~/.cache/charbench``."""
    env = os.environ.get("CHARBENCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "charbench"


def data_path(*parts: str) -> Path:
    """Path of a data file shipped inside the package."""
    return Path(str(resources.files("charbench").joinpath("data", *parts)))
