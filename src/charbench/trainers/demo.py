"""The demo's trained variant: the embedded model distilled toward one persona at a size a 2-core CPU trains in
minutes, cached in ``$CHARBENCH_HOME/demo`` so a second demo trains nothing.

It runs the real ``charbench train distill`` stage (the embedded model as teacher, with the constitution in its
system prompt, and as student) with the paper's DPO hyperparameters except the scale: few prompts, short replies,
a few optimizer steps. At that size the checkpoint is a working example of the pipeline, not a trained
character; its card says how it was made. The 135M teacher seldom finishes a reply within a short budget, so cut
replies are kept (``keep_truncated``, counted in the card).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from charbench.paths import charbench_home
from charbench.trainers.config import CharacterDPOConfig, LoraSettings
from charbench.trainers.distill import DistillSettings

if TYPE_CHECKING:
    from inspect_ai.util import DisplayType

    from charbench.evals.suites import Suite

DEMO_VARIANT = "sarcastic-dpo"
DEMO_BUILD_COMMAND = "charbench demo --train-only"


def demo_training() -> tuple[DistillSettings, CharacterDPOConfig]:
    """What the demo trains: every setting in one place (all of them go into the run key of the card)."""
    settings = DistillSettings(constitution="sarcastic", teacher="charbench/smollm2", student="charbench/smollm2",
                               n_prompts=24, max_tokens=64, keep_truncated=True, min_pairs=8, seed=0)
    config = CharacterDPOConfig(global_batch_size=8, per_device_batch_size=4, max_length=256, max_steps=3, seed=0,
                                lora=LoraSettings(r=16, alpha=32))
    return settings, config


def demo_checkpoint_dir() -> Path:
    return charbench_home() / "demo" / DEMO_VARIANT


def build_demo_checkpoint(out_dir: Path | None = None, display: DisplayType = "plain") -> dict:
    """Train (or find, cached) the demo's variant; returns its card."""
    from charbench.trainers.distill import distill

    settings, config = demo_training()
    return distill(settings, out_dir or demo_checkpoint_dir(), config, display=display)


def with_demo_variant(suite: Suite, folder: Path) -> Suite:
    """``suite`` with the demo's trained checkpoint added as a variant of every single-persona entry whose persona
    is the one it was trained toward (multi-persona tasks need a checkpoint per persona, which the demo lacks)."""
    from charbench.tasks.contract import contract_for

    persona = demo_training()[0].constitution
    tasks = copy.deepcopy(suite.tasks)
    for entry in tasks:
        contract = contract_for(entry["task"])
        entry_persona = entry.get("args", {}).get("constitution") or suite.personas[0]
        if contract is not None and not contract.per_persona and entry_persona == persona:
            entry["variants"] = [*entry["variants"], DEMO_VARIANT]
    return dataclasses.replace(suite, tasks=tasks, trained={**suite.trained, DEMO_VARIANT: str(folder)})
