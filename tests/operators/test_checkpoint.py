"""Activation checkpointing recomputes the same function (issue 19: random sampling redrew).

``torch.utils.checkpoint`` runs a layer's forward again during backward. ConvNN's random
sampling with ``seed`` draws from the module's own generator, which the checkpoint does not
restore: the recomputation used other candidates and the gradients were off by ~5. Now a
forward running inside backward reuses the draw it recomputes (``HardKNN._training_draw``).
"""

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import operators


def _gradients(name, checkpointed, use_reentrant=False, **kwargs):
    torch.manual_seed(0)
    layer = operators.create(name, in_channels=4, **kwargs).train()
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    y = checkpoint(layer, x, use_reentrant=use_reentrant) if checkpointed else layer(x)
    (y ** 2).sum().backward()
    return [x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("name, kwargs", [("conv_nn2d_random", {"seed": 0}), ("conv_nn2d_random", {}),
                                          ("self_attention2d", {}), ("non_local_block2d", {}),
                                          ("criss_cross_attention2d", {}), ("n3_block2d_digits", {})])
def test_checkpointed_gradients_equal_plain_ones(name, kwargs, use_reentrant):
    plain = _gradients(name, False, **kwargs)
    recomputed = _gradients(name, True, use_reentrant, **kwargs)
    for a, b in zip(plain, recomputed):
        # the same kernels on the same shapes; the tolerance only allows a different accumulation order
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_training_forwards_still_draw_afresh():
    layer = operators.create("conv_nn2d_random", in_channels=4, seed=0).train()
    x = torch.randn(1, 4, 6, 6)
    draws = {tuple(layer.selector.candidates((6, 6)).tolist()) for _ in range(5)}
    assert len(draws) > 1
    x.requires_grad_(True)
    y = checkpoint(layer, x, use_reentrant=False)
    after_forward = layer.selector._last_draw[1].clone()
    y.sum().backward()  # the recomputation reuses the draw and draws nothing new
    assert torch.equal(layer.selector._last_draw[1], after_forward)
