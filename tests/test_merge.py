"""The release merge is exact: merged W equals W + sum_i w_i * (alpha_i / r_i) * B_i A_i, read off the files."""

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from tiny_model import save_tiny_checkpoint
from transformers import LlamaForCausalLM

from charbench.errors import ModelPathError, TaskParameterError
from charbench.trainers.merge import fold_adapter, merge_adapters

TARGETS = ["q_proj", "v_proj", "down_proj"]


def random_adapter(base, out, r, alpha, seed):
    torch.manual_seed(seed)
    model = LlamaForCausalLM.from_pretrained(base)
    # init_lora_weights=False draws B at random too, so every delta is non-zero and cross terms would show.
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=TARGETS, init_lora_weights=False))
    peft.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    base = save_tiny_checkpoint(root / "base")
    dpo = random_adapter(base, root / "dpo", r=4, alpha=8, seed=1)
    sft = random_adapter(base, root / "sft", r=4, alpha=16, seed=2)
    return root, base, dpo, sft


def expected_weights(base, adapters):
    """W + sum w (alpha/r) B A, from the saved tensors alone (no PEFT arithmetic)."""
    import json

    weights = {k: v.double() for k, v in load_file(base / "model.safetensors").items()}
    for path, w in adapters:
        config = json.loads((path / "adapter_config.json").read_text())
        tensors = load_file(path / "adapter_model.safetensors")
        scale = config["lora_alpha"] / config["r"]
        for key, a in tensors.items():
            if ".lora_A." not in key:
                continue
            b = tensors[key.replace(".lora_A.", ".lora_B.")]
            target = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
            weights[target] = weights[target] + w * scale * (b.double() @ a.double())
    return weights


def max_error(model, expected):
    state = model.state_dict()
    return max((state[k].double() - v).abs().max().item() for k, v in expected.items())


def test_release_merge_is_exact_and_linear_is_not(setup):
    root, base, dpo, sft = setup
    merged_dir = merge_adapters(base, [(dpo, 1.0), (sft, 0.25)], root / "release")
    expected = expected_weights(base, [(dpo, 1.0), (sft, 0.25)])
    merged = LlamaForCausalLM.from_pretrained(merged_dir)
    assert max_error(merged, expected) < 1e-5
    original = load_file(base / "model.safetensors")
    changed = [k for k in expected if not torch.equal(merged.state_dict()[k], original[k])]
    assert changed and all(any(f".{t}." in k for t in TARGETS) for k in changed)
    assert (merged_dir / "tokenizer.json").exists()

    # PEFT's linear combination on the same inputs misses by the cross terms; cat matches.
    def peft_combination(kind):
        model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), str(dpo), adapter_name="dpo")
        model.load_adapter(str(sft), adapter_name="sft")
        model.add_weighted_adapter(["dpo", "sft"], [1.0, 0.25], kind, combination_type=kind)
        model.set_adapter(kind)
        return model.merge_and_unload()

    assert max_error(peft_combination("linear"), expected) > 1e-2
    assert max_error(peft_combination("cat"), expected) < 1e-5


def test_fold_at_one_equals_peft_merge_and_unload(setup):
    root, base, dpo, _ = setup
    folded = LlamaForCausalLM.from_pretrained(fold_adapter(base, dpo, root / "fold"))
    assert max_error(folded, expected_weights(base, [(dpo, 1.0)])) < 1e-5
    reference = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), str(dpo)).merge_and_unload()
    assert max_error(folded, {k: v.double() for k, v in reference.state_dict().items()}) < 1e-5


def test_bad_merge_inputs_are_refused_and_write_nothing(setup):
    root, base, dpo, _ = setup
    with pytest.raises(ModelPathError, match="adapter_config.json"):
        merge_adapters(base, [(root / "nowhere", 1.0)], root / "bad1")
    with pytest.raises(ModelPathError, match="config.json"):
        merge_adapters(root / "nowhere", [(dpo, 1.0)], root / "bad2")
    with pytest.raises(TaskParameterError, match="already exists"):
        merge_adapters(base, [(dpo, 1.0)], base)
    assert not (root / "bad1").exists() and not (root / "bad2").exists()
