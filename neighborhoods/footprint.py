"""Where a neighbourhood's tokens sit on the input's pixels.

A selector's keys and queries are not always the input's pixels: the non-local block pools
its keys 2 x 2, N3 matches patches, a strided convolution has fewer queries than pixels,
CGNL's nodes are (channel, position) entries. A :class:`TokenGrid` says, with a handful of
ints and no tensors (so building one costs nothing in ``forward`` and nothing under
``torch.compile``), which pixels each token covers:

    token at grid coordinate ``g`` covers, on every axis ``a``, the input coordinates
    ``g[a] * stride[a] + offset[a] + j * dilation[a]`` for ``j < size[a]``.

Pixels are the identity grid (size 1, stride 1), a 2 x 2 max-pool is size = stride = 2, an
N3 patch is size ``p``, stride ``s``, a convolution's query is the window it reads (size
``k``, offset ``-padding``). ``copies`` stacks the grid (channel-major), for CGNL's entries.

:meth:`PixelFootprint.paint` turns a weight per key into a weight per input pixel by
spreading each key's weight *evenly* over the pixels it covers (each of a 2 x 2 pooled key's
pixels gets a quarter, each of an N3 patch's ``p^2`` pixels gets ``1 / p^2``), so the
painted map sums to exactly the keys' total weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .checks import check_int


@dataclass(frozen=True)
class TokenGrid:
    """A grid of tokens laid over the input's pixels (see the module docstring).

    Args:
        shape: the token grid, one entry per spatial axis.
        size, stride, offset, dilation: per axis; the pixels a token covers.
        copies: the grid repeated ``copies`` times, channel-major (token ``c * prod(shape) + n``
            is copy ``c`` of grid token ``n``): CGNL's ``(channel, position)`` entries.
    """

    shape: tuple[int, ...]
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: tuple[int, ...]
    dilation: tuple[int, ...]
    copies: int = 1

    def __post_init__(self) -> None:
        d = len(self.shape)
        if not all(len(t) == d for t in (self.size, self.stride, self.offset, self.dilation)):
            raise ValueError(f"a TokenGrid needs one size/stride/offset/dilation per axis of shape {self.shape}, "
                             f"got size={self.size}, stride={self.stride}, offset={self.offset}, "
                             f"dilation={self.dilation}")

    @classmethod
    def pixels(cls, shape: tuple[int, ...], copies: int = 1) -> TokenGrid:
        """Every token is one pixel (keys = queries = the input's own tokens)."""
        d = len(shape)
        return cls(tuple(shape), (1,) * d, (1,) * d, (0,) * d, (1,) * d, copies)

    @classmethod
    def blocks(cls, shape: tuple[int, ...], size: tuple[int, ...], stride: tuple[int, ...]) -> TokenGrid:
        """Tokens covering ``size`` blocks every ``stride`` pixels (pooling windows, N3 patches)."""
        d = len(shape)
        return cls(tuple(shape), tuple(size), tuple(stride), (0,) * d, (1,) * d)

    @property
    def num_tokens(self) -> int:
        return self.copies * math.prod(self.shape)

    def axis_coverage(self, axis: int, length: int, device: torch.device | None = None) -> Tensor:
        """``(shape[axis], length)``: the share of each token's weight that each pixel of the axis gets.

        Row ``g`` holds ``1 / n_g`` at each of the ``n_g`` coordinates it covers inside
        ``[0, length)`` (a coordinate covered twice, possible only with ``dilation = 0``, which
        is not allowed, would add up); coordinates outside the input get nothing. ``n_g`` is
        ``size`` unless the token hangs over the border (an N3 patch of a zero-padded image),
        so every token that touches the input passes on all of its weight.
        """
        g = torch.arange(self.shape[axis], device=device).unsqueeze(1)
        pos = g * self.stride[axis] + self.offset[axis] + torch.arange(self.size[axis], device=device) \
            * self.dilation[axis]
        inside = (pos >= 0) & (pos < length)
        out = torch.zeros(self.shape[axis], length, dtype=torch.float64, device=device)
        rows = g.expand_as(pos)[inside]
        share = 1 / inside.sum(1, keepdim=True).clamp(min=1).to(torch.float64)  # (n, 1)
        out.index_put_((rows, pos[inside]), share.expand_as(pos)[inside], accumulate=True)
        return out

    def centres(self, axis: int) -> Tensor:
        """The centre of every token of one axis, in input pixel coordinates (float64)."""
        g = torch.arange(self.shape[axis], dtype=torch.float64)
        return g * self.stride[axis] + self.offset[axis] + self.dilation[axis] * (self.size[axis] - 1) / 2

    def touches(self, input_shape: tuple[int, ...]) -> bool:
        """Whether every token covers at least one pixel of the input."""
        return all(o + (k - 1) * dl >= 0 and (n - 1) * s + o < length
                   for n, k, s, o, dl, length in zip(self.shape, self.size, self.stride, self.offset, self.dilation,
                                                    input_shape))


@dataclass(frozen=True)
class PixelFootprint:
    """How a neighbourhood's keys and queries sit on the pixels of the input it was built from.

    Args:
        input_shape: the input's spatial shape, e.g. ``(H, W)``.
        keys: the key tokens' grid; every key must cover some pixel of the input.
        queries: the query tokens' grid (a query's centre locates it, see :meth:`query_at`).
    """

    input_shape: tuple[int, ...]
    keys: TokenGrid
    queries: TokenGrid

    def __post_init__(self) -> None:
        for name, grid in (("keys", self.keys), ("queries", self.queries)):
            if len(grid.shape) != len(self.input_shape):
                raise ValueError(f"{name} grid {grid.shape} must have one axis per input axis {self.input_shape}")
        if not self.keys.touches(self.input_shape):
            raise ValueError(f"every key must cover pixels inside the input {self.input_shape}, got {self.keys}")

    @classmethod
    def pixels(cls, input_shape: tuple[int, ...]) -> PixelFootprint:
        """Keys and queries are the input's own pixels."""
        grid = TokenGrid.pixels(tuple(input_shape))
        return cls(tuple(input_shape), grid, grid)

    def paint(self, per_key: Tensor) -> Tensor:
        """A weight per key ``(Nk,)`` as a weight per input pixel ``(*input_shape)``.

        Copies of a grid token (CGNL's channels) add up on their pixel; each key's weight is
        spread evenly over the pixels it covers, so the map's sum is ``per_key.sum()``.
        """
        if per_key.shape != (self.keys.num_tokens,):
            raise ValueError(f"per_key must have shape ({self.keys.num_tokens},), got {tuple(per_key.shape)}")
        w = per_key.reshape(self.keys.copies, *self.keys.shape).sum(0)
        for axis, length in enumerate(self.input_shape):
            # contract the leading token axis; the pixel axis is appended at the end
            cover = self.keys.axis_coverage(axis, length, per_key.device).to(per_key.dtype)
            w = torch.tensordot(w, cover, dims=([0], [0]))
        return w

    def query_at(self, pixel: int | tuple[int, ...]) -> int:
        """The flat index of the query whose centre is nearest to an input pixel.

        ``pixel`` is a flat index into the input or a tuple of coordinates. Distance is
        euclidean between the pixel and each query's centre (the centre of the window a
        convolution reads, of an N3 patch, of a pooled block); ties go to the lowest query
        index. When queries are the pixels themselves this is the pixel's own index. With
        copies (CGNL) the query of copy 0 is returned; copy ``c`` is ``c * prod(shape)`` further.
        """
        coords = _coordinates("pixel", pixel, self.input_shape)
        index = []
        for axis, c in enumerate(coords):
            # the grid is a product, so the nearest centre is nearest on every axis; argmin takes
            # the first of equals, which makes the flat index the lowest of the tied ones
            index.append(int((self.queries.centres(axis) - c).abs().argmin()))
        return int(torch.tensor(index).dot(_row_strides(self.queries.shape)))


def _row_strides(shape: tuple[int, ...]) -> Tensor:
    return torch.tensor([math.prod(shape[a + 1:]) for a in range(len(shape))])


def _coordinates(name: str, where: int | tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """A flat index or a coordinate tuple into ``shape``, checked, as a coordinate tuple."""
    total = math.prod(shape)
    if isinstance(where, tuple):
        if len(where) != len(shape):
            raise ValueError(f"{name} must have {len(shape)} coordinates for the grid {shape}, got {name}={where}")
        coords = tuple(check_int(f"{name}[{a}]", c, minimum=0) for a, c in enumerate(where))
        bad = [a for a, (c, n) in enumerate(zip(coords, shape)) if c >= n]
        if bad:
            raise ValueError(f"{name}={where} is outside the grid {shape} (axis {bad[0]})")
        return coords
    flat = check_int(name, where, minimum=0)
    if flat >= total:
        raise ValueError(f"{name} must be < {total} (the grid {shape} holds {total}), got {name}={flat}")
    return tuple(int(c) for c in torch.unravel_index(torch.tensor(flat), shape))


def flat_index(name: str, where: int | tuple[int, ...], shape: tuple[int, ...]) -> int:
    """A flat index or a coordinate tuple into ``shape`` as a flat index, checked."""
    coords = _coordinates(name, where, shape)
    return int(sum(c * math.prod(shape[a + 1:]) for a, c in enumerate(coords)))


def pooled_grid(input_shape: tuple[int, ...], num_tokens: int) -> TokenGrid | None:
    """The grid of ``num_tokens`` tokens an input of ``input_shape`` was pooled to, if it is one.

    A dense selector sees only how many keys (or queries) its modules made. ``prod(input_shape)``
    tokens are the pixels; ``prod(n // f)`` tokens, for the smallest integer ``f >= 2`` that
    gives that count, are taken to be non-overlapping ``f x f`` blocks (the floor-mode
    ``MaxPool(f)`` of the non-local block's ``sub_sample``, f = 2), where an axis shorter
    than ``f`` is not pooled (window 1, as the non-local block's ``sub_sample`` leaves an
    axis of length 1); a 3-D grid tries ``(1, f, f)`` first (the 3-D block pools space only);
    any other count is not placed (``None``), and
    :meth:`Neighborhood.query_map` then says so.
    """
    shape = tuple(input_shape)
    if num_tokens == math.prod(shape):
        return TokenGrid.pixels(shape)
    for f in range(2, max(shape) + 1):
        # a video (T, H, W) is pooled over space only, (1, f, f), by the 3-D non-local block
        factors = [(1,) + (f,) * (len(shape) - 1)] if len(shape) == 3 else []
        for factor in (*factors, (f,) * len(shape)):
            window = tuple(w if n >= w else 1 for n, w in zip(shape, factor))
            pooled = tuple(n // w for n, w in zip(shape, window))
            count = math.prod(pooled)
            if count == num_tokens and count > 0:
                return TokenGrid.blocks(pooled, window, window)
    return None
