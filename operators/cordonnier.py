"""Multi-head self-attention that is a convolution: Cordonnier, Loukas and Jaggi 2020.

"On the relationship between self-attention and convolutional layers" (ICLR 2020), Theorem 1:
a multi-head self-attention layer with ``N_h`` heads of dimension ``D_h``, output dimension
``D_out`` and a relative positional encoding of dimension ``D_p >= 3`` can express any
convolutional layer with a ``sqrt(N_h) x sqrt(N_h)`` kernel and ``min(D_h, D_out)`` output
channels. The construction (Lemma 1, proof): head ``h`` attends, by position only, to the
pixel ``q + Delta_h`` for one offset ``Delta_h`` of the kernel (the quadratic encoding of
Sec. 3 with ``alpha -> infinity``), its value map is the identity, and the output projection's
block for head ``h`` is the kernel's weight at ``Delta_h``:

    MHSA(X)_q = b_out + sum_h sum_k softmax_k(A^(h))_{q,k} X_k W_out^(h)
              -> b_out + sum_h X_{q + Delta_h} W_{Delta_h}  =  Conv(X)_q.

:class:`CordonnierAttention2d` is that layer: ``QuadraticPositional`` (the heads' softmax over
every key, by position) and ``WeightedMean`` (values: ``N_h`` copies of the input; output: one
``(C_out, N_h C_in)`` projection). At a finite ``alpha`` it is a blurred convolution; in the
limit it is the convolution itself, with the border rule of :class:`QuadraticPositional`:
zero padding with ``padding='zeros'``, replicate padding with ``padding='none'`` (keys are the
image's pixels only; the interior is the same either way). ``comparisons/theorems/cordonnier.py``
proves both, and the error bound at finite ``alpha``.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from neighborhoods import NeighborAggregator
from neighborhoods.checks import check_choice, check_float, check_int
from neighborhoods.combiners import WeightedMean
from neighborhoods.selectors.quadratic_position import PADDINGS, QuadraticPositional

from .registry import Example, register

#: the default inverse width: every head's off-centre weight is below 4 e^-alpha ~ 1e-20 of its total
DEFAULT_ALPHA = 46.0
#: torch.nn.Conv2d padding mode -> the keys' padding whose alpha -> infinity limit it is
CONV_PADDING = {"zeros": "zeros", "replicate": "none"}


def kernel_offsets(kernel_size: int, dtype: torch.dtype | None = None) -> Tensor:
    """The ``kernel_size^2`` offsets ``Delta`` of a square kernel in raster order (the order of a conv weight's taps), ``(k^2, 2)``."""
    r = kernel_size // 2
    axis = torch.arange(-r, r + 1, dtype=dtype or torch.get_default_dtype())
    return torch.cartesian_prod(axis, axis)


def off_centre_mass(alpha: float) -> float:
    """``sum over v in Z^2, v != 0 of exp(-alpha ||v||^2) = theta(alpha)^2 - 1``.

    Bounds the weight a head with inverse width ``alpha`` puts off its target pixel (see
    :func:`conv_error_bound`); about ``4 exp(-alpha)`` for ``alpha >= 2``.
    """
    alpha = check_float("alpha", alpha, low=0.0, low_open=True)
    terms = int(math.ceil(math.sqrt(60.0 / alpha))) + 1  # exp(-60) is far below float64's epsilon
    tail = 2.0 * sum(math.exp(-alpha * n * n) for n in range(1, terms + 1))  # theta - 1
    return tail * (2.0 + tail)  # theta^2 - 1, without cancelling to 0 when theta rounds to 1


class _Copies(nn.Module):
    """``(B, C, *spatial) -> (B, copies * C, *spatial)``: each head's value map is the identity (``W_val^(h) = I``)."""

    def __init__(self, copies: int) -> None:
        super().__init__()
        self.copies = copies

    def forward(self, x: Tensor) -> Tensor:
        return x.repeat(1, self.copies, *([1] * (x.ndim - 2)))

    def extra_repr(self) -> str:
        return f"copies={self.copies}"


@register(family="attention", example=Example(dict(in_channels=3, out_channels=4), (2, 3, 5, 6)))
class CordonnierAttention2d(NeighborAggregator):
    """``kernel_size^2`` positional attention heads that express a ``kernel_size x kernel_size`` convolution.

    Cordonnier et al. 2020, Lemma 1 / Theorem 1 with the quadratic encoding (Sec. 3): head ``h``
    scores key ``k`` of query ``q`` by ``-alpha ||(k - q) - Delta_h||^2``, ``Delta_h`` the
    ``h``-th offset of the kernel in raster order; its values are the input itself; the output
    projection maps the ``N_h C_in`` concatenated head outputs to ``C_out`` channels. The
    parameter count is a convolution's (plus the heads' centres and ``alpha``).

    Args:
        in_channels: C_in.
        out_channels: C_out (default C_in).
        kernel_size: an odd k >= 1; ``k^2`` heads.
        alpha: the heads' inverse width, > 0 (default :data:`DEFAULT_ALPHA`, a convolution to
            float64 precision).
        padding: ``'zeros'`` (default; the softmax also runs over a zero-padded ring, so the
            limit is a zero-padded convolution) or ``'none'`` (keys are the image's pixels; the
            limit is a replicate-padded convolution).
        bias: whether the output projection has a bias.

    Shape:
        x: ``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3,
                 alpha: float = DEFAULT_ALPHA, padding: str = "zeros", bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        in_channels = check_int("in_channels", in_channels, minimum=1)
        out_channels = in_channels if out_channels is None else check_int("out_channels", out_channels, minimum=1)
        kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (head centres are offsets around the query), got {kernel_size}")
        alpha = check_float("alpha", alpha, low=0.0, low_open=True)
        check_choice("padding", padding, PADDINGS)
        heads = kernel_size * kernel_size
        factory = {"device": device, "dtype": dtype}
        super().__init__(QuadraticPositional(kernel_offsets(kernel_size), alpha, padding, **factory),
                         WeightedMean(in_channels, heads * in_channels, out_channels, value=_Copies(heads),
                                      bias=bias, **factory))
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size

    @property
    def num_heads(self) -> int:
        return self.kernel_size ** 2

    def load_conv_weight(self, weight: Tensor, bias: Tensor | None = None) -> None:
        """Set ``W_out`` from a conv weight ``(C_out, C_in, k, k)``: head ``h``'s block is the tap at ``Delta_h``."""
        expected = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        if not isinstance(weight, Tensor) or tuple(weight.shape) != expected:
            got = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
            raise ValueError(f"weight must be a conv weight of shape {expected}, got {got}")
        out = self.combiner.output
        with torch.no_grad():
            out.weight.copy_(rearrange(weight, "o c kh kw -> o (kh kw c)"))
            if out.bias is not None:
                out.bias.copy_(bias if bias is not None else torch.zeros_like(out.bias))
            elif bias is not None:
                raise ValueError("this layer has no bias (bias=False), but a conv bias was given")

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, alpha: float = DEFAULT_ALPHA) -> CordonnierAttention2d:
        """The attention layer whose ``alpha -> infinity`` limit is ``conv``.

        ``conv`` must have a square odd kernel, stride 1, dilation 1, groups 1 and 'same'
        padding, with ``padding_mode`` ``'zeros'`` (keys zero-padded) or ``'replicate'``
        (keys are the image's pixels).
        """
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
        kh, kw = conv.kernel_size
        r = kh // 2
        problems = [f"kernel_size={conv.kernel_size} (need square and odd)" if kh != kw or kh % 2 == 0 else "",
                    f"stride={conv.stride} (need 1)" if conv.stride != (1, 1) else "",
                    f"dilation={conv.dilation} (need 1)" if conv.dilation != (1, 1) else "",
                    f"groups={conv.groups} (need 1)" if conv.groups != 1 else "",
                    f"padding={conv.padding!r} (need {(r, r)} or 'same')" if conv.padding not in ((r, r), "same") else "",
                    f"padding_mode={conv.padding_mode!r} (need one of {sorted(CONV_PADDING)})"
                    if conv.padding_mode not in CONV_PADDING else ""]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError("CordonnierAttention2d.from_conv cannot express this convolution: " + "; ".join(problems))
        layer = cls(conv.in_channels, conv.out_channels, kh, alpha=alpha, padding=CONV_PADDING[conv.padding_mode],
                    bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
        layer.load_conv_weight(conv.weight.detach(), None if conv.bias is None else conv.bias.detach())
        return layer

    def conv_error_bound(self, x: Tensor) -> float:
        """An upper bound on ``max |self(x) - conv(x)|`` at this layer's ``alpha`` (every head's alpha).

        Head ``h``'s target key ``t`` beats every other key ``k`` by ``alpha ||p_k - p_t||^2`` in
        the score (on the zero-padded grid ``t = q + Delta_h`` exactly; on the image alone ``t``
        is the projection of ``q + Delta_h`` onto the image, and projecting onto a box only
        shortens distances). So the mass off ``t`` is at most ``eps = off_centre_mass(alpha)``,
        the weights differ from the one-hot row by at most ``2 eps`` in l1, and
        ``|error| <= 2 eps sum_h max_k |W_h x_k|_inf``.
        """
        alpha = float(self.selector.alpha.detach().min())
        eps = off_centre_mass(alpha)
        w = self.combiner.output.weight.detach().to(x.dtype)
        blocks = rearrange(w, "o (h c) -> h o c", h=self.num_heads)
        tokens = x.detach().flatten(2)  # (b, c, n)
        per_head = torch.einsum("hoc,bcn->bhon", blocks, tokens).abs().amax(dim=(-1, -2))  # (b, h)
        return float(2.0 * eps * per_head.sum(-1).max())

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, heads={self.num_heads}, "
                f"padding={self.selector.padding!r}")
