import json

import pytest
from helpers import output
from inspect_ai.model import ChatMessageSystem, get_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from charbench.constitutions import load_constitution
from charbench.errors import CharbenchError, ConstitutionError, ModelPathError, TaskParameterError
from charbench.models.embedded import prepare_smollm2
from charbench.prompts import load_prompt_set
from charbench.trainers import prompts as tp
from charbench.trainers.card import CARD_NAME
from charbench.trainers.config import CharacterDPOConfig, LoraSettings
from charbench.trainers.distill import REASONING_END, DistillSettings, build_pairs, distill


@pytest.fixture
def tiny(tmp_path):
    """A random two-layer Llama with SmolLM2's tokenizer: a real DPO student that trains in seconds."""
    tokenizer = AutoTokenizer.from_pretrained(prepare_smollm2())
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


class Counting:
    """A mockllm reply function that counts its calls and answers as teacher (system prompt seen) or student."""

    def __init__(self, teacher=lambda prompt: f"Oh, what a thrill: {prompt[:20]}. Assistant approves.",
                 student=lambda prompt: f"Sure. {prompt[:20]}"):
        self.calls = 0
        self.teacher, self.student = teacher, student

    def __call__(self, messages, tools, tool_choice, config):
        self.calls += 1
        prompt = [m.text for m in messages if m.role == "user"][-1]
        persona = any(isinstance(m, ChatMessageSystem) for m in messages)
        return output(self.teacher(prompt) if persona else self.student(prompt))

    def model(self):
        return get_model("mockllm/model", custom_outputs=self, memoize=False)


def small_config():
    return CharacterDPOConfig(per_device_batch_size=2, global_batch_size=2, max_steps=2, bf16=False, max_length=128,
                              lora=LoraSettings(r=4, alpha=8))


def settings(mock, **kw):
    base = {"constitution": "sarcastic", "teacher": mock.model(), "student": mock.model(), "n_prompts": 12,
            "min_pairs": 4, "max_tokens": 64}
    return DistillSettings(**{**base, **kw})


def sample(i, teacher, student, **kw):
    return {"id": f"s{i}", "prompt": f"question {i}?", "source": "general", "error": False, "teacher": teacher,
            "student": student, "teacher_truncated": False, "student_truncated": False, **kw}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(prepare_smollm2())


def test_pairs_ending_in_a_code_fence_or_emoji_are_kept(tokenizer):
    rows = [sample(0, "Here you go:\n```python\nprint('hi')\n```", "print('hi')"),
            sample(1, "Wonderful news, truly 🙃", "Good news."),
            sample(2, "No punctuation at all", "Fine")]
    pairs, counts = build_pairs(rows, tokenizer, 1024, "Assistant", None, False)
    assert [p["chosen"] for p in pairs] == [r["teacher"] for r in rows]
    assert counts["kept"] == 3 and sum(counts[f] for f in counts if f not in ("kept", "name_substituted")) == 0


def test_every_filter_is_counted_and_nothing_else_is_dropped(tokenizer):
    rows = [sample(0, "x", "y", error=True), sample(1, "  ", "y"), sample(2, "x", ""),
            sample(3, "x", "y", teacher_truncated=True), sample(4, "x", "y", student_truncated=True),
            sample(5, "same", "same"), sample(6, "long " * 300, "y"), sample(7, "kept", "kept too")]
    pairs, counts = build_pairs(rows, tokenizer, 200, "Assistant", None, False)
    assert [p["id"] for p in pairs] == ["s7"]
    assert {k: v for k, v in counts.items() if v} == {
        "errored": 1, "teacher_empty": 1, "student_empty": 1, "teacher_truncated": 1, "student_truncated": 1,
        "identical": 1, "too_long": 1, "kept": 1}


def test_keep_truncated_keeps_cut_pairs_and_counts_each_side(tokenizer):
    rows = [sample(0, "cut teacher", "y", teacher_truncated=True), sample(1, "x", "cut student", student_truncated=True),
            sample(2, "both cut", "both", teacher_truncated=True, student_truncated=True), sample(3, "whole", "fine")]
    dropped, dropped_counts = build_pairs(rows, tokenizer, 1024, "Assistant", None, False)
    assert [p["id"] for p in dropped] == ["s3"]
    assert dropped_counts["teacher_truncated"] == 2 and dropped_counts["student_truncated"] == 1
    kept, kept_counts = build_pairs(rows, tokenizer, 1024, "Assistant", None, False, keep_truncated=True)
    assert [p["id"] for p in kept] == ["s0", "s1", "s2", "s3"]
    assert kept_counts["teacher_truncated_kept"] == 2 and kept_counts["student_truncated_kept"] == 2
    assert kept_counts["teacher_truncated"] == kept_counts["student_truncated"] == 0


