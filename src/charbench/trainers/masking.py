"""Which tokens of a rendered conversation are the assistant's: the SFT loss mask, for any chat template.

Two ways, chosen per template:

* **generation markers**: a template with ``{% generation %}`` blocks says itself which text is the
  assistant's; transformers turns that into ``assistant_masks``.
* **rendering**: otherwise the conversation is rendered prefix by prefix with the model's *own* template. The
  text between "everything before turn i plus the generation prompt" and "everything through turn i" is
  assistant turn i (its content and end-of-turn token; the whitespace a template puts after the end-of-turn
  token is not, because the model never generates it). Character spans map to tokens by the tokenizer's
  offsets. This covers ChatML, Llama 3 and Gemma 3 templates without editing them, so training sees
  exactly the text inference sees (a substitute template would not: SmolLM2's own template adds a default
  system prompt that a generic ChatML template leaves out).

A template that renders an earlier turn differently once later turns exist (some reasoning templates drop
old thinking) has no stable prefix; it is refused with the fix rather than masked wrongly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charbench.errors import TaskParameterError

_GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class MaskedConversation:
    input_ids: list[int]
    assistant_masks: list[int]
    method: str  # "generation-markers" or "rendering"


def has_generation_markers(template: str | None) -> bool:
    return template is not None and _GENERATION.search(template) is not None


def _template(tokenizer, chat_template: str | None) -> str:
    template = chat_template or tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise TaskParameterError(
            f"the tokenizer ({type(tokenizer).__name__}) has no chat template, so assistant turns cannot be found. "
            "Fix: train from an instruct checkpoint, or pass CharacterSFTConfig(chat_template=...).")
    return template


def _render(tokenizer, messages: list[dict], template: str, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict], chat_template: str | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the character span of every assistant turn in it."""
    template = _template(tokenizer, chat_template)
    full = _render(tokenizer, messages, template, add_generation_prompt=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if i == 0 or all(m["role"] == "system" for m in messages[:i]):
            raise TaskParameterError(
                f"message {i} is an assistant turn with no user turn before it; chat templates cannot render a "
                "generation prompt there. Fix: start every training conversation with a user message.")
        before = _render(tokenizer, messages[:i], template, add_generation_prompt=True)
        through = _render(tokenizer, messages[: i + 1], template, add_generation_prompt=False)
        if not (through.startswith(before) and full.startswith(through)):
            raise TaskParameterError(
                f"the chat template renders assistant turn {i} differently once later turns follow (its text is not a "
                "stable prefix of the whole conversation), so the assistant tokens cannot be read off the rendering. "
                "Fix: pass CharacterSFTConfig(chat_template=...) with {% generation %} markers for this model family.")
        end = len(through.rstrip())
        if end <= len(before):
            continue  # an empty assistant turn has nothing to learn
        spans.append((len(before), end))
    return full, spans


def mask_conversation(tokenizer, messages: list[dict], chat_template: str | None = None) -> MaskedConversation:
    """Token ids of the conversation as the template renders it, and 1 for every assistant token."""
    template = _template(tokenizer, chat_template)
    if has_generation_markers(template):
        out = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        method = "generation-markers"
    else:
        if not getattr(tokenizer, "is_fast", False):
            raise TaskParameterError(
                f"{type(tokenizer).__name__} is a slow tokenizer without character offsets, needed to find assistant "
                "tokens in the rendering. Fix: load the fast tokenizer (AutoTokenizer with use_fast=True).")
        full, spans = assistant_spans(tokenizer, messages, template)
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        # A token belongs to the assistant when it overlaps an assistant span (transformers' own rule for tokens
        # that straddle a generation-marker boundary).
        mask = [int(any(s < b and e > a for a, b in spans)) for s, e in encoded["offset_mapping"]]
        method = "rendering"
    if any(m["role"] == "assistant" and m["content"].strip() for m in messages) and not any(mask):
        raise TaskParameterError(
            f"the chat template marked no assistant tokens ({method}) in a conversation that has assistant turns. "
            "Fix: check the template's {% generation %} blocks, or pass one that marks the assistant turns.")
    return MaskedConversation(ids, mask, method)
