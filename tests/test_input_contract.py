"""Every registered operator answers unusual input with a result or a named error (issue 9, items 4 and 5).

The registry drives these checks, like tests/test_registry_contract.py: a new operator gets
them by being registered.
"""

import pytest
import torch

import operators

NAMES = operators.available()


def channel_axis(name):
    """Where the channels are: dim 1 of ``(B, C, ...)``, dim 2 of attention's ``(B, N, E)``."""
    return 2 if operators.info(name).layout == "(B, N, E)" else 1


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_names_in_channels(name):
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs)
    axis = channel_axis(name)
    shape = list(ex.input_shape)
    expected = shape[axis]
    shape[axis] += 1
    x = torch.randn(*shape)
    pattern = (rf"x must have {expected} channels in dim {axis}, got shape \({', '.join(map(str, shape))}\) "
               rf"with {expected + 1} \(the layer's (in_channels|embed_dim)={expected}\)")
    with pytest.raises(ValueError, match=pattern):
        layer(x)
