"""operators.info: fields derived from an operator's parts, checked for known operators."""

import dataclasses

import pytest
import torch

import operators
from comparisons.cli import main

#: the native kernels fast_path_name reports
CONV2D, CONV1D, SDPA, LINEAR, TAYLOR = ("F.conv2d", "F.conv1d", "F.scaled_dot_product_attention", "Q @ (K^T @ Z)",
                                        "phi(a) @ (phi(b)^T @ z) (Taylor features)")
GRAPH_SDPA, KNN_CONV, KNN_GATHER = SDPA, CONV2D, "blocked k-NN + gather + F.linear"


@pytest.mark.parametrize("name, expected", [
    ("conv2d", dict(layout="(B, C, H, W)", selection="fixed", locality="local", cost="O(N k)",
                    fast_path=CONV2D, residual=False, family="convolution")),
    ("conv1d", dict(layout="(B, C, N)", selection="fixed", locality="local", fast_path=CONV1D)),
    ("self_attention2d", dict(selection="dense", locality="global", cost="O(N^2)", fast_path=SDPA)),
    ("self_attention", dict(layout="(B, N, E)", selection="dense", fast_path=SDPA)),
    ("convnn2d", dict(selection="hard content", locality="global", cost="O(N^2)", fast_path=KNN_GATHER)),
    ("convnn2d_location", dict(selection="fixed", locality="local", cost="O(N k)", fast_path=KNN_CONV)),
    ("n3block2d", dict(selection="soft content", locality="local", fast_path=None, residual=False)),
    ("knnblock2d", dict(selection="hard content")),
    ("nonlocal2d", dict(selection="dense", residual=True, fast_path=GRAPH_SDPA, cost="O(N^2)")),
    ("nonlocal2d_dot_product", dict(cost="O(N C^2)", fast_path=LINEAR)),
    ("nonlocal2d_concatenation", dict(cost="O(N^2)", fast_path=None)),
    ("cgnl2d", dict(cost="O(N C^2)", fast_path=TAYLOR, residual=True)),
    ("criss_cross_attention2d", dict(cost="O(N (H+W))", selection="soft content", residual=True)),
    ("branching_conv2d", dict(selection="hard content + fixed", fast_path=f"{KNN_GATHER} + {CONV2D}")),
])
def test_known_operators(name, expected):
    info = operators.info(name)
    assert info.name == operators.canonical(name)
    for field, value in expected.items():
        assert getattr(info, field) == value, (name, field)


@pytest.mark.parametrize("name", operators.available())
def test_fields_are_well_formed_and_the_fast_path_is_real(name):
    info = operators.info(name)
    assert info.keeps_channels
    assert info.selection in {"fixed", "hard content", "soft content", "dense", "hard content + fixed"}
    assert info.locality in {"local", "global", "global + local"}
    assert info.cost.startswith("O(")
    layer = operators.create(name, **operators.example(name).kwargs)
    x = torch.randn(*operators.example(name).input_shape)
    if info.fast_path is not None and "+" not in info.fast_path:
        layer(x, path="fast")  # raises if no native kernel covers it
    elif info.fast_path is None and hasattr(layer, "fast_path"):
        with pytest.raises(ValueError, match="path='fast'"):
            layer(x, path="fast")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.cost = "O(1)"


def test_info_leaves_the_random_state_alone():
    operators.info.cache_clear()
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    operators.info("conv_nn2d")
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_list_prints_info_and_filters(capsys):
    assert main(["list", "ATTENTION2D"]) == 0
    out = capsys.readouterr().out
    assert "self_attention2d" in out and "O(N^2)" in out and "conv2d" not in out
    assert main(["list", "conv?d"]) == 0
    out = capsys.readouterr().out
    assert "O(N k)" in out and "conv_nn2d" not in out and "self_attention" not in out
    assert main(["list", "no-such-operator"]) == 2
