"""``hooked``: a module's own hooks and the global ones both keep the routes that bypass its call off."""

import torch
from torch import nn

from neighborhoods.combiners import Projection
from neighborhoods.hooks import hooked


def test_hooked_sees_own_and_global_hooks():
    m = nn.Linear(2, 2)
    assert not hooked(m)
    for register in (m.register_forward_hook, m.register_forward_pre_hook, m.register_full_backward_hook):
        handle = register(lambda *args: None)
        assert hooked(m)
        handle.remove()
        assert not hooked(m)
    for register in (nn.modules.module.register_module_forward_hook,
                     nn.modules.module.register_module_forward_pre_hook,
                     nn.modules.module.register_module_full_backward_hook):
        handle = register(lambda *args: None)
        try:
            assert hooked(m)
        finally:
            handle.remove()
        assert not hooked(m)


def test_a_global_hook_keeps_the_projection_on_the_concatenation():
    comb = Projection(2, 1, out_channels=2)
    x = torch.randn(1, 2, 8, 8)
    assert comb._split_projection(x)
    handle = nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert not comb._split_projection(x)
    finally:
        handle.remove()
