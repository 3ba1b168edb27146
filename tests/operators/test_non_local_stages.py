"""NonLocalStages: R non-local stages sharing one affinity (Tao et al. 2018; the SNL code's NS).

The spectral paper's code (``Stage(nl_type='ns')``, ``NSUnit``) computes ``att = softmax(t(x)^T p(x))``
once from the stage's input and then runs ``out = out + relu(bn(w(g(out)) - w(att g(out))))`` for
every unit. The references below write that out with torch ops (einsum, softmax, batch_norm).
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from operators import NonLocalStage2d, NonLocalStages1d, NonLocalStages2d

from randomized import randomized_eval  # tests/operators/randomized.py (pytest puts this folder on sys.path)

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def _conv(x, lin):
    """A 1x1 map of channels-first x (ChannelLinear's weight is (out, in))."""
    y = torch.einsum("oc,bc...->bo...", lin.weight, x)
    return y if lin.bias is None else y + lin.bias.view(1, -1, *[1] * (x.ndim - 2))


def _written_out(layer, x, relu):
    """Affinity once from x, then X_r = X_{r-1} + [relu] BN_r(W_r (A g_r(X) - g_r(X))), unit by unit."""
    sel = layer.selector
    theta, phi = _conv(x, sel.query).flatten(2), _conv(x, sel.key).flatten(2)  # (b, ci, n)
    a = torch.softmax(torch.einsum("bcq,bcn->bqn", theta, phi), -1)
    y = x
    for stage in layer.combiner.stages:
        z = _conv(y, stage.value).flatten(2)  # (b, ci, n)
        f = torch.einsum("bqn,bcn->bcq", a, z) - z
        out = _conv(f.view(*z.shape[:2], *x.shape[2:]), stage.output)
        bn = stage.norm.norm if relu else stage.norm
        out = F.batch_norm(out.flatten(2), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0,
                           bn.eps).view_as(out)
        y = y + (torch.relu(out) if relu else out)
    return y


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("seed, cls, shape, stages", [(0, NonLocalStages2d, (2, 6, 4, 5), 2),
                                                       (1, NonLocalStages2d, (1, 6, 3, 3), 3),
                                                       (2, NonLocalStages1d, (3, 6, 7), 2),
                                                       (3, NonLocalStages1d, (2, 6, 5), 1)])
def test_stages_equal_the_written_out_ns(seed, cls, shape, stages, relu, dtype):
    layer = randomized_eval(cls(6, 3, stages=stages, relu=relu, dtype=dtype), seed)
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    out, ref = layer(x), _written_out(layer, x, relu)
    torch.testing.assert_close(out, ref, rtol=TOL[dtype], atol=TOL[dtype])
    cot = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, x, cot)[0], torch.autograd.grad(ref, x, cot)[0],
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("stages", [1, 2, 4])
def test_the_affinity_is_computed_once_and_every_stage_reuses_it(stages):
    layer = randomized_eval(NonLocalStages2d(6, 3, stages=stages, dtype=torch.float64), stages)
    calls = []
    hooks = [layer.selector.register_forward_hook(lambda m, i, o: calls.append("A")),
             layer.selector.query.register_forward_hook(lambda m, i, o: calls.append("theta"))]
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    y = layer(x)
    assert calls == ["theta", "A"]  # one affinity per forward, from the block's input
    for h in hooks:
        h.remove()
    nbhd = layer.selector(x)  # then each stage with that one affinity, by hand: the same kernels
    ref = x
    for stage in layer.combiner.stages:
        ref = stage(ref, nbhd)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    if stages > 1:  # not a stack of NonLocalStage2d, which would recompute A from each stage's input
        restacked = x
        for stage in layer.combiner.stages:
            restacked = stage(restacked, layer.selector(restacked))
        assert (restacked - y).abs().max() > 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_one_stage_is_the_non_local_stage(dtype):
    stages = randomized_eval(NonLocalStages2d(6, 3, stages=1, dtype=dtype), 5)
    single = NonLocalStage2d(6, 3, dtype=dtype).eval()
    state = {k.replace("combiner.stages.0.", "combiner."): v for k, v in stages.state_dict().items()}
    single.load_state_dict(state)
    x = torch.randn(2, 6, 4, 5, dtype=dtype)
    torch.testing.assert_close(stages(x, path="reference"), single(x, path="reference"), rtol=0, atol=TOL[dtype])


def test_fresh_block_is_the_identity_and_other_output_channels():
    x = torch.randn(2, 8, 4, 4)
    for relu in (False, True):
        torch.testing.assert_close(NonLocalStages2d(8, stages=3, relu=relu)(x), x, rtol=0, atol=0)
    layer = operators.create("non_local_stages2d", in_channels=8, out_channels=5)
    assert layer(x).shape == (2, 5, 4, 4)
    assert [s.out_channels for s in layer.combiner.stages] == [8, 5]
    assert operators.info("non_local_stages2d").residual


@pytest.mark.parametrize("kwargs, error, words", [(dict(stages=0), ValueError, ["stages", "0"]),
                                                  (dict(stages=1.5), TypeError, ["stages"]),
                                                  (dict(relu="yes"), TypeError, ["relu"])])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        NonLocalStages2d(8, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_stages_combiner_checks_its_parts():
    from neighborhoods.combiners import GraphFilter, Stages
    with pytest.raises(ValueError, match=r"stages\[1\] takes in_channels=6, but stages\[0\] gives out_channels=4"):
        Stages([GraphFilter(6, 3, 4), GraphFilter(6, 3, 6)])
    with pytest.raises(TypeError, match="non-empty list"):
        Stages([])
    with pytest.raises(TypeError, match=r"stages\[0\] must be a neighborhoods Combiner"):
        Stages([torch.nn.Identity()])
