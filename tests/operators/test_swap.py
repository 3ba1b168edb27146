"""operators.swap: one way to put an operator into any network (issue 18 item 1)."""

import copy

import pytest
import torch
from torch import nn

import operators


def small_net(dtype=torch.float64):
    """Every kind of conv a real network has: 'same' 3x3, strided 3x3, 1x1, depthwise 3x3, a 'valid' 3x3."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.Sequential(nn.Conv2d(8, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16)),
                         nn.Conv2d(16, 4, 3, padding=0)).to(dtype).eval()


def test_exact_swap_leaves_the_network_unchanged_strided_and_valid_convs_included():
    net = small_net()
    x = torch.randn(2, 3, 17, 16, dtype=torch.float64)
    before = net(x)
    report = operators.swap(net, "conv_nn2d_location", copy_weights=True)
    assert [e.name for e in report.replaced] == ["0", "2", "5"]
    assert {e.name: e.detail for e in report.skipped} == {
        "4.0": "kernel 1x1 (the default replaces 3x3 only)", "4.1": "groups=16 (depthwise / grouped)"}
    assert all(isinstance(net[i], operators.ConvNN2d) for i in (0, 2, 5))
    torch.testing.assert_close(net(x), before, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["conv_nn2d", "self_attention2d", "non_local_block2d", "conv2d"])
def test_swapped_network_keeps_its_shapes_and_trains(name):
    net = small_net(torch.float32)
    x = torch.randn(2, 3, 16, 16)
    shape = net(x).shape
    valid_conv = (lambda q, m: isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1
                  and m.padding == (1, 1))  # token layers cannot start a grid inside the image
    report = operators.swap(net, name, where=None if name.startswith("conv") else valid_conv)
    assert report.replaced and all(e.detail.startswith(type(net[0]).__name__) for e in report.replaced)
    net.train()
    y = net(x)
    assert y.shape == shape
    y.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_report_prints_a_table_with_every_conv():
    net = small_net()
    text = str(operators.swap(net, "conv_nn2d"))
    lines = text.splitlines()
    assert lines[-1] == "3 replaced, 2 skipped"
    assert any(line.startswith("replaced") and " 2 " in line and "s2" in line for line in lines)
    assert any(line.startswith("skipped") and "4.1" in line and "groups=16" in line for line in lines)


def test_an_error_names_the_layer_and_leaves_the_model_as_it_was():
    net = small_net()
    state = copy.deepcopy(net.state_dict())
    with pytest.raises(ValueError, match=r"^5: self_attention2d's queries are single tokens"):
        operators.swap(net, "self_attention2d")
    assert all(isinstance(net[i], nn.Conv2d) for i in (0, 2, 5))  # nothing replaced
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_an_operator_that_cannot_downsample_is_a_named_error():
    net = small_net()
    with pytest.raises(ValueError, match=r"^2: n3_block2d cannot place its queries"):
        operators.swap(net, "n3_block2d", where=lambda q, m: q == "2")


def test_copy_weights_needs_an_exact_target_and_no_arguments():
    with pytest.raises(ValueError, match=r"^0: convert: 'conv_nn2d' is not mathematically a convolution"):
        operators.swap(small_net(), "conv_nn2d", copy_weights=True)
    with pytest.raises(TypeError, match="no operator arguments"):
        operators.swap(small_net(), "conv_nn2d_location", copy_weights=True, k=9)


def test_where_picks_layers_by_qualified_name():
    net = small_net()
    report = operators.swap(net, "conv_nn2d", where=lambda name, m: name == "0", k=5)
    assert [e.name for e in report.replaced] == ["0"] and net[0].k == 5
    assert {e.detail for e in report.skipped} == {"where() returned False"}
    assert isinstance(net[2], nn.Conv2d)


def test_one_dimensional_networks_swap_conv1d():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv1d(6, 6, 3, stride=2, padding=1),
                        nn.Conv1d(6, 2, 1)).double()
    x = torch.randn(2, 3, 15, dtype=torch.float64)
    before = net(x)
    exact = copy.deepcopy(net)
    report = operators.swap(exact, "conv_nn1d_location", copy_weights=True)
    assert len(report.replaced) == 2 and report.skipped[0].name == "3"
    torch.testing.assert_close(exact(x), before, rtol=1e-10, atol=1e-10)
    operators.swap(net, "conv_nn1d")
    assert net(x).shape == before.shape


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        operators.swap("resnet", "conv_nn2d")
    with pytest.raises(ValueError, match="unknown operator name"):
        operators.swap(small_net(), "conv_nn9d")
    with pytest.raises(TypeError, match="name must be a registered operator name or a callable"):
        operators.swap(small_net(), 3)
    with pytest.raises(TypeError, match="copy_weights=True converts to a registered exact target by name"):
        operators.swap(small_net(), operators.ConvNN2d, copy_weights=True)


def test_a_callable_builds_each_layer_with_the_convs_channels_and_its_stride_where_it_strides():
    calls = []

    def build(**kwargs):
        calls.append(kwargs)
        return operators.create("conv_nn2d", k=9, candidate_padding=1, **kwargs)

    build.label = "my convnn"
    net = small_net(torch.float32)
    report = operators.swap(net, build)
    assert report.operator == "my convnn" and [e.name for e in report.replaced] == ["0", "2", "5"]
    assert calls == [dict(in_channels=3, out_channels=8),  # stride 1, centred: channels only
                     dict(in_channels=8, out_channels=8, stride=(2, 2), padding=(1, 1)),
                     dict(in_channels=16, out_channels=4, stride=(1, 1), padding=(0, 0))]  # 'valid': a smaller grid
    assert net(torch.randn(1, 3, 12, 12)).shape == (1, 4, 4, 4)
    double = small_net()  # built in the convolution's dtype, as a registered name is
    operators.swap(double, lambda **kw: operators.ConvNN2d(k=9, candidate_padding=1, **kw))
    assert double[0].weight.dtype == torch.float64


@pytest.mark.parametrize("name, layout", [("self_attention", "(B, N, E)"), ("conv_nn1d", "(B, C, N)")])
@pytest.mark.parametrize("shape", [(2, 6, 5, 4), (1, 6, 3, 7)])
def test_a_sequence_operator_runs_on_the_maps_positions_in_raster_order(name, layout, shape):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU()).double()
    report = operators.swap(net, name, where=lambda q, m: isinstance(m, nn.Conv2d))
    adapter = net[0]
    assert isinstance(adapter, operators.layout.LayoutAdapter) and adapter.layout == layout
    assert report.replaced[0].detail.endswith(f"on the positions as {layout})")
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    tokens = x.reshape(shape[0], shape[1], -1)  # row-major positions, independently of the adapter
    seq = adapter.layer(tokens.transpose(1, 2)).transpose(1, 2) if layout == "(B, N, E)" else adapter.layer(tokens)
    expected = seq.reshape(shape[0], -1, *shape[2:])
    torch.testing.assert_close(adapter(x), expected, rtol=1e-12, atol=1e-12)
    grad = torch.autograd.grad(net(x).sum(), x)[0]
    torch.testing.assert_close(grad, torch.autograd.grad(expected.relu().sum(), x)[0], rtol=1e-12, atol=1e-12)


def test_a_sequence_operator_in_a_one_dimensional_network():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(4, 4, 3, padding=1), nn.ReLU()).float()
    report = operators.swap(net, "self_attention", num_heads=2)  # the default filter: 1-D operator, Conv1d
    assert [e.name for e in report.replaced] == ["0"]
    x = torch.randn(2, 4, 9)
    assert net(x).shape == (2, 4, 9)
    torch.testing.assert_close(net[0](x), net[0].layer(x.transpose(1, 2)).transpose(1, 2))


def test_a_sequence_operator_cannot_replace_a_strided_conv():
    net = small_net()
    with pytest.raises(ValueError, match=r"^2: a \(B, C, N\) operator runs on the positions as one sequence and "
                                         r"cannot downsample"):
        operators.swap(net, "conv_nn1d", where=lambda q, m: q == "2")
