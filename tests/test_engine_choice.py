"""-M engine= on the charbench/ provider, in the default environment (no vLLM): every wrong choice is one clear
error before any engine starts. The vLLM engine itself is tested in tests/vllm_engine (make test-vllm)."""

import importlib.util

import pytest
from inspect_ai.model import get_model
from tiny_model import save_tiny_checkpoint

from charbench.errors import TaskParameterError


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


def test_an_unknown_engine_is_refused_with_the_choices(ckpt):
    with pytest.raises(TaskParameterError, match=r"-M engine='vlm' is not one of \('transformers', 'vllm'\)"):
        get_model(f"charbench/{ckpt}", memoize=False, engine="vlm")


def test_steered_on_vllm_is_refused_not_run_on_another_engine(ckpt):
    with pytest.raises(TaskParameterError, match="cannot run method=steered.*transformers engine runs it"):
        get_model(f"charbench/{ckpt}", memoize=False, engine="vllm", persona="sarcastic", method="steered")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_vllm_engine_without_vllm_names_the_install(ckpt):
    with pytest.raises(TaskParameterError, match=r"needs vLLM.*make test-vllm"):
        get_model(f"charbench/{ckpt}", memoize=False, engine="vllm")


def test_the_transformers_engine_is_the_default_and_can_be_named(ckpt):
    api = get_model(f"charbench/{ckpt}", memoize=False, engine="transformers", persona="sarcastic").api
    assert api.engine == "transformers" and api.model_name.endswith("+prompted-sarcastic")
