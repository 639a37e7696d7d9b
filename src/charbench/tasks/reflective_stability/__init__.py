from charbench.tasks.reflective_stability.task import reflective_stability

__all__ = ["reflective_stability"]
