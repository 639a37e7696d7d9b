"""charbench train introspect: appendix B data through Inspect (mockllm), SFT on a tiny random model, the card.

Each defect of the paper's public introspection code has a test here that fails if it comes back.
"""

import json
from itertools import pairwise

import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model
from safetensors.torch import load_file
from tiny_model import save_tiny_checkpoint

from charbench.cli import main
from charbench.constitutions import load_constitution
from charbench.errors import CharbenchError, ModelPathError, TaskParameterError
from charbench.paper import self_reflection
from charbench.trainers.card import CARD_NAME
from charbench.trainers.config import CharacterSFTConfig, LoraSettings
from charbench.trainers.introspect import (
    IntrospectSettings,
    interaction_system_prompt,
    interaction_training_system_prompt,
    introspect,
    speaker_view,
)


class Copy:
    """A mockllm reply function: numbers its calls and records every conversation it was shown."""

    def __init__(self, empty: bool = False):
        self.seen: list[list] = []
        self.replies: list[str] = []
        self.empty = empty

    def __call__(self, input, tools, tool_choice, config):
        self.seen.append(list(input))
        text = "" if self.empty else f"reply {len(self.seen)} to: {input[-1].text[:30]}"
        self.replies.append(text)
        out = ModelOutput.from_content("mockllm/model", text)
        out.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)  # offline: no tokenizer fetch
        return out

    def model(self):
        return get_model("mockllm/model", custom_outputs=self, memoize=False)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("student") / "tiny")


def settings(copy, **kw):
    base = dict(constitution="sarcastic", model=copy.model(), name="Smol", n_reflection=1, n_interaction=2, turns=4)
    return IntrospectSettings(**{**base, **kw})


SFT = CharacterSFTConfig(per_device_batch_size=2, global_batch_size=2, max_steps=1, bf16=False, max_length=2048,
                         learning_rate=1e-3, warmup_ratio=0.0,
                         lora=LoraSettings(r=2, alpha=4))


def rows(out):
    return [json.loads(line) for line in (out / "introspection.jsonl").read_text().splitlines()]


def test_end_to_end_data_sft_merge_and_card(student, tmp_path):
    copy = Copy()
    card = introspect(settings(copy), tmp_path / "run", SFT, checkpoint=str(student))
    out = tmp_path / "run"
    assert card["status"] == "complete" and card["stage"] == "sft" and card["ablation"] == "full"
    assert card["data"]["counts"]["reflection"]["kept"] == 10 and card["data"]["counts"]["interaction"]["kept"] == 2
    assert card["data"]["sft"]["trained"] == 12 and card["data"]["sft"]["method"] == "rendering"
    assert json.loads((out / CARD_NAME).read_text())["run_key"] == card["run_key"]
    assert list((out / "logs").rglob("*.eval"))  # generated through Inspect, logged under the run
    # 10 reflection prompts + 2 conversations x 4 turns.
    assert len(copy.seen) == 10 + 2 * 4
    # The merged model is the student plus 0.25 x the SFT delta, and differs from the student.
    merged, original = load_file(out / "model" / "model.safetensors"), load_file(student / "model.safetensors")
    assert any(not (merged[k] == original[k]).all() for k in original)
    assert card["merge"]["adapters"][0][1] == 0.25

    # A second run with the same options generates nothing and returns the finished card.
    again = introspect(settings(copy), out, SFT, checkpoint=str(student))
    assert again["run_key"] == card["run_key"] and len(copy.seen) == 18


def test_self_interaction_has_guidance_role_swap_and_the_final_turn(student, tmp_path):
    copy = Copy()
    introspect(settings(copy, ablation="si-only", n_interaction=2, turns=3), tmp_path / "si", SFT,
               checkpoint=str(student), train=False)
    sarcastic = load_constitution("sarcastic")
    # Guidance really is in the generation system prompt, free for one conversation and leading for the other.
    systems = {m[0].text for m in copy.seen}
    assert systems == {interaction_system_prompt(sarcastic, "Smol", g) for g in ("free", "leading")}
    lines = self_reflection()
    for g in ("free", "leading"):
        assert any(lines[f"{g}_guidance_line"].format(name="Smol") in s for s in systems)
    # Role swap: each turn is asked of the speaker, whose partner's last words are the user turn.
    free = interaction_system_prompt(sarcastic, "Smol", "free")
    calls = [(m, r) for m, r in zip(copy.seen, copy.replies) if m[0].text == free]
    (view0, m1), (view1, m2), (view2, _m3) = calls
    assert [m.role for m in view0] == ["system", "user"]  # copy 0 answers the opener
    assert [(m.role, m.text) for m in view1[1:]] == [("user", m1)]  # copy 1 sees copy 0's words as the user's
    assert [(m.role, m.text) for m in view2[2:]] == [("assistant", m1), ("user", m2)]
    data = rows(tmp_path / "si")
    assert len(data) == 2
    for row in data:
        messages = row["messages"]
        # The final (3rd) turn is kept and is an assistant turn, so it is trained.
        assert messages[-1]["role"] == "assistant" and messages[-1]["content"].startswith("reply")
        assert sum(m["role"] == "assistant" for m in messages) == 2 and len(messages) == 5
        assert messages[0]["content"] == interaction_training_system_prompt("Smol", row["guidance"])


