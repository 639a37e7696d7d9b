"""DPO distillation with trl (paper section 2.3)."""

from __future__ import annotations

from pathlib import Path

from charbench.errors import TaskParameterError
from charbench.trainers.config import CharacterDPOConfig


def distillation_pairs(prompts: list[str], teacher: list[str], student: list[str]) -> list[dict]:
    """Conversational preference rows: teacher (in character) chosen, student (no constitution) rejected.

    A pair with an empty side is refused rather than skipped, so no pair disappears unseen; generated data
    goes through ``charbench.trainers.distill.build_pairs``, which filters and counts. Nothing is refused for
    how a reply ends (the paper's code dropped replies ending in a code fence or an emoji).
    """
    if not (len(prompts) == len(teacher) == len(student)):
        raise TaskParameterError(f"need one teacher and one student response per prompt: {len(prompts)}/{len(teacher)}/{len(student)}")
    empty = [i for i, (c, r) in enumerate(zip(teacher, student)) if not (c.strip() and r.strip())]
    if empty:
        raise TaskParameterError(
            f"{len(empty)} of {len(prompts)} pairs have an empty response (first at index {empty[0]}). Fix: remove "
            "them, or build the pairs with charbench.trainers.distill.build_pairs, which counts each filter.")
    return [
        {"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": c}],
         "rejected": [{"role": "assistant", "content": r}]}
        for p, c, r in zip(prompts, teacher, student)
    ]


def train_character_dpo(model_path: str, rows: list[dict], output_dir: str | Path,
                        config: CharacterDPOConfig | None = None, merge: bool = True, merged_dir: str = "merged") -> Path:
    """Train a LoRA adapter with trl's DPOTrainer; save the adapter (and the merged model when ``merge``).

    The merged model is the adapter folded in at weight 1.0 (peft ``merge_and_unload``), written to
    ``output_dir/merged_dir`` as a full checkpoint that the charbench provider and every task load by path.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    config = config or CharacterDPOConfig()
    out = Path(output_dir)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = DPOTrainer(model=model, args=config.to_trl(str(out / "trainer")), train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer, peft_config=config.lora.to_peft())
    trainer.train()
    return save_adapter(trainer, tokenizer, out, merge, merged_dir)


def save_adapter(trainer, tokenizer, out: Path, merge: bool, merged_dir: str = "merged") -> Path:
    """Write the LoRA adapter; with ``merge`` also a merged checkpoint that any task can load by path."""
    trainer.model.save_pretrained(out / "adapter")
    if not merge:
        return out / "adapter"
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(out / merged_dir)
    tokenizer.save_pretrained(out / merged_dir)
    return out / merged_dir
