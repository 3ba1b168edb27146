"""A DnCNN-style denoiser with one aggregation block between two stages (the N3 paper's light model).

Ploetz & Roth 2018 (Sec. 5.2, Table 1, "ours light"): two DnCNNs of depth 6 with an N3 block
between them; each DnCNN is 3x3 conv + ReLU, then conv + BN + ReLU blocks, then a 3x3 conv;
the first stage outputs ``features`` maps for the aggregation block, and a global skip
connection makes the network predict the noise (Zhang et al. 2017). Here the aggregation
block is the chosen operator, ``features -> features`` channels; everything else is fixed.
As a plain torch network the block is a 3x3 convolution, the one place (``aggregate``) where
:func:`~comparisons.ablation.backbones.places.install` swaps the operator in.
"""

from __future__ import annotations

from torch import Tensor, nn

from neighborhoods.checks import check_int

from .places import Place


def dncnn_stage(in_channels: int, out_channels: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` 3x3 convolutions: conv+ReLU, ``depth - 2`` x conv+BN+ReLU, conv."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
    return nn.Sequential(*layers)


class DnCNN(nn.Module):
    """DnCNN(depth) -> operator -> DnCNN(depth), output = noisy input - predicted noise.

    Args:
        in_channels: image channels.
        image_size: training crop size (the place's size; the operator must run at any size).
        width: channels inside the stages (DnCNN: 64).
        depth: convolutions per stage (the light model: 6).
        features: channels around the aggregation block (the paper: 8).

    Shape:
        x: ``(B, in_channels, H, W)`` -> ``(B, in_channels, H, W)``.
    """

    name = "dncnn"

    def __init__(self, in_channels: int, image_size: tuple[int, int], width: int = 32,
                 depth: int = 6, features: int = 8) -> None:
        super().__init__()
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=2)
        features = check_int("features", features, minimum=1)
        self.stage1 = dncnn_stage(in_channels, features, width, depth)
        self.aggregate = nn.Conv2d(features, features, 3, padding=1)
        self.places = {"aggregate": Place("aggregate", tuple(image_size))}
        self.stage2 = dncnn_stage(features, in_channels, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.stage2(self.aggregate(self.stage1(x)))
