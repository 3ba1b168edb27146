"""The identity control: a per-position channel map, no exchange between positions."""

import pytest
import torch

import operators


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (1, 4, 1, 7), (3, 4, 3, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_identity2d_is_a_per_position_linear_map(dtype, tol, shape, seed):
    torch.manual_seed(seed)
    layer = operators.create("identity", in_channels=4, out_channels=3).to(dtype)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    w, b = layer.weight.reshape(3, 4), layer.bias
    expected = torch.einsum("oc,bchw->bohw", w, x) + b.view(1, 3, 1, 1)
    torch.testing.assert_close(layer(x), expected, atol=tol, rtol=tol)
    g = torch.randn_like(expected)
    got = torch.autograd.grad(layer(x), (x, layer.weight), g)
    want = torch.autograd.grad(expected, (x, layer.weight), g)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, atol=tol, rtol=tol)


def test_identity1d_matches_its_2d_twin():
    torch.manual_seed(0)
    one, two = operators.Identity1d(4, 5, dtype=torch.float64), operators.Identity2d(4, 5, dtype=torch.float64)
    two.load_state_dict({"weight": one.weight.detach().unsqueeze(-1), "bias": one.bias.detach()})
    x = torch.randn(2, 4, 9, dtype=torch.float64)
    torch.testing.assert_close(one(x), two(x.unsqueeze(-1)).squeeze(-1))


def test_no_position_sees_another():
    torch.manual_seed(0)
    layer = operators.create("identity", in_channels=4)
    x = torch.randn(1, 4, 5, 5)
    y = x.clone()
    y[..., 2, 3] += 10.0
    changed = (layer(y) - layer(x)).abs().sum(1)[0] > 0
    assert changed[2, 3] and changed.sum() == 1


def test_registered_as_identity_in_the_control_family():
    assert operators.canonical("identity") == "identity2d"
    assert operators.family("identity") == "control"
    assert operators.create("identity", in_channels=6)(torch.randn(2, 6, 3, 3)).shape == (2, 6, 3, 3)
    assert sum(p.numel() for p in operators.create("identity", in_channels=6, out_channels=2).parameters()) == 14
