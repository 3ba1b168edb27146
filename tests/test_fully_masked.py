"""A query whose every key is masked out: both paths and the neighbourhood agree (issue 9, item 7).

Defined result: the query attends to nothing, its attention weights are all 0 and so its
``A V`` is 0 (the layer's output there is whatever the output projection makes of 0, i.e.
its bias). This is what ``F.scaled_dot_product_attention`` returns; the reference path used
to give NaN (a softmax over only ``-inf``).
"""

import pytest
import torch
import torch.nn.functional as F

from operators import SelfAttention, SelfAttention2d


def _padded_batch(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 6, 8, generator=g, dtype=dtype)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[0, 4:] = True   # partly padded
    pad[1] = True       # fully padded: no query of sample 1 has a key
    return x, pad


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("seed", range(3))
def test_fully_padded_sample_paths_agree(dtype, tol, seed):
    torch.manual_seed(seed)
    layer = SelfAttention(8, 2).to(dtype)
    x, pad = _padded_batch(dtype, seed)
    outputs, grads = {}, {}
    for path in ("fast", "reference"):
        xi = x.clone().requires_grad_(True)
        y = layer(xi, key_padding_mask=pad, path=path)
        y.square().sum().backward()
        outputs[path], grads[path] = y.detach(), xi.grad
        assert torch.isfinite(y).all() and torch.isfinite(xi.grad).all(), path
    torch.testing.assert_close(outputs["reference"], outputs["fast"], rtol=tol, atol=tol)
    torch.testing.assert_close(grads["reference"], grads["fast"], rtol=tol, atol=tol)
    # the fully padded sample's output is W_o 0 + b_o
    expected = layer.combiner.output.bias.detach().expand(6, 8)
    torch.testing.assert_close(outputs["reference"][1], expected, rtol=tol, atol=tol)
    weight = layer.neighborhood(x, key_padding_mask=pad).weight
    assert torch.isfinite(weight).all()
    assert (weight[1] == 0).all()
    torch.testing.assert_close(weight[0].sum(-2), torch.ones_like(weight[0].sum(-2)))
    assert (weight[0, :, :, 4:] == 0).all()


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_query_matches_sdpa(kind):
    layer = SelfAttention2d(4, num_heads=2).double()
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    keep = torch.rand(2, 6, 6) > 0.4
    keep[0, 2] = False  # query 2 of sample 0 sees no key
    keep[1, :, 0] = True
    mask = keep if kind == "bool" else torch.zeros(2, 6, 6, dtype=torch.float64).masked_fill(~keep, float("-inf"))
    ref = layer(x, mask=mask, path="reference")
    fast = layer(x, mask=mask, path="fast")
    torch.testing.assert_close(ref, fast, rtol=1e-12, atol=1e-12)
    a = layer.neighborhood(x, mask=mask).weight[..., 0]  # (B, H, Nq, Nk)
    q, k = layer.selector.project(x)
    v = torch.randn(2, 2, 6, 3, dtype=torch.float64)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1), scale=layer.selector.scale)
    torch.testing.assert_close(a @ v, sdpa, rtol=1e-12, atol=1e-12)
    assert (a[0, :, 2] == 0).all()
