"""The thin training module that produces checkpoints under test: trl + peft, paper defaults.

Scale-out is trl's and accelerate's job (``accelerate launch`` with DeepSpeed/FSDP); nothing here
distributes work by itself. The stages as commands: ``charbench.trainers.distill`` (``charbench train
distill``; it imports Inspect, so it is not imported here).
"""

from charbench.trainers.config import CharacterDPOConfig, CharacterSFTConfig
from charbench.trainers.dpo import distillation_pairs, train_character_dpo
from charbench.trainers.sft import train_introspection_sft

__all__ = ["CharacterDPOConfig", "CharacterSFTConfig", "distillation_pairs", "train_character_dpo", "train_introspection_sft"]
