import pytest
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from charbench.errors import TaskParameterError
from charbench.models.embedded import prepare_smollm2
from charbench.trainers import CharacterDPOConfig, distillation_pairs, train_character_dpo
from charbench.trainers.config import LoraSettings


@pytest.fixture
def tiny(tmp_path):
    """A randomly initialised two-layer Llama with SmolLM2's tokenizer (and chat template)."""
    tokenizer = AutoTokenizer.from_pretrained(prepare_smollm2())
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_paper_defaults_reach_trl():
    args = CharacterDPOConfig().to_trl("/tmp/x")
    assert args.learning_rate == 5e-5 and args.beta == 0.1
    assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, 0.1]
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 32
    lora = CharacterDPOConfig().lora.to_peft()
    assert lora.r == 64 and lora.lora_alpha == 128
    assert (args.adam_beta1, args.adam_beta2) == (0.9, 0.98)


def test_dpo_learning_rate_decays_to_a_floor_not_to_zero():
    import torch
    from transformers import get_scheduler

    args = CharacterDPOConfig().to_trl("/tmp/x")
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    # The same call the Trainer makes with these arguments.
    schedule = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=1, num_training_steps=10,
                             scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    rates = []
    for _ in range(10):
        optimizer.step()
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert max(rates) == pytest.approx(5e-5) and rates[-1] == pytest.approx(5e-6)


def test_pairs_refuse_mismatched_or_empty_input():
    with pytest.raises(TaskParameterError, match="one teacher and one student"):
        distillation_pairs(["a", "b"], ["x"], ["y", "z"])
    with pytest.raises(TaskParameterError, match="empty"):
        distillation_pairs(["a"], [""], ["y"])


def test_dpo_trains_a_tiny_model_and_writes_a_loadable_checkpoint(tiny, tmp_path):
    rows = distillation_pairs(["hi", "how are you?"] * 2, ["Oh, splendid, a greeting.", "Oh, thrilled, truly."] * 2,
                              ["Hello!", "I'm fine."] * 2)
    config = CharacterDPOConfig(per_device_batch_size=2, global_batch_size=2, max_steps=2, bf16=False, max_length=64,
                                lora=LoraSettings(r=4, alpha=8))
    merged = train_character_dpo(str(tiny), rows, tmp_path / "out", config)
    assert (merged / "config.json").exists() and (tmp_path / "out" / "adapter" / "adapter_config.json").exists()
    reloaded = LlamaForCausalLM.from_pretrained(merged)
    assert reloaded.config.hidden_size == 32


def test_sft_trains_on_multiturn_transcripts(tiny, tmp_path):
    from charbench.trainers import CharacterSFTConfig, train_introspection_sft

    talk = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A calm sort."},
            {"role": "user", "content": "And?"}, {"role": "assistant", "content": "Still calm."}]
    config = CharacterSFTConfig(per_device_batch_size=2, global_batch_size=2, max_steps=1, bf16=False, max_length=64,
                                lora=LoraSettings(r=4, alpha=8))
    merged = train_introspection_sft(str(tiny), [talk] * 4, tmp_path / "out", config)
    assert (merged / "config.json").exists()


def test_training_template_masks_exactly_the_assistant_turns(tiny):
    from charbench.trainers.sft import training_chat_template

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    talk = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A calm sort."},
            {"role": "user", "content": "And?"}, {"role": "assistant", "content": "Still calm."}]
    out = tokenizer.apply_chat_template(talk, chat_template=training_chat_template(tokenizer), tokenize=True,
                                        return_dict=True, return_assistant_tokens_mask=True)
    kept = tokenizer.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert kept == "A calm sort.<|im_end|>Still calm.<|im_end|>"