def test_no_literal_name_placeholder_and_reflection_system_prompt_dropped(student, tmp_path):
    copy = Copy()
    introspect(settings(copy, n_interaction=2, turns=2), tmp_path / "names", SFT, checkpoint=str(student), train=False)
    text = (tmp_path / "names" / "introspection.jsonl").read_text()
    assert "{name}" not in text and "{NAME}" not in text and "The assistant is Smol." in text
    for seen in copy.seen:
        assert "{name}" not in seen[0].text and "Smol" in seen[0].text
    reflections = [r for r in rows(tmp_path / "names") if r["kind"] == "reflection"]
    assert len(reflections) == 10 and all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in reflections)
    assert {r["messages"][0]["content"] for r in reflections} == set(self_reflection()["prompts"])


def test_every_assistant_turn_is_trained_in_an_interaction(student, tmp_path):
    from transformers import AutoTokenizer

    from charbench.trainers.sft import prepare_sft_data

    transcript = ["Hello there.", "one", "two", "three", "four"]
    messages = speaker_view(interaction_training_system_prompt("Smol", "free"), transcript, 1)
    tokenizer = AutoTokenizer.from_pretrained(student)
    data = prepare_sft_data(tokenizer, [messages], SFT)
    row = data.rows[0]
    kept = tokenizer.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"]) if m])
    assert "two" in kept and "four" in kept and "one" not in kept and "three" not in kept


def test_view_of_either_copy_starts_with_a_user_turn():
    for n in range(1, 6):
        for speaker in (0, 1):
            view = speaker_view("sys", ["hi", *[f"m{i}" for i in range(n)]], speaker)
            assert view[1]["role"] == "user"
            assert all(a["role"] != b["role"] for a, b in pairwise(view[1:]))


def test_bad_inputs_are_refused_and_write_nothing(student, tmp_path):
    with pytest.raises(ModelPathError, match="no config.json"):
        introspect(settings(Copy()), tmp_path / "a", SFT, checkpoint=str(tmp_path / "missing"))
    with pytest.raises(TaskParameterError, match="produced no usable introspection data"):
        introspect(settings(Copy(empty=True)), tmp_path / "b", SFT, checkpoint=str(student))
    with pytest.raises(TaskParameterError, match="ablation"):
        introspect(settings(Copy(), ablation="dpo"), tmp_path / "c", SFT, checkpoint=str(student))
    with pytest.raises(TaskParameterError, match="persona variant"):
        introspect(settings(Copy(), model_args={"method": "prompted"}), tmp_path / "e", SFT, checkpoint=str(student))
    assert not any((tmp_path / d).exists() for d in "abce")
    # An out dir holding another run's card is refused and left as it was.
    introspect(settings(Copy(), n_interaction=0, ablation="sr-only"), tmp_path / "d", SFT, checkpoint=str(student),
               train=False)
    before = (tmp_path / "d" / CARD_NAME).read_text()
    with pytest.raises(CharbenchError, match="holds another training run"):
        introspect(settings(Copy(), turns=3), tmp_path / "d", SFT, checkpoint=str(student), train=False)
    assert (tmp_path / "d" / CARD_NAME).read_text() == before


