from charbench.tasks.revealed_preferences.task import revealed_preferences, trait_judge_validation

__all__ = ["revealed_preferences", "trait_judge_validation"]
