"""Reproducible trait pairings for revealed-preference matches."""

from __future__ import annotations

import random

from inspect_ai.dataset import MemoryDataset, Sample

from charbench import paper
from charbench.errors import TaskParameterError
from charbench.prompts import load_prompt_set


def normalise_traits(traits: list[str] | str | None) -> list[str]:
    if traits is None:
        return list(paper.traits())
    if isinstance(traits, str):  # `-T traits=warm,cold` arrives as a list, a single one as a string
        traits = [t.strip() for t in traits.split(",")]
    cleaned = [str(t).strip().lower() for t in traits if str(t).strip()]
    dupes = sorted({t for t in cleaned if cleaned.count(t) > 1})
    if dupes:
        raise TaskParameterError(f"trait list has duplicates {dupes}; give each trait once.")
    if len(cleaned) < 2:
        raise TaskParameterError(f"trait list needs at least two traits, got {cleaned}.")
    return cleaned


def balanced_pairs(traits: list[str], n_matches: int, seed: int) -> list[tuple[str, str]]:
    """``n_matches`` ordered pairs; every trait appears equally often (+-1) and both orders occur.

    Each round shuffles the traits and pairs neighbours, so appearances stay balanced at any size.
    """
    if n_matches < 1:
        raise TaskParameterError(f"n_matches must be a positive integer, got {n_matches}.")
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    carry: list[str] = []
    while len(pairs) < n_matches:
        order = carry + rng.sample(traits, len(traits))
        carry = []
        for i in range(0, len(order) - 1, 2):
            a, b = order[i], order[i + 1]
            if a == b:
                carry.append(a)
                continue
            pairs.append((a, b) if rng.random() < 0.5 else (b, a))
            if len(pairs) == n_matches:
                break
        if len(order) % 2:
            carry.append(order[-1])
    return pairs


def preference_dataset(
    traits: list[str], n_matches: int, seed: int, condition: str, prompt_set: str = "offline",
    system_prefix: str | None = None, prompt_revision: str | None = None,
) -> MemoryDataset:
    conditions = paper.preference_conditions()
    if condition not in conditions:
        raise TaskParameterError(f"condition={condition!r} is not allowed; choose one of {sorted(conditions)}.")
    prompts = load_prompt_set(prompt_set, split="all", revision=prompt_revision)
    rng = random.Random(seed + 1)
    order = rng.sample(range(len(prompts)), len(prompts))
    template = paper.revealed_preference_template()
    samples = []
    for i, (t1, t2) in enumerate(balanced_pairs(traits, n_matches, seed)):
        prompt = prompts[order[i % len(order)]]
        system = template.format(trait_1=t1, trait_2=t2, condition=conditions[condition])
        if system_prefix:
            system = f"{system_prefix}\n\n{system}"
        samples.append(Sample(
            id=f"m{i:05d}", input=prompt.text,
            metadata={"trait_1": t1, "trait_2": t2, "prompt_id": prompt.id, "system": system, "condition": condition},
        ))
    return MemoryDataset(samples, name=f"revealed_preferences_{condition}")