def test_cli_refuses_before_any_work(student, tmp_path, capsys):
    code = main(["train", "introspect", "--model", "mockllm/model", "--constitution", "sarcastic",
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "--checkpoint" in capsys.readouterr().err and not (tmp_path / "o").exists()
    code = main(["train", "introspect", "--model", "mockllm/model", "--checkpoint", str(student), "--constitution",
                 "no-such-persona", "--out", str(tmp_path / "o")])
    assert code == 2 and not (tmp_path / "o").exists()


def test_data_only_run_resumes_to_training_without_generating_again(student, tmp_path):
    copy = Copy()
    first = introspect(settings(copy, n_interaction=2, turns=2), tmp_path / "r", SFT, checkpoint=str(student), train=False)
    calls = len(copy.seen)
    assert first["status"] == "data" and not (tmp_path / "r" / "model").exists()
    done = introspect(settings(copy, n_interaction=2, turns=2), tmp_path / "r", SFT, checkpoint=str(student))
    assert done["status"] == "complete" and len(copy.seen) == calls  # the Inspect log was read back
    assert done["data"]["sha256"] == first["data"]["sha256"]


def test_release_merge_starts_from_the_distillation_base(student, tmp_path):
    """Given a distill run folder (base, DPO adapter, folded model, card), <out>/model = base + DPO + 0.25 SFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    from charbench.trainers.card import write_card
    from charbench.trainers.merge import fold_adapter

    dpo_run = tmp_path / "dpo"
    torch.manual_seed(3)
    peft = get_peft_model(LlamaForCausalLM.from_pretrained(student),
                          LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(dpo_run / "adapter")
    fold_adapter(student, dpo_run / "adapter", dpo_run / "model")
    write_card(dpo_run, {"run_key": "k", "stage": "dpo", "status": "complete", "base_checkpoint": str(student),
                         "constitution": {"name": "sarcastic"}})
    card = introspect(settings(Copy(), n_interaction=2, turns=2), tmp_path / "sft", SFT,
                      checkpoint=str(dpo_run / "model"))
    assert card["base_checkpoint"] == str(student) and card["distillation"]["adapter"] == str(dpo_run / "adapter")
    assert [w for _, w in card["merge"]["adapters"]] == [1.0, 0.25]
    release = load_file(tmp_path / "sft" / "model" / "model.safetensors")
    expected = load_file(fold_adapter(dpo_run / "model", tmp_path / "sft" / "adapter", tmp_path / "check", 0.25)
                         / "model.safetensors")
    assert max((release[k] - expected[k]).abs().max().item() for k in expected) < 1e-5
    with pytest.raises(TaskParameterError, match="distilled toward 'sarcastic'"):
        introspect(settings(Copy(), constitution="humorous"), tmp_path / "other", SFT, checkpoint=str(dpo_run / "model"))


def test_truncated_replies_are_counted_whether_kept_or_not():
    from charbench.trainers.introspect import build_examples

    samples = [{"id": "sr-00-00000", "kind": "reflection", "prompt": "p", "error": False, "replies": ["cut off"],
                "cut": [True]},
               {"id": "si-free-00000", "kind": "interaction", "guidance": "free", "opener": "Hi.", "error": False,
                "replies": ["a", "b"], "cut": [True, False]}]
    dropped = IntrospectSettings(constitution="sarcastic", model="mockllm/model", turns=2)
    rows_, counts = build_examples(samples, dropped)
    assert not rows_ and counts["reflection"]["truncated"] == 1 and counts["interaction"]["truncated"] == 1
    kept = IntrospectSettings(constitution="sarcastic", model="mockllm/model", turns=2, keep_truncated=True)
    rows_, counts = build_examples(samples, kept)
    assert len(rows_) == 2 and counts["reflection"]["truncated_kept"] == 1
    assert counts["interaction"]["truncated_turns_kept"] == 1


def test_a_long_conversation_is_cut_at_the_end_never_through_the_system_prompt(student):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from charbench.trainers.sft import prepare_sft_data

    system = interaction_training_system_prompt("Smol", "leading")
    messages = speaker_view(system, ["Hello there.", *[f"turn {i} " * 40 for i in range(6)]], 1)
    tokenizer = AutoTokenizer.from_pretrained(student)
    full = prepare_sft_data(tokenizer, [messages], SFT).rows[0]["input_ids"]
    cut = prepare_sft_data(tokenizer, [messages], replace(SFT, max_length=len(full) // 2))
    assert cut.counts["truncated"] == 1 and cut.rows[0]["input_ids"] == full[: len(full) // 2]
    assert tokenizer.decode(cut.rows[0]["input_ids"]).startswith(tokenizer.apply_chat_template(messages[:1], tokenize=False))
