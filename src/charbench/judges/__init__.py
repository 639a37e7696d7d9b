"""LLM-as-judge protocols (generative and log-likelihood) used by the tasks."""
