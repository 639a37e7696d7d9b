from charbench.tasks.coherence.task import coherence

__all__ = ["coherence"]
