"""Capability regression (paper appendix F): TruthfulQA MC, WinoGrande, HellaSwag, ARC-Challenge, MMLU.

Log-likelihood multiple-choice accuracy with the paper's shot counts, plus paired candidate-vs-baseline
comparison (``charbench.tasks.capability.comparison``).
"""

from charbench.tasks.capability.task import arc_challenge, hellaswag, mmlu, truthfulqa_mc, winogrande

__all__ = ["arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc", "winogrande"]
