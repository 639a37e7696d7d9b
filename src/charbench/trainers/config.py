"""One config dataclass per trainer; defaults match the paper (section 2.3, 2.4, appendices A and B)."""

from __future__ import annotations

from dataclasses import dataclass, field


def _bf16(wanted: bool) -> bool:
    """bf16 as the paper trained, where the hardware has it (CPU runs, such as tests, fall back to fp32)."""
    import torch

    return wanted and (torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available()))


@dataclass
class LoraSettings:
    """LoRA rank 64, alpha 128 on all linear layers, as in the paper."""

    r: int = 64
    alpha: int = 128
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


@dataclass
class CharacterDPOConfig:
    """Distillation by DPO: teacher (constitution in context) responses are chosen, student's rejected.

    Attributes:
        learning_rate: 5e-5. beta: 0.1. nll_weight: 0.1, the NLL term on chosen responses (trl ``sft`` loss
            combined with ``sigmoid``). The paper's extra per-token KL penalty (coefficient 0.001, the mean
            squared per-token log-ratio to the reference) has no trl option; adding it would mean copying trl's
            whole ``_compute_loss``, so it is not applied and every training card says so.
        global_batch_size: 32 (per-device batch x gradient accumulation x devices).
        max_length: 1024 tokens, as the paper's runs.
        adam_betas: (0.9, 0.98) as the paper's OpenRLHF runs, not transformers' (0.9, 0.999).
        lr_scheduler_type / min_lr_rate: cosine decay to 0.1 x the peak rate (OpenRLHF's ``cosine_with_min_lr``
            floor, which the paper's scripts used), not to zero.
    """

    learning_rate: float = 5e-5
    beta: float = 0.1
    nll_weight: float = 0.1
    global_batch_size: int = 32
    per_device_batch_size: int = 2
    epochs: float = 1.0
    max_length: int = 1024
    warmup_ratio: float = 0.1
    lr_scheduler_type: str = "cosine_with_min_lr"
    min_lr_rate: float = 0.1
    adam_betas: tuple[float, float] = (0.9, 0.98)
    max_grad_norm: float = 1.0
    seed: int = 123456
    bf16: bool = True
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_steps: int = -1

    def to_trl(self, output_dir: str, devices: int = 1):
        from trl import DPOConfig

        scheduler_kwargs = {"min_lr_rate": self.min_lr_rate} if self.lr_scheduler_type == "cosine_with_min_lr" else {}

        accumulation = max(1, self.global_batch_size // (self.per_device_batch_size * devices))
        return DPOConfig(
            output_dir=output_dir, learning_rate=self.learning_rate, beta=self.beta,
            loss_type=["sigmoid", "sft"], loss_weights=[1.0, self.nll_weight],
            per_device_train_batch_size=self.per_device_batch_size, gradient_accumulation_steps=accumulation,
            num_train_epochs=self.epochs, max_length=self.max_length, warmup_steps=self.warmup_ratio,  # transformers 5: a value below 1 is a ratio of all steps
            lr_scheduler_type=self.lr_scheduler_type, lr_scheduler_kwargs=scheduler_kwargs,
            adam_beta1=self.adam_betas[0], adam_beta2=self.adam_betas[1], max_grad_norm=self.max_grad_norm,
            seed=self.seed, bf16=_bf16(self.bf16), report_to=[], max_steps=self.max_steps, save_strategy="no",
            logging_steps=1,
        )


@dataclass
class CharacterSFTConfig:
    """Introspection SFT on self-reflection and self-interaction transcripts.

    Loss covers every assistant turn, not only the final message: the paper's public code trained on the last
    message only, which discarded most of each self-interaction. The mask is computed by
    ``charbench.trainers.masking`` from the model's own chat template and reaches trl as ``assistant_masks``
    (trl's ``assistant_only_loss`` stays off: it would insist on re-tokenising with generation markers).
    """

    learning_rate: float = 5e-5
    global_batch_size: int = 32
    per_device_batch_size: int = 2
    epochs: float = 1.0
    max_length: int = 3072
    warmup_ratio: float = 0.1
    seed: int = 123456
    bf16: bool = True
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_steps: int = -1
    chat_template: str | None = None  # None: the model's own (masked by rendering, or by its generation markers)

    def to_trl(self, output_dir: str, devices: int = 1):
        from trl import SFTConfig

        accumulation = max(1, self.global_batch_size // (self.per_device_batch_size * devices))
        return SFTConfig(
            output_dir=output_dir, learning_rate=self.learning_rate, per_device_train_batch_size=self.per_device_batch_size,
            gradient_accumulation_steps=accumulation, num_train_epochs=self.epochs, max_length=self.max_length,
            warmup_steps=self.warmup_ratio, seed=self.seed, bf16=_bf16(self.bf16), report_to=[], max_steps=self.max_steps,
            assistant_only_loss=False, save_strategy="no", logging_steps=1,
        )
