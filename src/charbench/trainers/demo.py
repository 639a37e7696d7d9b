"""The demo's trained variants: the embedded model distilled toward one persona (DPO), and that model trained
further on its own introspection (SFT, the paper's release merge), each at a size a 2-core CPU trains in a minute
or two, cached in ``$CHARBENCH_HOME/demo`` so a second demo trains nothing.

They run the real ``charbench train distill`` and ``charbench train introspect`` stages (the embedded model as
teacher, with the constitution in its system prompt, and as student; the distilled model writes its own
introspection data) with the paper's hyperparameters except the scale: few prompts, short replies, a few optimizer
steps. At that size the checkpoints are working examples of the pipeline, not trained characters; their cards say
how they were made. The 135M model seldom finishes a reply within a short budget, so cut replies are kept
(``keep_truncated``, counted in the cards).
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from charbench.paths import charbench_home
from charbench.trainers.card import OtherRunError
from charbench.trainers.config import CharacterDPOConfig, CharacterSFTConfig, LoraSettings
from charbench.trainers.distill import DistillSettings
from charbench.trainers.introspect import IntrospectSettings

if TYPE_CHECKING:
    from inspect_ai.util import DisplayType

    from charbench.evals.suites import Suite

DEMO_VARIANT = "sarcastic-dpo"
DEMO_INTROSPECTION_VARIANT = "sarcastic-full"
DEMO_BUILD_COMMAND = "charbench demo --train-only"


def demo_training() -> tuple[DistillSettings, CharacterDPOConfig]:
    """What the demo trains: every setting in one place (all of them go into the run key of the card)."""
    settings = DistillSettings(constitution="sarcastic", teacher="charbench/smollm2", student="charbench/smollm2",
                               n_prompts=24, max_tokens=64, keep_truncated=True, min_pairs=8, seed=0)
    config = CharacterDPOConfig(global_batch_size=8, per_device_batch_size=4, max_length=256, max_steps=3, seed=0,
                                lora=LoraSettings(r=16, alpha=32))
    return settings, config


def demo_introspection(distilled_model: Path) -> tuple[IntrospectSettings, CharacterSFTConfig]:
    """The introspection variant trained from the demo's distilled model (ablation ``full``: self-reflection and
    self-interaction; the release merge DPO x 1 + SFT x 0.25 from the base)."""
    settings = IntrospectSettings(constitution="sarcastic", model=f"charbench/{distilled_model}", name="SmolLM",
                                  n_reflection=1, n_interaction=2, turns=2, reflection_max_tokens=48,
                                  interaction_max_tokens=48, keep_truncated=True, seed=0)
    config = CharacterSFTConfig(global_batch_size=4, per_device_batch_size=2, max_length=512, max_steps=2, seed=0,
                                lora=LoraSettings(r=16, alpha=32))
    return settings, config


def demo_checkpoint_dir(variant: str = DEMO_VARIANT) -> Path:
    return charbench_home() / "demo" / variant


def demo_checkpoint_dirs() -> dict[str, Path]:
    """Each demo variant's folder, by variant name."""
    return {v: demo_checkpoint_dir(v) for v in (DEMO_VARIANT, DEMO_INTROSPECTION_VARIANT)}


def build_demo_checkpoint(out_dir: Path | None = None, display: DisplayType = "plain") -> dict:
    """Train (or find, cached) the demo's distilled variant; returns its card."""
    from charbench.trainers.distill import distill

    settings, config = demo_training()
    return distill(settings, out_dir or demo_checkpoint_dir(), config, display=display)


def build_demo_checkpoints(display: DisplayType = "plain") -> dict[str, dict]:
    """Train (or find, cached) both demo variants, the introspection one from the distilled one; their cards."""
    from charbench.trainers.introspect import introspect

    folders = demo_checkpoint_dirs()
    try:
        dpo = build_demo_checkpoint(folders[DEMO_VARIANT], display)
    except OtherRunError as exc:
        # The demo's own cache, trained by another version of the demo: replaced, with the variant built on it.
        print(f"[charbench] the cached demo variants were trained with other settings; training them again ({exc})")
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        dpo = build_demo_checkpoint(folders[DEMO_VARIANT], display)
    settings, config = demo_introspection(folders[DEMO_VARIANT] / dpo["model"])
    try:
        full = introspect(settings, folders[DEMO_INTROSPECTION_VARIANT], config, display=display)
    except OtherRunError as exc:
        print(f"[charbench] the cached introspection variant was trained with other settings; training it again ({exc})")
        shutil.rmtree(folders[DEMO_INTROSPECTION_VARIANT], ignore_errors=True)
        full = introspect(settings, folders[DEMO_INTROSPECTION_VARIANT], config, display=display)
    return {DEMO_VARIANT: dpo, DEMO_INTROSPECTION_VARIANT: full}


def with_demo_variant(suite: Suite, folders: dict[str, Path]) -> Suite:
    """``suite`` with the demo's trained checkpoints added as variants of every single-persona entry whose persona
    is the one they were trained toward (multi-persona tasks need a checkpoint per persona, which the demo lacks)."""
    from charbench.tasks.contract import contract_for

    persona = demo_training()[0].constitution
    tasks = copy.deepcopy(suite.tasks)
    for entry in tasks:
        contract = contract_for(entry["task"])
        entry_persona = entry.get("args", {}).get("constitution") or suite.personas[0]
        if contract is not None and not contract.per_persona and entry_persona == persona:
            entry["variants"] = [*entry["variants"], *folders]
    return dataclasses.replace(suite, tasks=tasks, trained={**suite.trained, **{k: str(v) for k, v in folders.items()}})
