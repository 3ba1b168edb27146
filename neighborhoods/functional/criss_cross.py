"""The criss-cross index set of CCNet (Huang et al. 2019, Sec. 3.1)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_int


def criss_cross_index(height: int, width: int, device: torch.device | str | None = None) -> Tensor:
    """For every pixel, the pixels in its column and its row, itself once.

    Pixels are numbered row-major (``r * width + c``). Candidates of pixel ``(i, j)``: its
    column ``(0, j), ..., (height - 1, j)`` top to bottom, then its row ``(i, c)`` for
    ``c != j`` left to right, ``M = height + width - 1`` in all (CCNet scores the column
    and the row and masks the pixel's second appearance).

    Shape:
        ``-> (height * width, height + width - 1)`` long.
    """
    height = check_int("height", height, minimum=1)
    width = check_int("width", width, minimum=1)
    rows = torch.arange(height, device=device).view(height, 1, 1)
    cols = torch.arange(width, device=device).view(1, width, 1)
    column = torch.arange(height, device=device).view(1, 1, height) * width + cols  # (1, W, H) -> broadcast
    column = column.expand(height, width, height)
    others = torch.arange(width - 1, device=device).view(1, 1, width - 1)
    others = others + (others >= cols).long()  # skip the pixel's own column
    row = (rows * width + others).expand(height, width, width - 1)
    return torch.cat([column, row], -1).reshape(height * width, height + width - 1)
