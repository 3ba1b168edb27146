"""A VGG-11 classifier whose 3x3 convolutions are the chosen operator (the ConvNN poster's setup).

VGG-11 (Simonyan & Zisserman 2015, configuration A) with batch normalisation: eight 3x3
convolutions ``64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M`` (M = 2x2 max-pool).
:class:`VGG` is a plain torch network whose 3x3 convolutions are the operator's places
(``places``; :func:`~comparisons.ablation.backbones.places.install` swaps the operator in
with :func:`operators.swap`); widths are ``width / 64`` of VGG's, and a
pool is skipped when it would shrink the map below ``min_size`` (8x8 digits pool once, to
4x4; 32x32 CIFAR three times), because a k = 9 neighbourhood needs at least 9 tokens.
The classifier is a global average pool and one linear layer.

The stem: by default the first convolution stays a ``Conv2d`` and sees two coordinate
channels besides the pixels (CoordConv, Liu et al. 2018). Content-based selection needs
features to compare (on one gray channel, cosine similarity is just the sign of a pixel),
and k-NN, attention and the non-local block are permutation-equivariant: a network made
only of them cannot tell where a pixel is, so it would classify digits by their bag of
pixel values. The stem gives every operator local features that carry their position, as a
ViT's patch and position embeddings do. ``stem=False`` replaces every convolution, stem
included.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neighborhoods.checks import check_int

from .places import Place

#: VGG-11's feature layout in multiples of the base width (64 in the paper); "M" = max-pool
VGG11 = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


class VGG(nn.Module):
    """VGG-11 layout; every 3x3 convolution but the stem is a place for the chosen operator.

    ``places`` maps each place's module name (``features.3``) to its :class:`Place`
    (``conv2``, VGG's 3x3 convolutions counted from 1, and the map's size there).

    Args:
        in_channels, num_classes: of the task.
        image_size: ``(H, W)`` of the input.
        width: channels of the first stage (VGG: 64); later stages 2x, 4x, 8x.
        min_size: the smallest map side a pool may produce.
        stem: keep the first convolution a ``Conv2d`` over pixels + coordinates (module docstring).

    Shape:
        x: ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``.
    """

    name = "vgg11"

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int],
                 width: int = 8, min_size: int = 4, stem: bool = True) -> None:
        super().__init__()
        width = check_int("width", width, minimum=1)
        min_size = check_int("min_size", min_size, minimum=1)
        layers: list[nn.Module] = []
        c, size = in_channels, tuple(image_size)
        if not isinstance(stem, bool):
            raise TypeError(f"stem must be a bool, got {stem!r}")
        self.stem = stem
        self.places: dict[str, Place] = {}
        for item in VGG11:
            if stem and not layers and item != "M":
                layers += [nn.Conv2d(c + 2, item * width, 3, padding=1), nn.BatchNorm2d(item * width), nn.ReLU()]
                c = item * width
                continue
            if item == "M":
                if min(size) // 2 >= min_size:
                    layers.append(nn.MaxPool2d(2))
                    size = (size[0] // 2, size[1] // 2)
                continue
            out = item * width
            place = f"conv{sum(isinstance(m, nn.BatchNorm2d) for m in layers) + 1}"  # VGG's 3x3 convs, 1-based
            self.places[f"features.{len(layers)}"] = Place(place, size)
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        if self.stem:
            h, w = x.shape[-2:]
            rows = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(x.shape[0], 1, h, w)
            cols = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(x.shape[0], 1, h, w)
            x = torch.cat([x, rows, cols], 1)
        return self.head(self.features(x))


class TorchvisionVGG(nn.Module):
    """VGG (Simonyan & Zisserman 2015) with torchvision's module names and shapes, plain ``nn.Conv2d`` everywhere.

    ``features`` (3x3 convolutions, ReLU, 2x2 max-pools; BatchNorm after each convolution with
    ``batch_norm``), ``avgpool`` (adaptive, 7x7) and ``classifier`` (4096, 4096, classes with
    dropout), indexed as torchvision indexes them, so a ``torchvision.models.vgg11`` state_dict
    loads unchanged. The convolutions are torch's own: put an operator in with
    :func:`operators.swap` (the one way the zoo installs operators into a network).

    Args:
        layout: the feature layout in multiples of 64 (default :data:`VGG11`, configuration A).
        num_classes, in_channels: of the task.
        batch_norm: torchvision's ``vgg11_bn`` variant.
        dropout: of the classifier.

    Shape:
        x: ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``; H and W divisible by 32.
    """

    def __init__(self, layout: tuple[int | str, ...] = VGG11, num_classes: int = 1000, in_channels: int = 3,
                 batch_norm: bool = False, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = check_int("in_channels", in_channels, minimum=1)
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            out = int(item) * 64
            layers += [nn.Conv2d(c, out, 3, padding=1), *([nn.BatchNorm2d(out)] if batch_norm else []),
                       nn.ReLU(inplace=True)]
            c = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(c * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
                                        nn.Linear(4096, check_int("num_classes", num_classes, minimum=1)))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg11(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> TorchvisionVGG:
    """VGG-11: ``torchvision.models.vgg11(weights=None)``'s modules, names and shapes (``vgg11_bn`` with ``batch_norm``)."""
    return TorchvisionVGG(VGG11, num_classes, in_channels, batch_norm)
