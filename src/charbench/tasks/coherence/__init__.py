from charbench.tasks.coherence.task import coherence
from charbench.tasks.coherence.validation import coherence_judge_validation

__all__ = ["coherence", "coherence_judge_validation"]
