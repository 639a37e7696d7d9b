from charbench.tasks.prefill_attack.task import prefill_attack

__all__ = ["prefill_attack"]
