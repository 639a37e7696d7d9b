from charbench.tasks.value_conflict.task import value_conflict

__all__ = ["value_conflict"]
