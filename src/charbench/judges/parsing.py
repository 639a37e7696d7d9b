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


# Anything that reads as the start of a tag: "<", an optional "/", then a name (no space, as in XML, so that
# comparisons such as "x < y" are not touched). The closing ">" is optional
# because a judge may read "</response_2" at a line end as a closing tag too. Attributes up to the next ">"
# are included so that "<response_2 id=x>" is caught as well.
_TAG_START = re.compile(r"<(/?[A-Za-z_][\w:.-]*)([^<>]*>)?")


def neutralise_tags(text: str) -> str:
    """Make every tag inside judged material inert (``<x>`` becomes ``‹x›``), whatever its name.

    Judge prompts wrap the material in their own tags (``<response_1>``, ``<assistant_response>``, ...) and
    read the verdict from ``<answer>``; a response that writes any of them could close its wrapper and speak
    to the judge as the prompt. Neutralising every tag rather than a list of known names keeps a new judge
    prompt safe without anyone remembering to extend the list. Text such as ``x < y`` is left alone.
    """

    def inert(m: re.Match[str]) -> str:
        tail = m.group(2) or ""
        return "‹" + m.group(1) + (tail[:-1] + "›" if tail else "")

    return _TAG_START.sub(inert, text or "")
