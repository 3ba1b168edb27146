"""The N3 block's combiner: the input, concatenated with its k neighbour volumes."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from ..checks import check_channels, check_int
from ..functional.patches import Patches
from ..functional.small_grid import pixel_volumes, use_pixel_matrix
from ..functional.stages import stage
from ..neighborhood import Neighborhood
from ..pointwise import ChannelLinear
from ..tokens import from_tokens, to_tokens
from .base import Combiner


class Projection(Combiner):
    """``y = P([x, N_1 - x, ..., N_k - x])`` (Ploetz & Roth 2018, Sec. 4, Fig. 2a).

    ``N_s`` is slot ``s`` of the neighbourhood applied to the input's items (Eq. 11; or to
    the items of ``values``, the candidates' tensor of a cross-matching N3 block): the
    tokens themselves, or with ``patches`` the im2col patches, turned back into an image by
    col2im, averaging overlapping patches. ``relative=True`` stores ``N_s - x`` (the
    authors' public code), ``False`` the raw volumes ``N_s`` (the paper's text). ``P`` is an
    optional 1x1 projection to ``out_channels``; without it the output has ``(k + 1) C``
    channels.

    Args:
        in_channels: C.
        num_slots: k, the neighbourhood's slots.
        out_channels: channels after the 1x1 projection; ``None`` for no projection.
        relative: ``N_s - x`` (default) or ``N_s``.
        patches: the :class:`~neighborhoods.functional.Patches` the selector matched, or
            ``None`` when items are tokens.
        bias: whether the projection has a bias.

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, (k + 1) C or out_channels, *spatial)``.
    """

    def __init__(self, in_channels: int, num_slots: int, out_channels: int | None = None, relative: bool = True,
                 patches: Patches | None = None, bias: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.num_slots = check_int("num_slots", num_slots, minimum=1)
        self.relative = bool(relative)
        self.patches = patches
        concat = (self.num_slots + 1) * self.in_channels
        self.out_channels = concat if out_channels is None else check_int("out_channels", out_channels, minimum=1)
        self.project = (None if out_channels is None
                        else ChannelLinear(concat, self.out_channels, bias=bias, device=device, dtype=dtype))

    def volumes(self, x: Tensor, nbhd: Neighborhood, values: Tensor | None = None) -> Tensor:
        """The neighbour volumes ``N_1..N_k`` in the input's layout: ``(B, k, C, *spatial)``.

        The volumes aggregate the items of ``values`` (default ``x``; the same shape as ``x``).
        """
        check_channels("x", x, self.in_channels)
        if values is not None and values.shape != x.shape:
            raise ValueError(f"values must have x's shape {tuple(x.shape)}, got {tuple(values.shape)}")
        src = x if values is None else values
        if nbhd.num_slots != self.num_slots:
            raise ValueError(f"the neighbourhood has {nbhd.num_slots} slots, this combiner num_slots={self.num_slots}")
        spatial = tuple(x.shape[2:])
        if (self.patches is not None and nbhd.weight is not None and nbhd.valid is None and nbhd.index is not None
                and nbhd.index.ndim == 2 and nbhd.weight.ndim == 4 and use_pixel_matrix(src, nbhd.index, self.patches)):
            with stage("combining"):  # a tiny image: im2col, the sums and col2im as two products
                return pixel_volumes(src, nbhd.weight, nbhd.index, self.patches)
        items = self.patches.unfold(src) if self.patches is not None else to_tokens(src)
        vol = rearrange(nbhd.aggregate(items), "b q s d -> b q (s d)")
        if self.patches is not None:
            vol = self.patches.fold(vol, spatial)
        else:
            if tuple(nbhd.query_shape) != spatial:
                raise ValueError(f"the neighbourhood's queries {tuple(nbhd.query_shape)} must be the input's "
                                 f"tokens {spatial} to concatenate them")
            vol = from_tokens(vol, spatial)
        return vol.unflatten(1, (self.num_slots, self.in_channels))

    def forward(self, x: Tensor, nbhd: Neighborhood, values: Tensor | None = None) -> Tensor:
        vol = self.volumes(x, nbhd, values)  # labels its gathering and combining
        with stage("combining"):  # P, the weights mixing the input and its k volumes
            if self.relative:
                vol = vol - x.unsqueeze(1)
            y = torch.cat([x, vol.flatten(1, 2)], dim=1)
            return self.project(y) if self.project is not None else y

    def reset_parameters(self) -> None:
        if self.project is not None:
            self.project.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, num_slots={self.num_slots}"
        if self.project is not None:
            s += f", out_channels={self.out_channels}"
        return s + ("" if self.relative else ", relative=False")
