"""Generation steps of the training stages, run through Inspect so they are logged, cached and resumable.

A step's settings are written to a JSON spec beside its logs; the step's task reads the spec back and checks its
hash, so a resumed step can never mix two settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charbench.errors import ModelPathError, TaskParameterError

if TYPE_CHECKING:
    from inspect_ai import Task
    from inspect_ai.log import EvalLog
    from inspect_ai.model import Model
    from inspect_ai.util import DisplayType


def settings_identity(settings: Any, model_fields: tuple[str, ...]) -> dict:
    """A stage's settings dataclass as plain data for its run key; a Model object (tests pass mockllm ones)
    stands as its name, so the key does not depend on the object."""
    from inspect_ai.model import Model

    out = {f.name: getattr(settings, f.name) for f in fields(settings)}
    for name in model_fields:
        out[name] = str(out[name]) if isinstance(out[name], Model) else out[name]
    return out

def write_spec(folder: Path, name: str, spec: dict) -> tuple[str, str]:
    """Write ``spec`` (unchanged files are left alone) and return its absolute path and SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(spec, sort_keys=True, indent=1).encode()
    path = folder / name
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return str(path.resolve()), hashlib.sha256(data).hexdigest()


def read_spec(spec_file: str, spec_sha256: str) -> dict:
    data = Path(spec_file).read_bytes()
    if hashlib.sha256(data).hexdigest() != spec_sha256:
        raise TaskParameterError(f"{spec_file} changed since this run started. Fix: use a new --out folder.")
    return json.loads(data)


def run_step(task_obj: Task, log_dir: Path, model: Model, roles: dict[str, Model] | None,
             display: DisplayType) -> EvalLog:
    """One eval set in its own folder: a finished one is read back, an interrupted one resumes with its
    finished samples kept."""
    from inspect_ai import eval_set
    from inspect_ai.log import read_eval_log

    _ok, logs = eval_set(task_obj, log_dir=str(log_dir), model=model, model_roles=roles or None, display=display,
                         fail_on_error=False, retry_attempts=1, retry_wait=1, log_dir_allow_dirty=False,
                         max_connections=8)
    return read_eval_log(logs[0].location)


def trained_checkpoint(model: str | Model, explicit: str | None, model_flag: str, checkpoint_flag: str,
                       folder_hint: str = "a folder written by save_pretrained") -> str:
    """The folder a stage trains: ``explicit`` if given, else the checkpoint of a ``charbench/`` model.

    Training never downloads, so a Hub id or another provider's model must come with its local folder.
    """
    from charbench.models.embedded import resolve_checkpoint

    if explicit:
        path = Path(explicit).expanduser()
        if not (path / "config.json").exists():
            raise ModelPathError(f"{checkpoint_flag} {explicit}: no checkpoint there (no config.json). "
                                 f"Fix: point at {folder_hint}.")
        return str(path.resolve())
    name = str(model)
    if not name.startswith("charbench/"):
        raise TaskParameterError(f"{model_flag} {name} is not a charbench/ model, so its weights are not known here. "
                                 f"Fix: pass {checkpoint_flag} <folder> with the same model's weights.")
    resolved = resolve_checkpoint(name.removeprefix("charbench/"))
    if not Path(resolved).exists():
        raise ModelPathError(f"{model_flag} {name}: '{resolved}' is not a local checkpoint, and training never "
                             f"downloads. Fix: give charbench//<folder> or {checkpoint_flag} <folder>.")
    return resolved
