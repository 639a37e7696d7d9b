"""charbench: an evaluation-first benchmark harness for LLM character training."""

__version__ = "0.1.0"
