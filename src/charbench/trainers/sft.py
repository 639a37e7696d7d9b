"""Introspection SFT with trl (paper section 2.4)."""

from __future__ import annotations

from pathlib import Path

from charbench.trainers.config import CharacterSFTConfig


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
    trainer = SFTTrainer(model=model, args=config.to_trl(str(out / "trainer")),
                         train_dataset=Dataset.from_list([{"messages": c} for c in conversations]),
                         processing_class=tokenizer, peft_config=config.lora.to_peft())
    trainer.train()
    trainer.model.save_pretrained(out / "adapter")
    if not merge:
        return out / "adapter"
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(out / "merged")
    tokenizer.save_pretrained(out / "merged")
    return out / "merged"
