"""A small Vision Transformer whose token mixer is the chosen operator (the poster's future work).

Patch embedding (a ``patch_size`` convolution with stride ``patch_size``) plus a learned
position embedding, then ``depth`` pre-norm blocks ``x + mixer(norm(x))``,
``x + mlp(norm(x))`` (Dosovitskiy et al. 2021, Eqs. 2-3, with the attention swapped out),
mean-pooled into a linear classifier. The tokens keep their grid, so 1-D mixers (attention,
ConvNN1d, N3 and non-local over the token sequence) and 2-D ones (conv2d over the grid) both fit.
As a plain torch network each mixer is a 3x3 convolution over the grid (``places``);
:func:`~comparisons.ablation.backbones.places.install` swaps the operator in, and
:func:`operators.swap` runs a sequence operator on the grid's tokens in raster order.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from neighborhoods.checks import check_int

from .places import Place


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a channels-first map ``(B, C, H, W)``."""

    def forward(self, x: Tensor) -> Tensor:
        return rearrange(super().forward(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w")


class PositionEmbedding(nn.Module):
    """A learned position embedding ``(1, dim, *grid)`` added to the tokens (truncated normal, std 0.02)."""

    def __init__(self, dim: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, dim, *grid))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.weight


class Block(nn.Module):
    """``x + mixer(norm1(x))``, then ``x + mlp(norm2(x))``; the mixer is a 3x3 convolution until swapped."""

    def __init__(self, dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = ChannelLayerNorm(dim), ChannelLayerNorm(dim)
        self.mixer = nn.Conv2d(dim, dim, 3, padding=1)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv2d(mlp_ratio * dim, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Patch embedding + ``depth`` blocks with the chosen token mixer + mean pool + linear head.

    ``places`` maps each mixer (``blocks.0.mixer``) to its :class:`Place` (the token grid).

    Args:
        in_channels, num_classes, image_size: of the task.
        patch_size: pixels per token side (8x8 digits with 2: a 4x4 grid of 16 tokens).
        dim: token channels.
        depth: blocks.
        mlp_ratio: hidden width of the MLP as a multiple of ``dim``.

    Shape:
        x: ``(B, in_channels, H, W)`` -> logits ``(B, num_classes)``.
    """

    name = "vit"

    def __init__(self, in_channels: int, num_classes: int, image_size: tuple[int, int],
                 patch_size: int = 2, dim: int = 32, depth: int = 2, mlp_ratio: int = 2) -> None:
        super().__init__()
        patch_size = check_int("patch_size", patch_size, minimum=1)
        dim, depth = check_int("dim", dim, minimum=1), check_int("depth", depth, minimum=1)
        if image_size[0] % patch_size or image_size[1] % patch_size:
            raise ValueError(f"patch_size must divide the image size, got patch_size={patch_size}, "
                             f"image_size={tuple(image_size)}")
        grid = (image_size[0] // patch_size, image_size[1] // patch_size)
        self.embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.position = PositionEmbedding(dim, grid)
        self.blocks = nn.Sequential(*(Block(dim, mlp_ratio) for _ in range(depth)))
        self.places = {f"blocks.{i}.mixer": Place(f"blocks.{i}.mixer", grid) for i in range(depth)}
        self.norm = ChannelLayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.blocks(self.position(self.embed(x))))
        return self.head(x.mean((2, 3)))
