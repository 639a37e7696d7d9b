"""Exact LoRA merges: W' = W + sum_i w_i * scaling_i * B_i A_i, written as a full checkpoint.

The paper's release model is the DPO adapter at weight 1.0 plus the introspection adapter at 0.25. PEFT's
``add_weighted_adapter(..., combination_type="linear")`` scales and sums the A and the B matrices separately,
so its product carries cross terms (B_dpo A_sft + B_sft A_dpo) that neither adapter learned. Here each
adapter's own delta comes from PEFT (``get_delta_weight``: scaling, rank/alpha patterns and fan-in/fan-out
layouts as PEFT defines them), and the deltas are weighted and summed in float32 before one cast back to
the checkpoint's dtype. Folding one adapter at 1.0 is the same call with one adapter.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from charbench.errors import ModelPathError, TaskParameterError

_PREFIX = "base_model.model."


def _check_inputs(base: Path, adapters: list[tuple[Path, float]]) -> None:
    from peft import PeftConfig

    if not (base / "config.json").exists():
        raise ModelPathError(f"base checkpoint {base} has no config.json. Fix: point at a folder written by save_pretrained.")
    if not adapters:
        raise TaskParameterError("no adapters to merge. Fix: give at least one (adapter folder, weight).")
    for path, weight in adapters:
        if not (path / "adapter_config.json").exists():
            raise ModelPathError(f"adapter {path} has no adapter_config.json. Fix: point at a folder written by a PEFT "
                                 "model's save_pretrained (a training run's adapter/ folder).")
        if not math.isfinite(weight):
            raise TaskParameterError(f"adapter weight {weight!r} for {path} is not a finite number.")
        config = PeftConfig.from_pretrained(str(path))
        if str(config.peft_type).rsplit(".", 1)[-1] != "LORA":
            raise TaskParameterError(f"{path} is a {config.peft_type} adapter; only LoRA adapters merge as B A deltas.")
        if getattr(config, "use_dora", False):
            raise TaskParameterError(f"{path} is a DoRA adapter, whose magnitude vector does not combine linearly. "
                                     "Fix: merge it alone with PEFT's merge_and_unload.")
        if getattr(config, "modules_to_save", None):
            raise TaskParameterError(f"{path} replaces whole modules ({config.modules_to_save}); a weighted sum of "
                                     "replacements is undefined. Fix: train without modules_to_save.")


def merge_adapters(base: str | Path, adapters: list[tuple[str | Path, float]], out: str | Path,
                   tokenizer_from: str | Path | None = None) -> Path:
    """Write ``base`` plus the weighted sum of the adapters' deltas to ``out`` (a loadable checkpoint).

    ``out`` appears only when complete (written beside it, then renamed). Raises when an adapter touches no
    module of the base or a tied weight (the delta would silently change the tied twin as well).
    """
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    base, out = Path(base), Path(out)
    pairs = [(Path(p), float(w)) for p, w in adapters]
    _check_inputs(base, pairs)
    if out.exists():
        raise TaskParameterError(f"merge output {out} already exists. Fix: remove it or choose another folder.")
    saved_dtype = getattr(AutoConfig.from_pretrained(base), "dtype", None) or torch.float32
    if isinstance(saved_dtype, str):
        saved_dtype = getattr(torch, saved_dtype)
    # float32 throughout, so the sum is not rounded adapter by adapter in bf16.
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    names = [f"adapter{i}" for i in range(len(pairs))]
    try:
        peft_model = PeftModel.from_pretrained(model, str(pairs[0][0]), adapter_name=names[0])
        for name, (path, _) in zip(names[1:], pairs[1:]):
            peft_model.load_adapter(str(path), adapter_name=name)
    except ValueError as exc:
        raise TaskParameterError(f"an adapter does not fit base {base}: {exc}. Fix: merge adapters trained on this "
                                 "architecture.") from exc
    deltas: dict[str, torch.Tensor] = {}
    touched = {name: 0 for name in names}
    with torch.no_grad():
        for module_name, module in peft_model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            for name, (_, weight) in zip(names, pairs):
                if name in module.lora_A or name in getattr(module, "lora_embedding_A", {}):
                    delta = weight * module.get_delta_weight(name).float()  # type: ignore[attr-defined]
                    key = module_name.removeprefix(_PREFIX)
                    deltas[key] = deltas[key] + delta if key in deltas else delta
                    touched[name] += 1
    untouched = [str(path) for name, (path, _) in zip(names, pairs) if not touched[name]]
    if untouched:
        raise TaskParameterError(f"adapters {untouched} adapt no module of {base}. Fix: merge adapters trained on it.")
    merged = peft_model.unload()
    tied = {id(p) for p in (getattr(merged.get_input_embeddings(), "weight", None),
                            getattr(merged.get_output_embeddings(), "weight", None)) if p is not None}
    with torch.no_grad():
        for key, delta in deltas.items():
            param = merged.get_submodule(key).weight
            if len(tied) == 1 and id(param) in tied:
                raise TaskParameterError(f"an adapter changes {key}, whose weight is tied to the embeddings; merging would "
                                         "change both. Fix: train adapters without the embedding/output layers.")
            param.add_(delta.to(param.device))
    merged = merged.to(saved_dtype)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging)
    AutoTokenizer.from_pretrained(tokenizer_from or base).save_pretrained(staging)
    staging.rename(out)
    return out


def fold_adapter(base: str | Path, adapter: str | Path, out: str | Path, weight: float = 1.0) -> Path:
    """One adapter folded in at ``weight`` (1.0: the plain merged fine-tune)."""
    return merge_adapters(base, [(adapter, weight)], out)
