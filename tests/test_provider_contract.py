"""The private Inspect surface that the charbench/ provider builds on.

``CharbenchModelAPI`` subclasses ``inspect_ai.model._providers.hf.HuggingFaceAPI`` (private) and the per-sample
persona check reads ``inspect_ai.log._samples.sample_active``. pyproject.toml pins inspect-ai to the release
these were checked against; when an upgrade changes any of them, this file fails and names what moved, before
a run silently loses its persona prompt or its prefill.
"""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model
from tiny_model import save_tiny_checkpoint


def test_inspect_is_pinned_to_the_checked_release():
    # pyproject.toml rather than the installed metadata, which an editable install leaves stale.
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    pins = [r for r in project["dependencies"] if r.replace("_", "-").startswith("inspect-ai")]
    assert pins and "==" in pins[0], f"pin inspect-ai exactly in pyproject.toml, found {pins}"
    assert pins[0].split("==")[1].split(";")[0].strip() == version("inspect-ai"), (
        "the installed inspect-ai differs from the pinned one: rerun this file against it, then move the pin")


def test_private_hf_provider_surface():
    from inspect_ai.model._providers.hf import HuggingFaceAPI

    init = inspect.signature(HuggingFaceAPI.__init__).parameters
    assert list(init)[:5] == ["self", "model_name", "base_url", "api_key", "config"]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in init.values())
    assert list(inspect.signature(HuggingFaceAPI.hf_chat).parameters) == ["self", "messages", "tools"]
    assert list(inspect.signature(HuggingFaceAPI._apply_chat_template).parameters) == [
        "self", "hf_messages", "tools_list", "chat_template"]
    source = inspect.getsource(HuggingFaceAPI)
    # The provider passes the checkpoint as model_path, relies on trust_remote_code defaulting to False, forwards
    # dtype/use_safetensors to from_pretrained, and overrides _apply_chat_template for prefills.
    for needle in ('collect_model_arg("model_path")', 'collect_model_arg("trust_remote_code")',
                   "trust_remote_code = False", "**model_args", "self._apply_chat_template(",
                   "self.model.generate", "self.tokenizer"):
        assert needle in source, f"HuggingFaceAPI no longer contains {needle!r}"
    from inspect_ai.log._samples import sample_active

    assert callable(sample_active)


def test_overrides_are_reached_on_a_real_checkpoint(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    api = get_model(f"charbench/{ckpt}", memoize=False).api
    assert api.model is not None and api.tokenizer is not None
    # _apply_chat_template override: a trailing assistant turn is continued, not closed.
    text = api.render([ChatMessageUser(content="Hi"), ChatMessageAssistant(content="Well")])
    assert text.endswith("<assistant>Well")
    # hf_chat override: the prompted persona reaches the text generate() sends to the model.
    prompted = get_model(f"charbench/{ckpt}", memoize=False, persona="sarcastic").api
    rendered = prompted.hf_chat([ChatMessageSystem(content="Task."), ChatMessageUser(content="Hi")], [])
    assert rendered.startswith("<system>") and "Task." in rendered and len(rendered) > len(api.hf_chat(
        [ChatMessageSystem(content="Task."), ChatMessageUser(content="Hi")], []))


def test_generate_through_the_subclass(tmp_path):
    import asyncio

    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    model = get_model(f"charbench/{ckpt}", memoize=False)
    out = asyncio.run(model.generate("Question:", config=GenerateConfig(temperature=0.0, max_tokens=3)))
    assert out.usage is not None and 1 <= out.usage.output_tokens <= 3 and isinstance(out.completion, str)
