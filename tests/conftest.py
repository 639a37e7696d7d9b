import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("INSPECT_LOG_LEVEL", "warning")


@pytest.fixture(autouse=True)
def _logs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECT_LOG_DIR", str(tmp_path / "logs"))


@pytest.fixture
def no_model_loading(monkeypatch):
    """Any attempt to prepare or load a model fails the test: planning must not touch weights."""
    from charbench.models import embedded, provider

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded while planning")

    monkeypatch.setattr(provider.CharbenchModelAPI, "__init__", refuse)
    monkeypatch.setattr(embedded, "prepare_smollm2", refuse)


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run tests that drive the embedded model for longer")
    parser.addoption("--runbrowser", action="store_true", help="run tests that need Debian chromium")


def pytest_collection_modifyitems(config, items):
    for marker, option in (("slow", "--runslow"), ("browser", "--runbrowser")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"opt in with {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
