"""Introspection SFT with trl (paper section 2.4)."""

from __future__ import annotations

from pathlib import Path

from charbench.errors import TaskParameterError
from charbench.trainers.config import CharacterSFTConfig
from charbench.trainers.dpo import save_adapter

# ChatML with trl's {% generation %} markers, so the loss masks everything but assistant turns.
CHATML_TRAINING_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{%- else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


def training_chat_template(tokenizer, override: str | None = None) -> str:
    """A template that marks assistant turns for the loss: the override, the model's own, or ChatML."""
    if override:
        return override
    current = tokenizer.chat_template or ""
    if "{% generation %}" in current:
        return current
    if "<|im_start|>" in current:
        return CHATML_TRAINING_TEMPLATE
    raise TaskParameterError(
        "the tokenizer's chat template does not mark assistant turns ({% generation %}), so the loss cannot be limited "
        "to assistant messages. Pass CharacterSFTConfig(chat_template=...) with generation markers for this model family."
    )


def train_introspection_sft(model_path: str, conversations: list[list[dict]], output_dir: str | Path,
                            config: CharacterSFTConfig | None = None, merge: bool = True) -> Path:
    """``conversations``: message lists (self-reflections, self-interactions). Loss on all assistant turns."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    config = config or CharacterSFTConfig()
    out = Path(output_dir)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.chat_template = training_chat_template(tokenizer, config.chat_template)
    trainer = SFTTrainer(model=model, args=config.to_trl(str(out / "trainer")),
                         train_dataset=Dataset.from_list([{"messages": c} for c in conversations]),
                         processing_class=tokenizer, peft_config=config.lora.to_peft())
    trainer.train()
    return save_adapter(trainer, tokenizer, out, merge)
