"""``charbench run --engine vllm``: which steps of a plan run on the vLLM engine of the ``charbench/`` provider.

Every ``charbench/`` model of a step (the model under test, an opponent, the judge) gets ``engine=vllm`` and the
``--engine-arg`` settings, except the steered variant: steering needs forward hooks that vLLM does not offer, so
steered models stay on the transformers engine, and the dry run shows that per step (``model_args`` without
``engine``). Models of other providers are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from charbench.errors import CharbenchError

ENGINE_CHOICES = ("transformers", "vllm")


def parse_engine_args(values: Iterable[str] | None) -> dict[str, Any]:
    """``--engine-arg KEY=VALUE`` options; values are read as YAML scalars (0.5, 2, true, bfloat16)."""
    import yaml

    args: dict[str, Any] = {}
    for value in values or ():
        key, sep, raw = value.partition("=")
        if not sep or not key.strip() or not key.strip().isidentifier():
            raise CharbenchError(f"--engine-arg {value!r} is not KEY=VALUE; write e.g. --engine-arg "
                                 "tensor_parallel_size=2 or --engine-arg gpu_memory_utilization=0.85")
        try:
            args[key.strip()] = yaml.safe_load(raw.strip()) if raw.strip() else raw
        except yaml.YAMLError:
            args[key.strip()] = raw.strip()
    return args


def apply_engine(specs: Iterable[Any], engine: str, engine_args: dict[str, Any]) -> int:
    """Put ``engine`` and its arguments on every ``charbench/`` model spec that can use it; returns how many.

    ``specs`` are the plan's ModelSpecs (a judge shared by every step counts once).
    """
    if engine not in ENGINE_CHOICES:
        raise CharbenchError(f"--engine {engine!r}; choose one of {ENGINE_CHOICES}")
    if engine == "transformers":
        if engine_args:
            raise CharbenchError("--engine-arg is for --engine vllm; the transformers engine takes no engine arguments")
        return 0
    seen: set[int] = set()
    for spec in specs:
        if id(spec) in seen or not spec.is_charbench or spec.args.get("method") == "steered":
            continue
        seen.add(id(spec))
        spec.args.update({"engine": engine, **engine_args})
    return len(seen)
