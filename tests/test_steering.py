import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from charbench.models.steering import SteeringVectors, apply_steering, middle_layers

# A fluent strength on the embedded model (bench/steering_sweep.py, docs/benchmarks.md).
STEER_TEST_COEF = 0.5


def test_middle_layers_follow_the_paper_percentiles():
    assert middle_layers(32) == list(range(4, 28))
    assert middle_layers(30) == list(range(3, 26))


def test_hooks_add_the_norm_relative_share_to_each_steered_layer():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    ids = torch.tensor([[1, 2, 3]])
    seen = {}
    # What layers 1 and 2 receive: the outputs of layers 0 and 1 as the rest of the model sees them.
    for i in (1, 2):
        model.model.layers[i].register_forward_pre_hook(lambda m, args, i=i: seen.__setitem__(i, args[0].clone()))
    with torch.no_grad():
        model(ids)
    plain = dict(seen)
    direction = torch.zeros(2, 16)
    direction[:, 0] = 1.0
    vectors = SteeringVectors(layers=[1, 2], directions=direction, mean_norms=torch.tensor([4.0, 8.0]))
    handles = apply_steering(model, vectors, coef=0.5)
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    # Layer 0 is not steered; layer 1's output moves by 0.5 * 4 / 2 = 1.0 along the direction at every position.
    assert torch.allclose(seen[1], plain[1])
    shift = seen[2] - plain[2]
    assert torch.allclose(shift[..., 0], torch.full((1, 3), 1.0), atol=1e-5)
    assert torch.allclose(shift[..., 1:], torch.zeros(1, 3, 15), atol=1e-5)


def planted_activations(seed=0, n_pairs=48, hidden=64, shift=2.0, spread=3.0):
    """Paired states whose positives sit ``shift`` further along a planted direction, plus a component of the
    difference that varies from prompt to prompt (sd ``spread``) along another direction, plus a large
    prompt-specific base shared by both sides of a pair."""
    import numpy as np

    rng = np.random.default_rng(seed)
    planted = rng.normal(size=hidden)
    planted /= np.linalg.norm(planted)
    nuisance = rng.normal(size=hidden)
    nuisance -= (nuisance @ planted) * planted
    nuisance /= np.linalg.norm(nuisance)
    base = rng.normal(0, 5.0, (n_pairs, 1, hidden))
    neg = base + rng.normal(0, 0.3, (n_pairs, 1, hidden))
    pos = (base + shift * planted + rng.normal(0, spread, (n_pairs, 1, 1)) * nuisance
           + rng.normal(0, 0.3, (n_pairs, 1, hidden)))
    return pos, neg, planted


def test_mean_difference_recovers_a_planted_direction_that_both_pca_variants_miss():
    import numpy as np
    from sklearn.decomposition import PCA

    from charbench.models.steering import steering_directions

    for seed in range(5):
        pos, neg, planted = planted_activations(seed)
        directions, norms = steering_directions(pos, neg)
        assert directions.shape == (1, 64) and np.isclose(np.linalg.norm(directions[0]), 1.0)
        assert directions[0] @ planted > 0.9, seed
        assert np.isclose(norms[0], np.linalg.norm(neg[:, 0], axis=1).mean())
        # Version 1 of this module: PCA centres the differences, removing the planted shift it should find.
        diff = pos[:, 0] - neg[:, 0]
        old = PCA(n_components=1).fit(diff).components_[0]
        assert abs(old @ planted) < 0.5, seed
        # repeng's pca_center (the paper's code) keeps the shift but follows the larger prompt-dependent spread.
        centred = PCA(n_components=1).fit(np.vstack([diff / 2, -diff / 2])).components_[0]
        assert abs(centred @ planted) < 0.5, seed


def test_steering_directions_refuse_mismatched_or_empty_contrasts():
    import numpy as np
    import pytest

    from charbench.models.steering import steering_directions

    with pytest.raises(ValueError, match="same .*shape|share one"):
        steering_directions(np.zeros((4, 2, 8)), np.zeros((3, 2, 8)))
    with pytest.raises(ValueError, match="unchanged"):
        steering_directions(np.ones((4, 2, 8)), np.ones((4, 2, 8)))


def test_last_token_states_ignore_padding_on_either_side():
    from types import SimpleNamespace

    import numpy as np
    from transformers import AutoTokenizer

    from charbench.models.embedded import minilm_dir
    from charbench.models.steering import last_token_states

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=40000, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    texts = ["a short one", "a much longer text that needs padding in a batch"]
    alone = np.concatenate([last_token_states(SimpleNamespace(tokenizer=tok, model=model), [t], [1, 2]) for t in texts])
    for side in ("left", "right"):
        tok.padding_side = side
        batched = last_token_states(SimpleNamespace(tokenizer=tok, model=model), texts, [1, 2])
        assert np.allclose(batched, alone, atol=1e-4), side


def tiny_llama_and_tokenizer():
    from transformers import AutoTokenizer

    from charbench.models.embedded import minilm_dir

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    model = LlamaForCausalLM(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=2)).eval()
    return model, tok


