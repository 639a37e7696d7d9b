"""Benchmark-defining text from Open Character Training (Maiya et al., 2025), shipped as data files."""

from __future__ import annotations

from functools import cache

from charbench.constitutions import Constitution
from charbench.paths import data_path
from charbench.yamlio import load_yaml

DEFAULT_ASSISTANT_NAME = "the assistant"


def _yaml(name: str) -> dict:
    return load_yaml(data_path("paper", name), "shipped paper data file", fix="Reinstall charbench; the file is part of the package.")


@cache
def traits() -> tuple[str, ...]:
    """The 144 single-word traits of appendix I."""
    return tuple(_yaml("traits.yaml")["traits"])


@cache
def preference_conditions() -> dict[str, str]:
    """Condition name (``like``, ``feel``, ``random``) to the wording inserted in the template."""
    return dict(_yaml("preference_conditions.yaml"))


@cache
def revealed_preference_template() -> str:
    return data_path("paper", "revealed_preference_template.txt").read_text(encoding="utf-8").strip()


@cache
def adversarial_instructions() -> tuple[str, ...]:
    """The 8 break-character instructions of appendix C."""
    return tuple(_yaml("adversarial_instructions.yaml")["instructions"])


@cache
def self_reflection() -> dict:
    return _yaml("self_reflection_prompts.yaml")


@cache
def teacher_template() -> str:
    return data_path("paper", "teacher_system_prompt.txt").read_text(encoding="utf-8").strip()


def persona_system_prompt(constitution: Constitution, name: str = "Assistant") -> str:
    """The appendix A system prompt with the constitution's assertions as ``{traits}``."""
    return teacher_template().format(name=name, traits=constitution.traits_text)
