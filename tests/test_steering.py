import torch
from transformers import LlamaConfig, LlamaForCausalLM

from charbench.models.steering import SteeringVectors, apply_steering, middle_layers


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
