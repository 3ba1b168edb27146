"""ResNet-18 (He et al. 2016) and a MobileNet-style block, written with torchvision's module names and shapes.

torchvision cannot be imported beside the CPU build of torch this project tests on, yet the
networks users swap operators into are torchvision's. These are written from the papers
with torchvision's attribute names (``conv1``, ``bn1``, ``layer1.0.conv2``,
``layer2.0.downsample.0``, ``fc``) and parameter shapes, so a torchvision ``resnet18``
state_dict loads into :func:`resnet18` unchanged, and :func:`operators.swap` meets the same
qualified names and the same strided 3x3 convolutions it would meet there.

Only torch here (no plotting or learning libraries): the theorems room builds these for
the network theorem of :mod:`operators.convert`.
"""

from __future__ import annotations

from torch import Tensor, nn

from neighborhoods.checks import check_int


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual (He et al. 2016, Fig. 2); the first may stride.

    ``downsample`` (a strided 1x1 conv + BatchNorm, "option B") matches the shortcut's shape
    when the block strides or widens, as torchvision's ``BasicBlock``.

    Shape:
        x: ``(B, in_channels, H, W)`` -> ``(B, channels, ceil(H / stride), ceil(W / stride))``.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = (nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(channels))
                           if stride != 1 or in_channels != channels else None)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet for ImageNet-style input (He et al. 2016, Table 1) with torchvision's names.

    Args:
        layers: blocks per stage, ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: outputs of ``fc``.
        in_channels: input channels (3 for RGB).
        width: channels of the first stage (64); stages double it.

    Shape:
        x: ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``; a 7x7 stride-2 stem and a
        stride-2 max-pool, then stages at strides 1, 2, 2, 2 (output stride 32).
    """

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 1000, in_channels: int = 3,
                 width: int = 64) -> None:
        super().__init__()
        width = check_int("width", width, minimum=1)
        self.conv1 = nn.Conv2d(check_int("in_channels", in_channels, minimum=1), width, 7, stride=2, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = width
        for i, blocks in enumerate(layers):
            out = width * 2 ** i
            stage = [BasicBlock(channels, out, stride=1 if i == 0 else 2)]
            stage += [BasicBlock(out, out) for _ in range(1, check_int(f"layers[{i}]", blocks, minimum=1))]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            channels = out
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, check_int("num_classes", num_classes, minimum=1))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18: ``torchvision.models.resnet18(weights=None)``'s modules, names and shapes."""
    return ResNet((2, 2, 2, 2), num_classes, in_channels)


class InvertedResidual(nn.Module):
    """A MobileNetV2-style block (Sandler et al. 2018, Table 1): 1x1 expand, 3x3 depthwise (may stride), 1x1 project.

    The three kinds of convolution a swap must tell apart: pointwise (1x1), depthwise (3x3,
    ``groups = channels``) and, with ``stride=2``, a strided depthwise one; the residual is
    added when the block keeps the shape. Names follow torchvision's ``InvertedResidual``
    (``conv.0.0`` expand, ``conv.1.0`` depthwise, ``conv.2`` project, ``conv.3`` BatchNorm).

    Shape:
        x: ``(B, in_channels, H, W)`` -> ``(B, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: int = 4) -> None:
        super().__init__()
        hidden = in_channels * check_int("expand_ratio", expand_ratio, minimum=1)
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Sequential(nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)),
            nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
                          nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_like(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Sequential:
    """A small MobileNet-style network: a strided 3x3 stem, inverted residual blocks (one strided), a head."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                      nn.ReLU6(inplace=True)),
        InvertedResidual(width, width, 1), InvertedResidual(width, 2 * width, 2), InvertedResidual(2 * width, 2 * width, 1),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1, bias=False), nn.BatchNorm2d(4 * width), nn.ReLU6(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))
