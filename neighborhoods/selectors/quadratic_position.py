"""Attention by position alone: Cordonnier et al.'s quadratic relative positional encoding.

Axis legend: ``h`` heads, ``q`` queries, ``n`` keys.

Cordonnier, Loukas and Jaggi ("On the relationship between self-attention and convolutional
layers", ICLR 2020) give head ``h`` the relative encoding ``r_delta = (||delta||^2, delta_1,
delta_2)`` and the learned vector ``v^(h) = -alpha^(h) (1, -2 Delta^(h)_1, -2 Delta^(h)_2)``
with the content terms set to zero (``W_qry = W_key = 0``; Sec. 3, the proof of Lemma 1), so the score of key ``k``
for query ``q`` is ``-alpha^(h) (||delta - Delta^(h)||^2 - ||Delta^(h)||^2)``, ``delta = k - q``.
The constant ``||Delta^(h)||^2`` is the same for every key of a query and cancels in the
softmax, so this selector scores ``-alpha^(h) ||delta - Delta^(h)||^2`` directly: head ``h``
looks at a Gaussian blob of width ``1 / sqrt(2 alpha^(h))`` around the pixel ``q + Delta^(h)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_choice, check_float, check_tensor
from ..footprint import PixelFootprint, TokenGrid
from ..neighborhood import Neighborhood
from .base import Selector

#: which keys a query's softmax runs over: the image's pixels, or those of the image zero-padded
#: by ``reach`` on every side (padding tokens have zero features, so they take weight and add nothing)
PADDINGS = ("none", "zeros")


class QuadraticPositional(Selector):
    """Every key, weighted per head by ``softmax_k(-alpha_h ||(p_k - p_q) - Delta_h||^2)``.

    Cordonnier et al. 2020, Sec. 3: the quadratic encoding in positional-only (relative) attention.
    As ``alpha_h -> infinity`` head ``h`` puts all its weight on one key: the pixel
    ``q + Delta_h`` (``padding='zeros'``: a padding token there counts as a zero feature) or,
    with ``padding='none'`` at the border, the image pixel nearest to it, which is
    ``q + Delta_h`` clamped into the image (replicate padding).

    Args:
        centres: ``(H, 2)`` the heads' attention centres ``Delta_h`` (row, column offsets).
        alpha: ``(H,)`` or one float for every head, > 0: the inverse widths.
        padding: one of :data:`PADDINGS`.

    Both are parameters (Cordonnier et al. learn them in their Sec. 4 experiments).

    Shape:
        x: ``(B, C, H, W)`` -> Neighborhood with ``weight`` ``(B, heads, N, N, 1)``, ``N = H W``.
        With ``padding='zeros'`` a query's weights sum to at most 1 (the rest fell on padding).
    """

    def __init__(self, centres: Tensor, alpha: float | Tensor = 1.0, padding: str = "none",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_tensor("centres", centres, ndim=2)
        if centres.shape[-1] != 2 or centres.shape[0] < 1:
            raise ValueError(f"centres must have shape (heads, 2), got {tuple(centres.shape)}")
        heads = centres.shape[0]
        if isinstance(alpha, Tensor):
            if tuple(alpha.shape) != (heads,):
                raise ValueError(f"alpha must be a float or have shape (heads,)=({heads},), got {tuple(alpha.shape)}")
            if not bool((alpha > 0).all()):
                raise ValueError(f"alpha must be > 0 for every head, got {alpha.tolist()}")
            alpha_t = alpha.detach().clone()
        else:
            alpha_t = torch.full((heads,), check_float("alpha", alpha, low=0.0, low_open=True))
        factory = {"device": device, "dtype": dtype if dtype is not None else torch.get_default_dtype()}
        self.centres = nn.Parameter(centres.detach().to(**factory).clone())
        self.alpha = nn.Parameter(alpha_t.to(**factory))
        self.padding = check_choice("padding", padding, PADDINGS)
        # the construction's values, which reset_parameters restores (not part of the state_dict)
        self.register_buffer("initial_centres", self.centres.detach().clone(), persistent=False)
        self.register_buffer("initial_alpha", self.alpha.detach().clone(), persistent=False)

    def reset_parameters(self) -> None:
        """Back to the centres and widths given at construction."""
        with torch.no_grad():
            self.centres.copy_(self.initial_centres)
            self.alpha.copy_(self.initial_alpha)

    @property
    def num_heads(self) -> int:
        return self.centres.shape[0]

    @property
    def reach(self) -> int:
        """How far the farthest centre lies from the query on either axis (the zero padding's width)."""
        return int(self.centres.detach().abs().ceil().max().item())

    def scores(self, height: int, width: int) -> Tensor:
        """``-alpha_h ||(p_k - p_q) - Delta_h||^2`` as ``(heads, N, Nk)``, keys on the (padded) grid."""
        pad = self.reach if self.padding == "zeros" else 0
        kw = {"device": self.centres.device, "dtype": self.centres.dtype}
        rows, cols = torch.arange(height, **kw), torch.arange(width, **kw)
        queries = torch.cartesian_prod(rows, cols)  # (N, 2) raster order
        keys = torch.cartesian_prod(torch.arange(-pad, height + pad, **kw), torch.arange(-pad, width + pad, **kw))
        delta = keys[None, :, :] - queries[:, None, :]  # (q, n, 2)
        offset = delta[None] - self.centres[:, None, None, :]  # (h, q, n, 2)
        return -self.alpha[:, None, None] * offset.pow(2).sum(-1)

    def forward(self, x: Tensor) -> Neighborhood:
        self.check_input(x, 2)
        height, width = x.shape[-2:]
        weight = self.scores(height, width).softmax(-1)
        if self.padding == "zeros":  # keep the image's keys: the padding tokens' share multiplies zeros
            pad = self.reach
            grid = weight.unflatten(-1, (height + 2 * pad, width + 2 * pad))
            weight = grid[..., pad:pad + height, pad:pad + width].flatten(-2)
        weight = weight.to(x.dtype).unsqueeze(-1).expand(x.shape[0], -1, -1, -1, -1)  # (b, h, q, n, 1)
        pixels = TokenGrid.pixels((height, width))
        return Neighborhood(num_keys=height * width, query_shape=(height, width), weight=weight,
                            num_heads=self.num_heads, footprint=PixelFootprint((height, width), pixels, pixels))

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, padding={self.padding!r}"
