"""Model loading: the embedded offline checkpoints and the ``charbench/`` Inspect model provider."""