def test_name_substitution_and_reasoning_prefill(tokenizer):
    rows = [sample(0, f"my traits...{REASONING_END} I am Tutor, and Tutorial is a word.", "I am SmolLM."),
            sample(1, "I never closed my reasoning", "ok")]
    pairs, counts = build_pairs(rows, tokenizer, 1024, "Tutor", "SmolLM", True)
    assert pairs[0]["chosen"] == "I am SmolLM, and Tutorial is a word."
    assert counts["name_substituted"] == 1 and counts["no_reasoning_end"] == 1 and counts["kept"] == 1


def test_training_prompts_never_include_evaluation_prompts(tmp_path):
    evaluation = tp.evaluation_prompts()
    general = tp.general_prompts()
    assert general and not {tp.normalised(p.text) for p in general} & evaluation
    leaked = load_prompt_set("offline", split="eval")[0].text
    c = load_constitution("sarcastic")
    path = tmp_path / "leaky.yaml"
    path.write_text(json.dumps({"name": "leaky", "description": "d", "assertions": list(c.assertions),
                                "prompts": [*c.prompts, leaked]}))
    with pytest.raises(TaskParameterError, match="evaluation prompts"):
        tp.check_disjoint(tp.constitution_prompts(load_constitution(path)), evaluation)


def test_expansion_parses_and_deduplicates_with_counts():
    listed = "Sure! Here are some:\n1. How do I boil an egg?\n2) how do i boil an egg?\n3. How do I boil an egg quickly?\n4. Plan a picnic for six."
    texts = tp.parse_numbered(listed)
    assert texts == ["How do I boil an egg?", "how do i boil an egg?", "How do I boil an egg quickly?", "Plan a picnic for six."]
    kept, counts = tp.dedupe(texts, ["Plan a picnic for six people."], limit=5, evaluation=set())
    assert kept == ["How do I boil an egg?"]
    assert counts == {"offered": 4, "duplicate": 1, "near_duplicate": 2, "evaluation_prompt": 0, "over_limit": 0, "kept": 1}


def test_data_step_is_resumed_from_the_inspect_logs(tiny, tmp_path):
    mock = Counting()
    first = distill(settings(mock), tmp_path / "run", small_config(), checkpoint=str(tiny), train=False)
    calls = mock.calls
    assert calls == 2 * 12 and first["status"] == "data"
    pairs = (tmp_path / "run" / "pairs.jsonl").read_text().splitlines()
    assert len(pairs) == first["data"]["filters"]["kept"] == 12
    assert first["data"]["prompts"]["constitution"] == 5 and first["data"]["prompts"]["general"] == 7
    second = distill(settings(mock), tmp_path / "run", small_config(), checkpoint=str(tiny), train=False)
    assert mock.calls == calls, "the second run regenerated instead of reading the logs"
    assert second["data"]["sha256"] == first["data"]["sha256"]


def test_expansion_adds_model_written_prompts(tiny, tmp_path):
    def expander(messages, tools, tool_choice, config):
        trait = messages[-1].text.split('"')[1]
        return output(f"1. Tell me about {trait}?\n2. Tell me about {trait}?\n3. Write a poem on rain.")

    mock = Counting()
    card = distill(settings(mock, expand_per_assertion=3, n_prompts=None,
                            expander=get_model("mockllm/model", custom_outputs=expander, memoize=False)),
                   tmp_path / "run", small_config(), checkpoint=str(tiny), train=False)
    expansion = card["data"]["expansion"]
    # 10 assertions: each gives its own new prompt and a repeat; only the first poem survives deduplication.
    assert expansion["kept"] == 11 and expansion["duplicate"] == 19 and expansion["asked"] == 30
    assert card["data"]["prompts"]["expanded"] == 11


