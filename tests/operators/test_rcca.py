"""RCCA2d: CCNet's recurrent criss-cross head (the authors' RCCAModule: conva, R = 2 steps, convb, bottleneck).

The head is written out here with torch's functional ops (``F.conv2d``, ``F.batch_norm``,
``F.leaky_relu`` of slope 0.01, inplace_abn's default activation), around the library's criss-cross
module, whose own formula is the theorem ``spectral.criss_cross``; the two steps' affinities,
multiplied, reach every pixel.
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from operators import RCCA2d

from randomized import randomized_eval  # tests/operators/randomized.py (pytest puts this folder on sys.path)

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def _conv_bn_act(x, seq):
    conv, bn = seq[0], seq[1]
    y = F.conv2d(x, conv.weight, None, padding=1)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return F.leaky_relu(y, 0.01)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seed, shape, kwargs", [(0, (2, 16, 5, 6), {}),
                                                 (1, (1, 8, 4, 4), dict(out_channels=6, recurrence=1)),
                                                 (2, (2, 16, 3, 7), dict(inter_channels=8, num_classes=5))])
def test_head_is_conva_recurrent_criss_cross_convb_then_the_bottleneck(seed, shape, kwargs, dtype):
    head = randomized_eval(RCCA2d(shape[1], dtype=dtype, **kwargs), seed)
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    h = _conv_bn_act(x, head.conva)
    for _ in range(kwargs.get("recurrence", 2)):  # the same module, its weights shared by the steps
        h = super(operators.CrissCrossAttention2d, head.cca).forward(h)
    h = _conv_bn_act(h, head.convb)
    ref = _conv_bn_act(torch.cat([x, h], 1), head.bottleneck)  # Dropout2d: identity in eval mode
    if head.classifier is not None:
        ref = F.conv2d(ref, head.classifier.weight, head.classifier.bias)
    out = head(x)
    assert out.shape == ref.shape == (shape[0], kwargs.get("num_classes", kwargs.get("out_channels", shape[1])),
                                      *shape[2:])
    torch.testing.assert_close(out, ref, rtol=TOL[dtype], atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("size", [(5, 6), (4, 9), (7, 3)])
def test_two_steps_connect_every_pixel_with_every_pixel(size):
    head = randomized_eval(RCCA2d(16, dtype=torch.float64), sum(size))
    x = torch.randn(1, 16, *size, dtype=torch.float64)
    first, second = head.step_neighborhoods(x)
    a1, a2 = (n.to_dense()[0, 0, :, 0] for n in (first, second))  # (Nq, Nk)
    reach = a2 @ a1  # the pixels query q draws on after two steps
    assert (reach > 0).all()
    h, w = size
    for q in (0, h * w // 2, h * w - 1):  # one step: the query's row and column only
        row, col = divmod(q, w)
        cross = torch.zeros(h, w, dtype=torch.bool)
        cross[row], cross[:, col] = True, True
        m = first.query_map(q)
        assert ((m > 0) == cross).all()
        assert (reach[q].view(h, w) > 0).all()
    # the steps' affinities are those of the criss-cross module on conva(x), then on its first step's output
    hidden = head.conva(x)
    torch.testing.assert_close(a1, head.cca.neighborhood(hidden).to_dense()[0, 0, :, 0], rtol=0, atol=0)
    step1 = super(operators.CrissCrossAttention2d, head.cca).forward(hidden)
    torch.testing.assert_close(a2, head.cca.neighborhood(step1).to_dense()[0, 0, :, 0], rtol=0, atol=0)


def test_registry_defaults_and_a_fresh_head():
    head = operators.create("rcca2d", in_channels=16)
    assert (head.inter_channels, head.out_channels, head.cca.recurrence) == (4, 16, 2)
    assert head.classifier is None and not operators.info("rcca2d").residual
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(head.cca(x[:, :4]), x[:, :4], rtol=0, atol=0)  # gamma starts at 0
    assert head(x).shape == (2, 16, 5, 5)
    with torch.no_grad():
        head.cca.combiner.norm.gamma.fill_(1.0)
    head.reset_parameters()
    assert head.cca.combiner.norm.gamma.item() == 0.0


@pytest.mark.parametrize("kwargs, error, words", [(dict(dropout=1.5), ValueError, ["dropout", "1.5"]),
                                                  (dict(num_classes=0), ValueError, ["num_classes", "0"]),
                                                  (dict(recurrence=0), ValueError, ["recurrence", "0"])])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        RCCA2d(8, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)
    with pytest.raises(ValueError, match="x"):
        RCCA2d(8)(torch.randn(2, 8, 5))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("key_channels, shape", [(1, (2, 8, 5, 6)), (1, (1, 8, 3, 7)), (3, (2, 8, 4, 5))])
def test_criss_cross_scores_are_the_dense_affinity_at_the_cross(key_channels, shape, dtype):
    # one key channel takes a plain product, more a row vector times the candidates: both against
    # every pair's dot product, read off at the criss-cross candidates, values and gradients
    layer = randomized_eval(operators.CrissCrossAttention2d(shape[1], key_channels=key_channels, dtype=dtype), 3)
    sel = layer.selector
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(key_channels), requires_grad=True)
    nb = sel(x)
    q, k = sel.query(x).flatten(2), sel.key(x).flatten(2)  # (B, D, N)
    dense = (q.transpose(1, 2) @ k) * sel.scale  # (B, N, N): every query against every key
    ref = dense.gather(2, nb.index.expand(shape[0], -1, -1)).softmax(-1).unsqueeze(-1)
    torch.testing.assert_close(nb.weight, ref, rtol=TOL[dtype], atol=TOL[dtype])
    cot = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(nb.weight, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=TOL[dtype], atol=TOL[dtype])
