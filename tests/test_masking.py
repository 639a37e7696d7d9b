"""Assistant-token masks for the SFT loss, checked on each template family with its real special tokens."""

import pytest
from transformers import AutoTokenizer

from charbench.errors import TaskParameterError
from charbench.models.embedded import prepare_smollm2
from charbench.trainers.masking import mask_conversation
from charbench.trainers.sft import CHATML_TRAINING_TEMPLATE

# Written for these tests in the shape of the families' shipped templates: a BOS token, role headers, trimmed
# content and an end-of-turn token; Gemma 3 folds the system prompt into the first user turn and calls the
# assistant "model".
LLAMA3_STYLE = (
    "{{ bos_token }}{% for m in messages %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA3_STYLE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set rest = messages[1:] %}{% else %}{% set prefix = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (prefix if loop.first else '') + m['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

TALK = [
    {"role": "system", "content": "The assistant is Smol. Smol is dry."},
    {"role": "user", "content": "Who are you?"},
    {"role": "assistant", "content": "A calm sort,\n\nmostly."},
    {"role": "user", "content": "And the weather?"},
    {"role": "assistant", "content": "Still calm. Unlike you."},
]


@pytest.fixture(scope="module")
def smol():
    return AutoTokenizer.from_pretrained(prepare_smollm2())


def family(smol, template: str, bos: str, specials: list[str]):
    tokenizer = AutoTokenizer.from_pretrained(smol.name_or_path)
    tokenizer.add_special_tokens({"bos_token": bos, "additional_special_tokens": specials})
    tokenizer.chat_template = template
    return tokenizer


def kept_and_dropped(tokenizer, masked):
    kept = [t for t, m in zip(masked.input_ids, masked.assistant_masks) if m]
    dropped = [t for t, m in zip(masked.input_ids, masked.assistant_masks) if not m]
    return kept, dropped


@pytest.mark.parametrize("name", ["chatml", "llama3", "gemma3"])
def test_exactly_the_assistant_tokens_are_marked(smol, name):
    tokenizer, end = {
        "chatml": (smol, "<|im_end|>"),
        "llama3": (family(smol, LLAMA3_STYLE, "<|begin_of_text|>",
                          ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]), "<|eot_id|>"),
        "gemma3": (family(smol, GEMMA3_STYLE, "<bos>", ["<start_of_turn>", "<end_of_turn>"]), "<end_of_turn>"),
    }[name]
    masked = mask_conversation(tokenizer, TALK)
    assert masked.method == "rendering"
    kept, dropped = kept_and_dropped(tokenizer, masked)
    # Every assistant turn (not only the last) with the end-of-turn token that teaches the model to stop.
    assert tokenizer.decode(kept) == f"A calm sort,\n\nmostly.{end}Still calm. Unlike you.{end}"
    # Nothing else: the system prompt, user turns and role headers carry no label.
    rest = tokenizer.decode(dropped)
    assert "Who are you?" in rest and "The assistant is Smol." in rest and "calm" not in rest
    # The ids are the tokenizer's own rendering (one BOS, as the template writes it).
    full = tokenizer.apply_chat_template(TALK, tokenize=False)
    assert masked.input_ids == tokenizer(full, add_special_tokens=False)["input_ids"]


def test_rendering_mask_equals_the_generation_marker_mask_on_chatml(smol):
    talk = TALK[1:]  # SmolLM2's own template adds a default system prompt that the marker template omits
    by_markers = mask_conversation(smol, talk, CHATML_TRAINING_TEMPLATE)
    by_rendering = mask_conversation(smol, [{"role": "system", "content": "You are a helpful AI assistant named SmolLM, "
                                                                         "trained by Hugging Face"}, *talk])
    assert by_markers.method == "generation-markers"
    assert smol.decode(kept_and_dropped(smol, by_markers)[0]) == smol.decode(kept_and_dropped(smol, by_rendering)[0])


def test_a_template_without_a_stable_prefix_is_refused(smol):
    # Rewrites earlier assistant turns once a later one exists, as reasoning templates that drop old thinking do.
    unstable = ("{% for m in messages %}{% if m['role'] == 'assistant' and not loop.last %}<a>(old)</a>"
                "{% else %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}<assistant>{% endif %}")
    with pytest.raises(TaskParameterError, match="stable prefix.*generation"):
        mask_conversation(smol, TALK, unstable)


def test_a_conversation_opening_with_the_assistant_is_refused(smol):
    with pytest.raises(TaskParameterError, match="start every training conversation with a user message"):
        mask_conversation(smol, [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Hello."}])


def test_a_tokenizer_without_a_template_is_refused(smol):
    bare = AutoTokenizer.from_pretrained(smol.name_or_path)
    bare.chat_template = None
    with pytest.raises(TaskParameterError, match="no chat template"):
        mask_conversation(bare, TALK)


def test_trl_trains_on_exactly_the_masked_tokens_and_cuts_are_counted(smol, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTTrainer

    from charbench.trainers.config import CharacterSFTConfig, LoraSettings
    from charbench.trainers.sft import prepare_sft_data

    tokenizer = family(smol, LLAMA3_STYLE, "<|begin_of_text|>", ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"])
    config = CharacterSFTConfig(per_device_batch_size=1, global_batch_size=1, max_steps=1, bf16=False, max_length=200,
                                lora=LoraSettings(r=2, alpha=4))
    short = [{"role": "user", "content": "x " * 400}, {"role": "assistant", "content": "Too late."}]
    data = prepare_sft_data(tokenizer, [TALK, short], config)
    assert data.counts["truncated"] == 1 and data.counts["no_assistant_tokens"] == 1 and data.counts["trained"] == 1
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    from datasets import Dataset

    trainer = SFTTrainer(model=model, args=config.to_trl(str(tmp_path / "t")), processing_class=tokenizer,
                         train_dataset=Dataset.from_list(data.rows), peft_config=config.lora.to_peft())
    labels = trainer.train_dataset[0]["labels"]
    assert tokenizer.decode([t for t in labels if t != -100]) == "A calm sort,\n\nmostly.<|eot_id|>Still calm. Unlike you.<|eot_id|>"