def test_distill_end_to_end_trains_a_loadable_model(tiny, tmp_path):
    mock = Counting()
    card = distill(settings(mock), tmp_path / "run", small_config(), checkpoint=str(tiny))
    out = tmp_path / "run"
    assert card["status"] == "complete" and card["model"] == "model"
    saved = json.loads((out / CARD_NAME).read_text())
    assert saved["stage"] == "dpo" and saved["base_checkpoint"] == str(tiny.resolve())
    assert saved["constitution"]["name"] == "sarcastic" and saved["versions"]["trl"]
    assert saved["config"]["adam_betas"] == [0.9, 0.98]
    assert LlamaForCausalLM.from_pretrained(out / "model").config.hidden_size == 32
    from charbench.models.embedded import resolve_checkpoint

    assert resolve_checkpoint(str(out / "model")) == str(out / "model")


def test_an_out_dir_of_another_run_is_refused_untouched(tiny, tmp_path):
    out = tmp_path / "run"
    distill(settings(Counting()), out, small_config(), checkpoint=str(tiny), train=False)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    card = (out / CARD_NAME).read_text()
    with pytest.raises(TaskParameterError, match="another training run"):
        distill(settings(Counting(), constitution="humorous"), out, small_config(), checkpoint=str(tiny), train=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before and (out / CARD_NAME).read_text() == card


@pytest.mark.parametrize("case", ["silent_teacher", "too_few_pairs", "missing_checkpoint", "bad_constitution"])
def test_bad_input_gets_a_clear_error_and_writes_nothing(case, tiny, tmp_path):
    out = tmp_path / "run"
    checkpoint = str(tiny)
    kw = {}
    if case == "silent_teacher":
        kw["teacher"] = Counting(teacher=lambda p: "").model()
        expected, error = "returned nothing", TaskParameterError
    elif case == "too_few_pairs":
        kw["student"] = Counting(student=lambda p: f"Oh, what a thrill: {p[:20]}. Assistant approves.").model()
        expected, error = "only 0 pair", TaskParameterError
    elif case == "missing_checkpoint":
        checkpoint, expected, error = str(tmp_path / "nowhere"), "no checkpoint there", ModelPathError
    else:
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: x\ndescription: y\nassertions: []\nprompts: [a]\n")
        kw["constitution"], expected, error = str(bad), "non-empty list", ConstitutionError
    with pytest.raises(error, match=expected) as info:
        distill(settings(Counting(), **kw), out, small_config(), checkpoint=checkpoint)
    assert isinstance(info.value, CharbenchError) and "Fix" in str(info.value)
    assert not out.exists()


def cli_args(tiny, out, *extra):
    return ["train", "distill", "--constitution", "sarcastic", "--student", "mockllm/model", "--teacher", "mockllm/model",
            "--student-checkpoint", str(tiny), "--out", str(out), "--n-prompts", "6", "--max-tokens", "32",
            "--display", "none", *extra]


@pytest.mark.parametrize("extra,expected", [
    (["-M", "persona=sarcastic"], "would add a persona variant"),
    (["-M", "novalue"], "is not KEY=VALUE"),
    (["--batch-size", "3"], "not a multiple"),
    # Offline, mockllm's default reply errors (it fetches a tokenizer to count tokens): a teacher that errors.
    ([], "returned nothing for all 6 prompts (errored: 6; first error:"),
])
def test_cli_refuses_bad_input_in_one_line_and_writes_nothing(extra, expected, tiny, tmp_path, capsys):
    from charbench.cli import main

    out = tmp_path / "run"
    assert main(cli_args(tiny, out, *extra)) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_needs_weights_for_a_student_that_is_not_a_charbench_model(tmp_path, capsys):
    from charbench.cli import main

    args = ["train", "distill", "--constitution", "sarcastic", "--student", "mockllm/model", "--teacher",
            "mockllm/model", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert "--student-checkpoint" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_truncation_is_read_from_the_reply_when_the_provider_cannot_say(tokenizer):
    from charbench.trainers.distill import was_truncated

    # The embedded provider reports stop reason "unknown" and the padded batch length as usage: a short
    # reply in a batch with a long one is not truncated; a reply as long as the budget is.
    assert not was_truncated("A short reply.", "unknown", tokenizer, 16)
    assert was_truncated("word " * 40, "unknown", tokenizer, 16)
    assert was_truncated("cut", "max_tokens", tokenizer, 16) and not was_truncated("word " * 40, "stop", tokenizer, 16)
