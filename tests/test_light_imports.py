"""Task contracts and the CLI's argument parsing load without torch or transformers (the gate and `--help` stay fast)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CONTRACTS = [
    "charbench.tasks.break_character.contract",
    "charbench.tasks.value_conflict.contract",
    "charbench.tasks.revealed_preferences.contract",
]


@pytest.mark.parametrize("module", [*CONTRACTS, "charbench.cli", "charbench.classifiers.config"])
def test_import_does_not_load_torch(module):
    code = (f"import sys, {module}\n"
            "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing {module} loaded {out}"


def test_lazy_classifier_names_resolve_and_unknown_names_fail():
    import charbench.classifiers as classifiers
    from charbench.classifiers.tfidf import train_tfidf_classifier

    assert classifiers.train_tfidf_classifier is train_tfidf_classifier
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        classifiers.nope  # noqa: B018
