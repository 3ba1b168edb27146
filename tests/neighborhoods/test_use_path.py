"""neighborhoods.use_path: one block switches every layer; explicit > block > attribute; per thread;
traced and guarded by torch.compile."""

import threading

import pytest
import torch
from torch import nn

import operators
from neighborhoods import current_path, use_path


def model():
    return nn.Sequential(
        operators.create("conv2d", in_channels=3, out_channels=4, kernel_size=3, padding=1),
        operators.create("self_attention2d", in_channels=4, num_heads=2),
        operators.create("convnn2d_location", in_channels=4, out_channels=4),
    ).double()


def explicit(net, x, path):
    for layer in net:
        x = layer(x, path=path)
    return x


def test_block_switches_every_layer_of_a_sequential(spy):
    net, x = model(), torch.randn(2, 3, 5, 6, dtype=torch.float64)
    with use_path("reference"):
        y = net(x)
    assert spy == {}, "a fast path ran inside use_path('reference')"
    torch.testing.assert_close(y, explicit(net, x, "reference"), rtol=0, atol=0)
    assert spy == {}
    net(x)
    assert sum(spy.values()) == 3  # outside the block every layer takes its fast path again
    with use_path("fast"):
        torch.testing.assert_close(net(x), explicit(net, x, "fast"), rtol=0, atol=0)


def test_precedence_explicit_then_block_then_attribute(spy):
    conv = operators.create("conv2d", in_channels=2, out_channels=2, kernel_size=3, path="reference")
    x = torch.randn(1, 2, 5, 5)
    conv(x)
    assert spy == {}  # the attribute
    with use_path("auto"):
        conv(x)
    assert sum(spy.values()) == 1  # the block beats the attribute
    with use_path("reference"):
        conv(x, path="fast")
    assert sum(spy.values()) == 2  # an explicit path beats the block
    snl = operators.create("snl2d", in_channels=4, path="fast")
    with pytest.raises(ValueError, match="path='fast' but"):
        snl(torch.randn(1, 4, 3, 3))
    with use_path("reference"):
        snl(torch.randn(1, 4, 3, 3))


def test_blocks_nest_and_restore_on_error():
    assert current_path() is None
    with use_path("reference"):
        with use_path("fast"):
            assert current_path() == "fast"
        assert current_path() == "reference"
        with pytest.raises(RuntimeError):
            with use_path("auto"):
                raise RuntimeError
        assert current_path() == "reference"
    assert current_path() is None
    with pytest.raises(ValueError, match="path must be one of"):
        with use_path("slow"):
            pass


def test_blocks_are_per_thread():
    inside, release, seen = threading.Event(), threading.Event(), {}

    def worker():
        with use_path("reference"):
            inside.set()
            release.wait(10)
            seen["worker"] = current_path()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    seen["main"] = current_path()
    release.set()
    t.join()
    assert seen == {"main": None, "worker": "reference"}


def test_torch_compile_guards_on_the_block():
    torch._dynamo.reset()
    layer = operators.create("self_attention2d", in_channels=4, num_heads=2).double()
    x = torch.randn(1, 4, 3, 5, dtype=torch.float64)
    graphs = []

    def backend(gm, example_inputs):  # records each traced graph, runs it as traced
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(layer, backend=backend, fullgraph=True)
    # a traced graph may fuse or reorder float ops (5.6e-17 apart on AMD EPYC): float64 round-off
    torch.testing.assert_close(compiled(x), layer(x, path="fast"), rtol=0, atol=1e-12)
    with use_path("reference"):
        torch.testing.assert_close(compiled(x), layer(x, path="reference"), rtol=0, atol=1e-12)
    assert ["scaled_dot_product_attention" in g.code for g in graphs] == [True, False]  # recompiled for the block
    compiled(x)
    assert len(graphs) == 2  # back outside: the first graph again, no third compile
