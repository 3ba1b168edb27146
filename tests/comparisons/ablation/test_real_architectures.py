"""Operators in real architectures (issue 18 item 6): swap into ResNet-18, VGG-11 and a MobileNet-style net.

The project's ResNet-18 and VGG-11 carry torchvision's module names and shapes (their
parameter counts are torchvision's published ones). Where torchvision imports (a CUDA
install), the same checks also run on its ``resnet18``, ``vgg11`` and
``mobilenet_v3_small``; here, beside the CPU build of torch, torchvision cannot import and
those tests skip saying why.
"""

import copy

import pytest
import torch
from torch import nn

import operators
from neighborhoods import use_path
from comparisons.ablation.backbones.resnet import BasicBlock, InvertedResidual, mobilenet_like, resnet18
from comparisons.ablation.backbones.vgg import vgg11

X_SHAPE = (2, 3, 64, 64)
#: torchvision's published parameter counts (ResNet18_Weights / VGG11_Weights "num_params")
TORCHVISION_PARAMS = {"resnet18": 11_689_512, "vgg11": 132_863_336}


def _num_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnet18_and_vgg11_have_torchvisions_sizes_and_names():
    r, v = resnet18(), vgg11()
    assert _num_params(r) == TORCHVISION_PARAMS["resnet18"]
    assert _num_params(v) == TORCHVISION_PARAMS["vgg11"]
    keys = r.state_dict()
    assert tuple(keys["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert tuple(keys["layer4.1.conv2.weight"].shape) == (512, 512, 3, 3)
    assert tuple(keys["fc.weight"].shape) == (1000, 512) and "bn1.num_batches_tracked" in keys
    vk = v.state_dict()
    assert tuple(vk["features.18.weight"].shape) == (512, 512, 3, 3)  # the last conv, torchvision's index
    assert tuple(vk["classifier.0.weight"].shape) == (4096, 512 * 7 * 7)


def _forward_backward(model, shape=X_SHAPE):
    x = torch.randn(shape, requires_grad=True)
    y = model(x)
    y.square().mean().backward()
    assert torch.isfinite(y).all() and x.grad is not None and torch.isfinite(x.grad).all()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    return y


MODELS = {"resnet18": lambda: resnet18(num_classes=10), "vgg11": lambda: vgg11(num_classes=10),
          "mobilenet_like": lambda: mobilenet_like(num_classes=10)}
#: token layers take a 3x3 conv whose padding centres its window (every 3x3 conv in these nets)
OPERATORS = ["conv_nn2d", "self_attention2d", "conv_nn2d_location", "non_local_block2d"]


#: every operator on ResNet-18; on VGG-11 (132M parameters, seconds per run) and the MobileNet-style net the
#: acceptance pair runs by default and the rest with `-m slow`
CASES = [pytest.param(net, name, marks=[] if net == "resnet18" or name in ("conv_nn2d", "self_attention2d")
                      else [pytest.mark.slow]) for net in sorted(MODELS) for name in OPERATORS]


@pytest.mark.parametrize("net, name", CASES)
def test_swap_into_the_projects_networks_runs_forward_and_backward(net, name):
    torch.manual_seed(0)
    model = MODELS[net]()
    expected = model(torch.zeros(X_SHAPE)).shape
    report = operators.swap(model, name)
    assert report.replaced, str(report)
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1 for m in model.modules())
    assert _forward_backward(model).shape == expected


def test_resnet18_report_lists_the_strided_convs_and_skips_1x1_and_the_stem():
    report = operators.swap(resnet18(), "conv_nn2d")
    replaced = {e.name: e.module for e in report.replaced}
    assert len(replaced) == 16 and replaced["layer2.0.conv1"] == "Conv2d(64->128, 3x3, s2)"
    skipped = {e.name: e.detail for e in report.skipped}
    assert skipped["conv1"].startswith("kernel 7x7") and skipped["layer3.0.downsample.0"].startswith("kernel 1x1")


def test_mobilenet_block_keeps_depthwise_and_pointwise_convs():
    report = operators.swap(mobilenet_like(), "conv_nn2d")
    assert {e.name for e in report.replaced} == {"0.0", "4"}  # the strided stem and the head's 3x3
    depthwise = {e.name: e.detail for e in report.skipped if "groups" in e.detail}
    assert depthwise == {"1.conv.1.0": "groups=64 (depthwise / grouped)", "2.conv.1.0": "groups=64 (depthwise / grouped)",
                         "3.conv.1.0": "groups=128 (depthwise / grouped)"}
    pointwise = [e.name for e in report.skipped if e.detail.startswith("kernel 1x1")]
    assert len(pointwise) == 6 and len(report.skipped) == 9


def test_exact_conversion_of_resnet18_keeps_its_outputs_strided_convs_included():
    torch.manual_seed(0)
    model = resnet18(num_classes=10).double()
    with torch.no_grad():  # BatchNorm away from its identity start, then eval mode
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(X_SHAPE, dtype=torch.float64)
    before = model(x)
    report = operators.swap(model, "conv_nn2d_location", copy_weights=True)
    assert sum("s2" in e.module for e in report.replaced) == 3
    torch.testing.assert_close(model(x), before, rtol=1e-10, atol=1e-10)  # the fast path: F.conv2d underneath
    with use_path("reference"):  # every layer picks its 9 nearest positions, gathers them, one weight per slot
        torch.testing.assert_close(model(x), before, rtol=1e-10, atol=1e-10)


# ---- torchvision's own models, where torchvision imports -------------------------------------------
def _torchvision():
    try:
        import torchvision
    except Exception as err:  # noqa: BLE001 - any import failure is the reason to skip
        pytest.skip(f"torchvision does not import beside this torch ({type(err).__name__}: {err})")
    return torchvision


@pytest.mark.parametrize("builder", ["resnet18", "vgg11", "mobilenet_v3_small"])
@pytest.mark.parametrize("name", ["conv_nn2d", "self_attention2d"])
def test_swap_into_torchvision_models(builder, name):
    torchvision = _torchvision()
    torch.manual_seed(0)
    model = getattr(torchvision.models, builder)(weights=None, num_classes=10)
    expected = model(torch.zeros(X_SHAPE)).shape
    operators.swap(model, name)
    assert _forward_backward(model).shape == expected


@pytest.mark.parametrize("builder, ours", [("resnet18", resnet18), ("vgg11", vgg11)])
def test_torchvision_state_dict_loads_into_ours(builder, ours):
    torchvision = _torchvision()
    theirs = getattr(torchvision.models, builder)(weights=None).eval()
    mine = ours()
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(mine.eval()(x), theirs(x))


def test_torchvision_resnet18_exact_conversion():
    torchvision = _torchvision()
    model = torchvision.models.resnet18(weights=None).double().eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    before = model(x)
    operators.swap(model, "conv_nn2d_location", copy_weights=True)
    torch.testing.assert_close(model(x), before, rtol=1e-10, atol=1e-10)


def test_blocks_are_exported():
    assert issubclass(BasicBlock, nn.Module) and issubclass(InvertedResidual, nn.Module)
    copy.deepcopy(resnet18())
