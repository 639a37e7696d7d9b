"""Introspection SFT with trl (paper section 2.4): loss on every assistant turn, for any chat template.

The loss mask is computed here (``charbench.trainers.masking``) from the model's own chat template, so the
text trained on is the text inference renders, and handed to trl as ``assistant_masks``. Conversations longer
than ``max_length`` are cut here, not inside trl, so each cut and each conversation left with no assistant
token is counted rather than dropped unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charbench.errors import TaskParameterError
from charbench.trainers.config import CharacterSFTConfig
from charbench.trainers.dpo import save_adapter
from charbench.trainers.masking import has_generation_markers, mask_conversation

# ChatML with {% generation %} markers, for users who want a marker template; SFT itself masks by rendering
# the model's own template, because a substitute template changes the text (SmolLM2's own adds a default
# system prompt that this one does not).
CHATML_TRAINING_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def training_chat_template(tokenizer, override: str | None = None) -> str:
    """A template with generation markers: the override, the model's own, or ChatML for ChatML models."""
    if override:
        return override
    current = tokenizer.chat_template or ""
    if has_generation_markers(current):
        return current
    if "<|im_start|>" in current:
        return CHATML_TRAINING_TEMPLATE
    raise TaskParameterError(
        "the tokenizer's chat template has no {% generation %} markers and is not ChatML. SFT does not need "
        "markers (it masks by rendering); for a marker template pass CharacterSFTConfig(chat_template=...).")


@dataclass
class SFTData:
    rows: list[dict]  # input_ids, assistant_masks
    counts: dict = field(default_factory=dict)


def prepare_sft_data(tokenizer, conversations: list[list[dict]], config: CharacterSFTConfig) -> SFTData:
    """Tokenise and mask every conversation; cut at ``max_length`` (keeping the start), counting everything."""
    counts: dict[str, Any] = {"conversations": len(conversations), "truncated": 0, "no_assistant_tokens": 0,
                              "tokens": 0, "assistant_tokens": 0, "method": None}
    rows = []
    for conversation in conversations:
        masked = mask_conversation(tokenizer, conversation, config.chat_template)
        counts["method"] = masked.method
        ids, mask = masked.input_ids, masked.assistant_masks
        if len(ids) > config.max_length:
            counts["truncated"] += 1
            ids, mask = ids[: config.max_length], mask[: config.max_length]
        if not any(mask):
            counts["no_assistant_tokens"] += 1  # nothing left to learn once cut; counted, not trained on
            continue
        counts["tokens"] += len(ids)
        counts["assistant_tokens"] += sum(mask)
        rows.append({"input_ids": ids, "assistant_masks": mask})
    counts["trained"] = len(rows)
    if not rows:
        raise TaskParameterError(
            f"none of the {len(conversations)} conversations has an assistant token within max_length "
            f"{config.max_length} ({counts['no_assistant_tokens']} left empty). Fix: raise --max-length or give "
            "conversations with assistant replies.")
    return SFTData(rows, counts)


def train_sft_rows(model_path: str, data: SFTData, output_dir: str | Path, config: CharacterSFTConfig,
                   merge: bool = True, merged_dir: str = "merged") -> Path:
    """Train a LoRA adapter on prepared rows; save it (and the adapter folded at 1.0 when ``merge``)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    out = Path(output_dir)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    trainer = SFTTrainer(model=model, args=config.to_trl(str(out / "trainer")), train_dataset=Dataset.from_list(data.rows),
                         processing_class=tokenizer, peft_config=config.lora.to_peft())
    trainer.train()
    return save_adapter(trainer, tokenizer, out, merge, merged_dir)


def train_introspection_sft(model_path: str, conversations: list[list[dict]], output_dir: str | Path,
                            config: CharacterSFTConfig | None = None, merge: bool = True) -> Path:
    """``conversations``: message lists (self-reflections, self-interactions). Loss on all assistant turns."""
    from transformers import AutoTokenizer

    config = config or CharacterSFTConfig()
    data = prepare_sft_data(AutoTokenizer.from_pretrained(model_path), conversations, config)
    return train_sft_rows(model_path, data, output_dir, config, merge)
