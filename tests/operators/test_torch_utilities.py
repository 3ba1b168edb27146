"""The layers behave like torch's under torch's own utilities (issue 18, item 5).

Parameters are real ``nn.Parameter`` attributes under torch's names, so weight_norm,
spectral_norm and pruning act on what the layer computes with; ``functional_call`` with a
layer's own state_dict is the layer; state_dict values are the parameters' storage, so an
EMA that updates them in place (timm's ModelEmaV2) updates the layer.
"""

import copy

import pytest
import torch
from torch.func import functional_call
from torch.nn.utils import parametrizations, prune

import operators

NAMES = operators.available()
F64 = dict(rtol=1e-12, atol=1e-12)


def build(name, seed=0):
    ex = operators.example(name)
    torch.manual_seed(seed)
    layer = operators.create(name, **ex.kwargs).double().eval()
    x = torch.randn(*ex.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    return layer, x


def conv_like(kind):
    """operators.Conv2d and ConvNN2d (cosine: the weight does not steer the selection), x (2, 4, 6, 7)."""
    torch.manual_seed(0)
    layer = (operators.Conv2d(4, 5, 3, padding=1) if kind == "conv2d" else operators.ConvNN2d(4, 5, k=5))
    return layer.double().eval(), torch.randn(2, 4, 6, 7, dtype=torch.float64)


def twin_with(kind, weight, bias):
    """A fresh layer of the same configuration holding ``weight`` and ``bias`` as plain parameters.

    (Built anew rather than deep-copied: removing a parametrization from a deep copy deletes
    the property from the class the copy shares with the original, a torch behaviour.)
    """
    twin, _ = conv_like(kind)
    with torch.no_grad():
        twin.weight.copy_(weight)
        twin.bias.copy_(bias)
    return twin


@pytest.mark.parametrize("kind", ["conv2d", "conv_nn2d"])
def test_weight_and_bias_are_real_parameters_under_torch_names(kind):
    layer, _ = conv_like(kind)
    params = dict(layer.named_parameters())
    assert list(params) == ["weight", "bias"]
    assert params["weight"] is layer.weight and isinstance(layer.weight, torch.nn.Parameter)
    assert list(layer.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("kind", ["conv2d", "conv_nn2d"])
def test_weight_norm_reparametrises_the_weight_the_layer_uses(kind):
    layer, x = conv_like(kind)
    before = layer(x)
    parametrizations.weight_norm(layer)
    torch.testing.assert_close(layer(x), before, **F64)  # g = |v| at the start: the same weight
    with torch.no_grad():  # a new magnitude per output channel must reach the output
        layer.parametrizations.weight.original0.mul_(torch.linspace(0.5, 2.0, layer.out_channels,
                                                                     dtype=torch.float64).view(-1, 1, *[1] * (layer.weight.ndim - 2)))
    assert not torch.allclose(layer(x), before)
    torch.testing.assert_close(layer(x), twin_with(kind, layer.weight, layer.bias)(x), **F64)
    layer(x).sum().backward()  # gradients reach g and v
    assert layer.parametrizations.weight.original0.grad is not None
    assert layer.parametrizations.weight.original1.grad is not None


@pytest.mark.parametrize("kind", ["conv2d", "conv_nn2d"])
def test_spectral_norm_bounds_the_weight_the_layer_uses(kind):
    layer, x = conv_like(kind)
    parametrizations.spectral_norm(layer)
    layer.train()
    for _ in range(30):  # power iterations converge in training mode
        layer(x)
    layer.eval()
    sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
    torch.testing.assert_close(sigma, torch.tensor(1.0, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer(x), twin_with(kind, layer.weight, layer.bias)(x), **F64)


@pytest.mark.parametrize("kind", ["conv2d", "conv_nn2d"])
def test_l1_unstructured_pruning_zeroes_the_weight_the_layer_uses(kind):
    layer, x = conv_like(kind)
    prune.l1_unstructured(layer, "weight", amount=0.5)
    assert (layer.weight == 0).sum().item() == layer.weight.numel() // 2
    pruned = layer(x)
    torch.testing.assert_close(pruned, twin_with(kind, layer.weight, layer.bias)(x), **F64)
    unpruned = twin_with(kind, layer.weight_orig, layer.bias)(x)
    assert not torch.allclose(pruned, unpruned)


def has_state(name):
    layer, _ = build(name)
    return bool(layer.state_dict())


@pytest.mark.parametrize("name", [n for n in NAMES if has_state(n)])
def test_functional_call_with_the_state_dict_is_the_layer(name):
    layer, x = build(name)
    torch.testing.assert_close(functional_call(layer, layer.state_dict(), (x,)), layer(x), **F64)
    # another state through functional_call == a layer loaded with that state (so the keys are used, not ignored)
    moved = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in layer.state_dict().items()}
    other, _ = build(name, seed=5)
    other.load_state_dict(moved)
    out = functional_call(layer, moved, (x,))
    torch.testing.assert_close(out, other(x), **F64)
    assert not torch.allclose(out, layer(x))


@pytest.mark.parametrize("name", [n for n in NAMES if has_state(n)])
def test_state_dict_values_are_the_parameters_storage(name):
    layer, _ = build(name)
    for key, value in layer.state_dict().items():
        held = layer.get_parameter(key) if key in dict(layer.named_parameters()) else layer.get_buffer(key)
        assert value.data_ptr() == held.data_ptr() and value.shape == held.shape, key


def test_ema_through_state_dict_updates_self_attention_q_k_v():
    """timm's ModelEmaV2 update, verbatim in spirit: in place on the EMA copy's state_dict values."""
    torch.manual_seed(0)
    model = operators.SelfAttention(8, 2, dtype=torch.float64)
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    old = {k: v.clone() for k, v in ema.state_dict().items()}
    decay = 0.9
    with torch.no_grad():
        for ema_v, model_v in zip(ema.state_dict().values(), model.state_dict().values()):
            ema_v.copy_(ema_v * decay + (1.0 - decay) * model_v)
    expected = {k: old[k] * decay + (1 - decay) * v for k, v in model.state_dict().items()}
    e = 8
    q, k, v, o = ema.projections()
    for i, proj in enumerate((q, k, v)):  # the parts compute with the averaged rows
        torch.testing.assert_close(proj.weight, expected["in_proj_weight"][i * e:(i + 1) * e], **F64)
        torch.testing.assert_close(proj.bias, expected["in_proj_bias"][i * e:(i + 1) * e], **F64)
    torch.testing.assert_close(o.weight, expected["out_proj.weight"], **F64)
    # and the EMA layer's output is the averaged layer's, built independently from the averaged state
    mha = torch.nn.MultiheadAttention(e, 2, batch_first=True, dtype=torch.float64)
    mha.load_state_dict(expected)
    x = torch.randn(3, 5, e, dtype=torch.float64)
    torch.testing.assert_close(ema(x), mha(x, x, x, need_weights=False)[0], rtol=1e-10, atol=1e-10)
    # the copy's parts read the copy's parameters, not the original's
    assert ema.selector.query.weight.data_ptr() == ema.in_proj_weight.data_ptr()
    assert model.selector.query.weight.data_ptr() == model.in_proj_weight.data_ptr()


def test_self_attention_holds_multihead_attentions_parameters():
    layer = operators.SelfAttention(8, 2)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    assert [(k, p.shape) for k, p in layer.named_parameters()] == [(k, p.shape) for k, p in mha.named_parameters()]
    plain = operators.SelfAttention(8, 2, bias=False)
    assert plain.in_proj_bias is None and list(plain.state_dict()) == ["in_proj_weight", "out_proj.weight"]
