"""The N3 block's combiner: the input, concatenated with its k neighbour volumes."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from ..checks import check_channels, check_int
from ..functional.cell_volumes import cell_volumes, use_cells
from ..functional.patches import Patches
from ..functional.small_grid import pixel_projection, pixel_volumes, use_pixel_matrix
from ..functional.stages import stage
from ..hooks import hooked
from ..neighborhood import Neighborhood
from ..pointwise import BATCHED_MIN_POSITIONS, ChannelLinear
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
        static = self._static(nbhd)
        if static and use_pixel_matrix(src, nbhd.index, self.patches):
            with stage("combining"):  # a tiny image: im2col, the sums and col2im as two products
                return pixel_volumes(src, nbhd.weight, nbhd.index, self.patches)
        if static and use_cells(src, nbhd.index, self.patches):
            # patches of whole stride cells: the sums over cells, r^2 fewer products (labels its combining)
            return cell_volumes(src, nbhd.weight, nbhd.index, self.patches)
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

    def _static(self, nbhd: Neighborhood) -> bool:
        """Soft weights over one static candidate index shared by the batch, on patch items."""
        return (self.patches is not None and nbhd.weight is not None and nbhd.valid is None
                and nbhd.index is not None and nbhd.index.ndim == 2 and nbhd.weight.ndim == 4)

    def forward(self, x: Tensor, nbhd: Neighborhood, values: Tensor | None = None) -> Tensor:
        if values is None and self._pixel_projection(x, nbhd):
            with stage("combining"):  # a tiny image: volumes and P as three products, no concatenation
                return pixel_projection(x, nbhd.weight, nbhd.index, self.patches, self.project.weight,
                                        self.project.bias, self.relative)
        vol = self.volumes(x, nbhd, values)  # labels its gathering and combining
        with stage("combining"):  # P, the weights mixing the input and its k volumes
            if self._split_projection(x):
                return self._project_split(x, vol)
            if self.relative:
                vol = vol - x.unsqueeze(1)
            y = torch.cat([x, vol.flatten(1, 2)], dim=1)
            return self.project(y) if self.project is not None else y

    def _pixel_projection(self, x: Tensor, nbhd: Neighborhood) -> bool:
        """Whether :func:`~neighborhoods.functional.small_grid.pixel_projection` computes this call.

        The volumes' pixel-matrix route (a tiny CPU image) followed by the plain
        :class:`ChannelLinear` this combiner made (a subclass or a hook would be bypassed).
        """
        p = self.project
        if (type(p) is not ChannelLinear or p.groups != 1 or hooked(p) or not isinstance(nbhd, Neighborhood)
                or x.ndim < 2 or x.shape[1] != self.in_channels or nbhd.num_slots != self.num_slots):
            return False  # volumes() checks the input once and names what is wrong
        return self._static(nbhd) and use_pixel_matrix(x, nbhd.index, self.patches)

    def _split_projection(self, x: Tensor) -> bool:
        """Whether ``P`` can be applied to ``x`` and the volumes apart (:meth:`_project_split`).

        Only for the plain :class:`ChannelLinear` this combiner made (a subclass or a hook
        would be bypassed) on inputs it maps by per-sample products.
        """
        p = self.project
        return (type(p) is ChannelLinear and p.groups == 1 and x.shape[2:].numel() >= BATCHED_MIN_POSITIONS
                and not hooked(p))

    def _project_split(self, x: Tensor, vol: Tensor) -> Tensor:
        """``P([x, N_1 - x, ..])`` as ``(P_0 - sum_s P_s) x + sum_s P_s N_s + b``: no concatenation, no differences.

        ``P = [P_0, P_1, .., P_k]`` split by the concatenation's blocks of C channels; without
        ``relative``, ``P_0 x + sum_s P_s N_s + b``. The same linear map, summed in another order.
        """
        b, c = x.shape[:2]
        w = self.project.weight
        w_x, w_vol = w[:, :c], w[:, c:]
        if self.relative:
            w_x = w_x - w_vol.unflatten(1, (self.num_slots, c)).sum(1)
        flat = x.flatten(2)
        y = (torch.matmul(w_x, flat) if self.project.bias is None
             else torch.baddbmm(self.project.bias.unsqueeze(-1), w_x.expand(b, -1, -1), flat))
        y = y.baddbmm_(w_vol.expand(b, -1, -1), vol.reshape(b, self.num_slots * c, flat.shape[-1]))
        return y.view(b, self.out_channels, *x.shape[2:])

    def reset_parameters(self) -> None:
        if self.project is not None:
            self.project.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, num_slots={self.num_slots}"
        if self.project is not None:
            s += f", out_channels={self.out_channels}"
        return s + ("" if self.relative else ", relative=False")
