"""N3's embedding and temperature networks with their first convolutions run as one equal the two run apart.

Two computations: ``run_both`` (one convolution with the stacked weights, split) against the
networks called one after the other (what ``shareable`` turns off), on the same block: the
selector's weights and the block's output, and the gradients of the input and of every
parameter. The backend may block the wider product differently, and train-mode batch norm and
the softmax rounds amplify that: float64 is compared to 1e-9 of the largest value; in float32
both are measured against the float64 run and the shared stem may not be worse.
"""

import pytest
import torch
from torch import nn

import neighborhoods.selectors.n3 as n3_module
import operators
from neighborhoods.selectors.shared_stem import run_both, shareable

TOL = {torch.float64: 1e-9}


def close(a, b, dtype):
    torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype] * max(1.0, b.abs().max().item()))


SHAPES = [((4, 8, 4, 4), dict(k=3, patch_size=2, patch_stride=1, window=4)),
          ((2, 5, 9, 7), dict(k=2, patch_size=3, patch_stride=2, window=7)),
          ((3, 16, 12, 12), dict(k=4, patch_size=4, patch_stride=4, window=12))]


def outputs(shape, kw, dtype, seed, share, monkeypatch):
    """The block's output, the selector's weights and every gradient, with or without the shared stem."""
    torch.manual_seed(seed)
    block = operators.create("n3_block2d", in_channels=shape[1], dtype=dtype, **kw)
    sel = block.selector
    assert shareable(sel.embedding, sel.temperature)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    with monkeypatch.context() as m:
        if not share:
            m.setattr(n3_module, "shareable", lambda a, b: False)
        y = block(x)
        weight = block.neighborhood(x).weight
        up = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        grads = torch.autograd.grad((y * up).sum() + weight.square().sum(), [x, *block.parameters()])
    return [y, weight, *grads]


@pytest.mark.parametrize("shape, kw", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_first_layers_equal_the_two_networks_float64(shape, kw, seed, monkeypatch):
    # 1e-9 of the scale, not 1e-12: train-mode batch norm over a few samples and the continuous
    # k-NN's softmax rounds amplify the last-bit difference of the wider convolution
    shared = outputs(shape, kw, torch.float64, seed, True, monkeypatch)
    apart = outputs(shape, kw, torch.float64, seed, False, monkeypatch)
    for a, b in zip(shared, apart):
        close(a, b, torch.float64)


@pytest.mark.parametrize("shape, kw", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_first_layers_are_as_accurate_as_the_two_networks_float32(shape, kw, seed, monkeypatch):
    # the same amplification makes float32 differ by up to ~1e-3 of the scale: both float32 runs are
    # measured against the float64 one, and the shared stem may not be worse than 4x the separate one
    truth = outputs(shape, kw, torch.float64, seed, False, monkeypatch)
    shared = outputs(shape, kw, torch.float32, seed, True, monkeypatch)
    apart = outputs(shape, kw, torch.float32, seed, False, monkeypatch)
    for a, b, ref in zip(shared, apart, truth):
        scale = max(1.0, ref.abs().max().item())
        err_shared = (a.double() - ref).abs().max().item()
        err_apart = (b.double() - ref).abs().max().item()
        assert err_shared <= 4 * max(err_apart, 1e-5 * scale), (err_shared, err_apart, scale)


def test_the_shared_route_is_taken(monkeypatch):
    block = operators.create("n3_block2d", in_channels=4, k=2, patch_size=2, patch_stride=1, window=4)
    calls = []
    real = n3_module.run_both
    monkeypatch.setattr(n3_module, "run_both", lambda *a: calls.append(1) or real(*a))
    block(torch.randn(2, 4, 4, 4))
    assert calls == [1]


def test_only_matching_plain_convolutions_are_shared():
    def net(conv):
        return nn.Sequential(conv, nn.ReLU(), nn.Conv2d(8, 1, 1))
    a = net(nn.Conv2d(4, 8, 3, padding=1))
    assert shareable(a, net(nn.Conv2d(4, 8, 3, padding=1)))
    assert shareable(a, nn.Sequential(nn.Conv2d(4, 3, 3, padding=1)))  # other widths are fine
    assert not shareable(a, net(nn.Conv2d(4, 8, 3, padding=2)))
    assert not shareable(a, net(nn.Conv2d(4, 8, 3, padding=1, bias=False)))
    assert not shareable(a, net(nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect")))
    assert not shareable(a, net(nn.Conv1d(4, 8, 3, padding=1)))
    assert not shareable(a, None)
    hooked = net(nn.Conv2d(4, 8, 3, padding=1))
    hooked[0].register_forward_hook(lambda *args: None)  # the stacked call would skip the hook
    assert not shareable(a, hooked)


def test_run_both_outputs_are_each_network_on_x():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 2, 1)).double()
    b = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh()).double()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    ya, yb = run_both(a, b, x)
    close(ya, a(x), torch.float64)
    close(yb, b(x), torch.float64)
