from charbench.tasks.break_character.task import break_character, persona_responses

__all__ = ["break_character", "persona_responses"]
