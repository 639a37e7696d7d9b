"""Evaluation prompts x splits (default + the paper's 8 adversarial instructions) x personas."""

from __future__ import annotations

from inspect_ai.dataset import MemoryDataset, Sample

from charbench import paper
from charbench.errors import TaskParameterError
from charbench.prompts import load_prompt_set


def split_names() -> list[str]:
    return ["default"] + [f"adv{i + 1}" for i in range(len(paper.adversarial_instructions()))]


def with_instruction(prompt: str, split: str) -> str:
    if split == "default":
        return prompt
    index = int(split.removeprefix("adv")) - 1
    return f"{prompt}\n{paper.adversarial_instructions()[index]}"


def persona_dataset(personas: list[str], n_prompts: int, prompt_split: str, splits: list[str],
                    prompt_set: str = "offline", name: str = "break_character",
                    prompt_revision: str | None = None) -> MemoryDataset:
    prompts = load_prompt_set(prompt_set, split=prompt_split, limit=n_prompts, revision=prompt_revision)
    if len(prompts) < n_prompts:  # fewer prompts than asked would shrink n without a word
        raise TaskParameterError(
            f"n_prompts={n_prompts}, but the {prompt_set} prompt set has only {len(prompts)} {prompt_split} prompts. "
            f"Fix: n_prompts={len(prompts)} or fewer, or a larger prompt_set.")
    samples = []
    for persona in personas:
        for split in splits:
            for p in prompts:
                samples.append(Sample(
                    id=f"{persona}-{split}-{p.id}", input=with_instruction(p.text, split),
                    metadata={"persona": persona, "split": split, "prompt_id": p.id, "prompt_split": p.split,
                              "prompt": p.text},
                ))
    return MemoryDataset(samples, name=name)
