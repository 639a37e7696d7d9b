"""Parsing judge replies: only the final ``<answer>`` tag counts."""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)


def final_answer(reply: str) -> str | None:
    """The content of the last ``<answer>...</answer>`` tag, lower-cased; None when there is none.

    Taking the last tag (not the first) keeps tags quoted while reasoning from deciding the verdict.
    """
    found = _ANSWER.findall(reply or "")
    if not found:
        return None
    return found[-1].strip().strip(".!\"'*` ").lower()


def choose(reply: str, allowed: list[str]) -> str | None:
    """The allowed option that the final answer names exactly (case-insensitive), else None."""
    answer = final_answer(reply)
    if answer is None:
        return None
    matches = [a for a in allowed if a.lower() == answer]
    return matches[0] if len(matches) == 1 else None


def neutralise_tags(text: str) -> str:
    """Make answer tags inside judged material inert, so a response cannot vote for itself."""
    return re.sub(r"</?\s*answer\s*>", lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text, flags=re.IGNORECASE)