def test_diagnostics_see_the_push_and_score_continuations_exactly():
    from charbench.models.steering import (
        distinct_ratio,
        mean_token_logprobs,
        projections,
        steered_layer_states,
        steering,
    )

    model, tok = tiny_llama_and_tokenizer()
    direction = torch.zeros(2, 16)
    direction[:, 0] = 1.0
    vectors = SteeringVectors(layers=[1, 2], directions=direction, mean_norms=torch.tensor([4.0, 8.0]))
    texts = ["the cat sat", "a longer sentence about dogs"]
    plain = steered_layer_states(model, tok, texts, vectors)
    with steering(model, vectors, 0.5):
        pushed = steered_layer_states(model, tok, texts, vectors)
    # The capture runs after the steering hook: layer 1's output is 0.5 * 4 / 2 = 1.0 further along e0.
    assert np.allclose(pushed[:, 0, 0] - plain[:, 0, 0], 1.0, atol=1e-5)
    assert np.allclose(pushed[:, 0, 1:], plain[:, 0, 1:], atol=1e-5)
    assert projections(pushed, vectors).shape == (2,) and (projections(pushed, vectors) > projections(plain, vectors)).all()
    # The block removes its hooks.
    assert np.allclose(steered_layer_states(model, tok, texts, vectors), plain, atol=1e-6)
    # Mean log-probability of the continuation tokens, checked against a direct computation.
    ctx, cont = tok("the cat", add_special_tokens=False)["input_ids"], tok(" sat down", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ctx + cont])).logits[0]
    direct = np.mean([float(torch.log_softmax(logits[len(ctx) - 1 + i], -1)[t]) for i, t in enumerate(cont)])
    assert np.isclose(mean_token_logprobs(model, tok, ["the cat"], [" sat down"])[0], direct, atol=1e-5)
    with pytest.raises(ValueError, match="empty continuation"):
        mean_token_logprobs(model, tok, ["the cat"], [""])
    assert distinct_ratio(["a", "b", "a", "b"]) == 0.5 and np.isclose(distinct_ratio(["a", "b", "a", "b"], 2), 2 / 3)
    assert np.isnan(distinct_ratio([]))


@pytest.mark.slow
def test_steering_moves_unprompted_states_and_likelihoods_toward_the_persona_prompt():
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from charbench.constitutions import load_constitution
    from charbench.models.embedded import resolve_checkpoint
    from charbench.models.steering import (
        compute_steering_vectors,
        greedy_replies,
        mean_token_logprobs,
        projections,
        steered_layer_states,
        steering,
    )
    from charbench.paper import persona_system_prompt
    from charbench.prompts import load_prompt_set

    path = resolve_checkpoint("smollm2")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    constitution = load_constitution("sarcastic")
    vectors = compute_steering_vectors(SimpleNamespace(tokenizer=tok, model=model, assistant_name="Assistant"),
                                       constitution, n_pairs=8)
    system = persona_system_prompt(constitution, "Assistant")

    def chat(prompt, with_persona):
        messages = ([{"role": "system", "content": system}] if with_persona else []) + [{"role": "user", "content": prompt}]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    prompts = [p.text for p in load_prompt_set("offline", split="eval", limit=3)]
    plain, prompted = [chat(p, False) for p in prompts], [chat(p, True) for p in prompts]
    persona_replies = greedy_replies(model, tok, prompted, max_new_tokens=24)
    plain_replies = greedy_replies(model, tok, plain, max_new_tokens=24)
    unsteered = projections(steered_layer_states(model, tok, plain, vectors), vectors)
    target = projections(steered_layer_states(model, tok, prompted, vectors), vectors)
    # Held-out prompts: the persona prompt itself moves the states along the direction.
    assert (target > unsteered).all()
    margin = mean_token_logprobs(model, tok, plain, persona_replies) - mean_token_logprobs(model, tok, plain, plain_replies)
    with steering(model, vectors, STEER_TEST_COEF):
        steered = projections(steered_layer_states(model, tok, plain, vectors), vectors)
        steered_margin = (mean_token_logprobs(model, tok, plain, persona_replies)
                          - mean_token_logprobs(model, tok, plain, plain_replies))
    assert (steered > unsteered).all()
    # Steering makes what the persona-prompted model said more likely relative to what the plain model said.
    assert steered_margin.mean() > margin.mean()
    # Leaving the block removes the hooks.
    again = projections(steered_layer_states(model, tok, plain, vectors), vectors)
    assert np.allclose(again, unsteered, atol=1e-4)


def test_steering_cache_is_reused_and_a_damaged_file_is_named(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from charbench import errors
    from charbench.constitutions import load_constitution
    from charbench.models import steering

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    calls = []
    fixed = SteeringVectors(layers=[1, 2], directions=torch.eye(2, 8), mean_norms=torch.tensor([3.0, 5.0]))
    monkeypatch.setattr(steering, "compute_steering_vectors", lambda api, c, n: calls.append(n) or fixed)
    api = SimpleNamespace(checkpoint="/ckpt")
    first = steering.persona_steering_vectors(api, load_constitution("sarcastic"), n_pairs=4)
    again = steering.persona_steering_vectors(api, load_constitution("sarcastic"), n_pairs=4)
    assert calls == [4] and again.layers == [1, 2] and torch.equal(again.directions, first.directions)
    (cached,) = (tmp_path / "steering").glob("*.safetensors")
    with cached.open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(errors.CacheIntegrityError, match="delete .*safetensors"):
        steering.persona_steering_vectors(api, load_constitution("sarcastic"), n_pairs=4)
