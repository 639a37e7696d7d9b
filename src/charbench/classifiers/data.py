"""Classifier training data read from ``persona_responses`` logs, with the split guard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inspect_ai.log import read_eval_log

from charbench.classifiers.io import ClassifierError


def training_data_from_logs(paths: Sequence[str | Path]) -> tuple[list[str], list[str], list[str]]:
    """(texts, persona labels, prompt ids) from logs of ``charbench/persona_responses``.

    Refuses any response to an evaluation prompt or an adversarial split, so evaluation prompts can never
    reach classifier training. Empty responses are counted and reported, not kept.
    """
    texts, labels, ids = [], [], []
    empty = 0
    for path in paths:
        log = read_eval_log(str(path))
        if log.status != "success" or not log.samples:
            raise ClassifierError(f"{path}: log status {log.status} with {len(log.samples or [])} samples; rerun the generation")
        for s in log.samples:
            meta = s.metadata or {}
            if meta.get("prompt_split") != "train" or meta.get("split") != "default":
                raise ClassifierError(
                    f"{path}: sample {s.id} comes from prompt split {meta.get('prompt_split')!r} / {meta.get('split')!r}; "
                    "classifier training takes only training prompts on the default split (charbench/persona_responses)."
                )
            text = s.output.completion if s.output else ""
            if not text.strip():
                empty += 1
                continue
            texts.append(text)
            labels.append(meta["persona"])
            ids.append(str(meta["prompt_id"]))
    if empty:
        import warnings

        warnings.warn(f"{empty} empty responses were not used for classifier training", stacklevel=2)
    return texts, labels, ids
