"""Every registered operator builds with create(name, in_channels=C, out_channels=None) and keeps or changes C.

Registry-driven (like timm's test_models): a new entry gets these checks by being registered.
"""

import pytest
import torch

import operators

NAMES = operators.available()
C = 16


def _input(name, channels=C):
    layout = operators.info(name).layout
    shape = {"(B, C, T, H, W)": (2, channels, 4, 8, 8), "(B, C, H, W)": (2, channels, 16, 16), "(B, C, N)": (2, channels, 20),
             "(B, N, E)": (2, 20, channels)}
    return torch.randn(*shape[layout], requires_grad=True), (-1 if layout == "(B, N, E)" else 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("out_channels", [None, C, 24])
def test_create_in_out_channels(name, out_channels):
    torch.manual_seed(0)
    layer = operators.create(name, in_channels=C, out_channels=out_channels)
    x, axis = _input(name)
    y = layer(x)
    expected = list(x.shape)
    expected[axis] = out_channels or C
    assert list(y.shape) == expected
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", [n for n in NAMES if operators.info(n).residual])
def test_residual_blocks_start_as_identity_or_projection(name):
    torch.manual_seed(0)
    x, _ = _input(name)
    same = operators.create(name, in_channels=C).eval()
    torch.testing.assert_close(same(x), x, rtol=0, atol=0)  # zero-initialised last map: Y = X
    with torch.no_grad():
        for p in same.parameters():
            p.add_(0.5)
    assert not torch.equal(same(x), x)
    same.reset_parameters()  # the residual combiner zeroes its last map again, after its parts reset
    torch.testing.assert_close(same(x), x, rtol=0, atol=0)
    wider = operators.create(name, in_channels=C, out_channels=24).eval()
    proj = getattr(wider.combiner, "shortcut", None) or wider.input_projection
    # a fresh block with C != out_channels is its 1x1 projection shortcut, P X
    torch.testing.assert_close(wider(x), proj(x), rtol=0, atol=1e-6)


def test_conv_registry_defaults_are_3x3_same():
    layer = operators.create("conv2d", in_channels=3)
    ref = torch.nn.Conv2d(3, 3, 3, padding="same")
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 8, 9)
    torch.testing.assert_close(layer(x), ref(x))
    with pytest.raises(TypeError, match="kernel_size"):  # the class keeps torch's signature
        operators.Conv2d(3, 3)


def test_self_attention_maps_in_channels_to_embed_dim():
    layer = operators.create("self_attention", in_channels=8)
    assert (layer.embed_dim, layer.num_heads) == (8, 1)
    mha = torch.nn.MultiheadAttention(8, 1, batch_first=True)
    layer.load_state_dict(mha.state_dict())
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(layer(x), mha(x, x, x, need_weights=False)[0], rtol=1e-5, atol=1e-6)
    assert operators.create("self_attention", in_channels=8, out_channels=4, num_heads=2)(x).shape == (2, 5, 4)


def test_n3_concatenation_stays_reachable():
    x = torch.randn(2, 3, 12, 12)
    kw = dict(in_channels=3, k=2, patch_size=4, stride=2, window=8, embed_channels=4, hidden_channels=8)
    raw = operators.create("n3_block2d", project=False, **kw)
    assert raw(x).shape == (2, 9, 12, 12)  # (k + 1) C, the paper's output
    projected = operators.create("n3_block2d", **kw)
    projected.load_state_dict(raw.state_dict(), strict=False)
    p = projected.combiner.project
    torch.testing.assert_close(projected(x), p(raw(x)))  # the default is the 1x1 projection of it
