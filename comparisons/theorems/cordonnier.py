"""Cordonnier et al. 2020: 9 positional attention heads are a 3x3 convolution.

"On the relationship between self-attention and convolutional layers" (ICLR 2020), Lemma 1 /
Theorem 1, made executable with :class:`operators.CordonnierAttention2d`: head ``h`` scores
keys by ``-alpha ||(k - q) - Delta_h||^2`` (the quadratic encoding of Sec. 3), values are the
input, and the output projection's block ``h`` is the kernel's tap at ``Delta_h``. The paper's
proof takes ``alpha -> infinity`` on an unbounded grid; on an image the border needs a rule,
and both rules are stated and checked here: keys zero-padded -> a zero-padded convolution;
keys the image's pixels only -> a replicate-padded one (the nearest image pixel to
``q + Delta_h`` is its clamp into the image). Interior pixels agree under both.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from operators import CordonnierAttention2d

from .base import DEFAULT_TOLERANCE, Trial, describe, max_error, randn, theorem

#: (C_in, C_out, kernel, H, W, keys' padding)
CASES = [(3, 4, 3, 6, 7, "zeros"), (3, 4, 3, 6, 7, "none"), (2, 3, 5, 7, 6, "zeros"), (2, 3, 5, 7, 6, "none"),
         (4, 2, 1, 4, 5, "zeros"), (2, 2, 3, 2, 3, "none")]
#: finite inverse widths at which the error bound is checked
ALPHAS = (1.0, 2.0, 4.0, 8.0, 16.0)


def conv_of(layer: CordonnierAttention2d, x: Tensor) -> Tensor:
    """``F.conv2d`` with the kernel read back from the layer's output projection and its border rule."""
    k = layer.kernel_size
    weight = rearrange(layer.combiner.output.weight, "o (kh kw c) -> o c kh kw", kh=k, kw=k)
    r = k // 2
    mode = "constant" if layer.selector.padding == "zeros" else "replicate"
    return F.conv2d(F.pad(x, (r, r, r, r), mode=mode), weight, layer.combiner.output.bias)


def _layer(c_in: int, c_out: int, kernel: int, padding: str, alpha: float, generator: torch.Generator,
           dtype: torch.dtype) -> CordonnierAttention2d:
    layer = CordonnierAttention2d(c_in, c_out, kernel, alpha=alpha, padding=padding, dtype=dtype)
    with torch.no_grad():  # random kernel and bias from the seeded generator
        layer.combiner.output.weight.copy_(randn(generator, c_out, kernel * kernel * c_in, dtype=dtype,
                                                 requires_grad=False))
        layer.combiner.output.bias.copy_(randn(generator, c_out, dtype=dtype, requires_grad=False))
    return layer


@theorem("cordonnier.attention==conv2d",
         "k^2 positional attention heads (quadratic encoding, alpha = 46) equal the k x k convolution their output "
         "projection holds: zero-padded keys -> zero padding, image-only keys -> replicate padding "
         "(Cordonnier et al. 2020, Thm. 1)")
def attention_is_conv(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for c_in, c_out, kernel, h, w, padding in CASES:
        layer = _layer(c_in, c_out, kernel, padding, 46.0, generator, dtype)
        x = randn(generator, 2, c_in, h, w, dtype=dtype)
        out = layer.combiner.output
        err = max_error(lambda: layer(x), lambda: conv_of(layer, x), [x, out.weight, out.bias], generator)
        yield Trial(describe(x=x.shape, c_out=c_out, kernel=kernel, keys=padding), err)


@theorem("cordonnier.finite_alpha<=bound",
         "at a finite alpha the heads' output differs from the convolution by at most 2 eps(alpha) sum_h max|W_h x|, "
         "eps(alpha) = sum_{v != 0} exp(-alpha |v|^2) ~ 4 exp(-alpha) (each trial's tolerance is that bound)")
def finite_alpha_bound(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for c_in, c_out, kernel, h, w, padding in CASES[:4]:
        for alpha in ALPHAS:
            layer = _layer(c_in, c_out, kernel, padding, alpha, generator, dtype)
            x = randn(generator, 2, c_in, h, w, dtype=dtype, requires_grad=False)
            with torch.no_grad():
                ours, conv = layer(x), conv_of(layer, x)
            rounding = DEFAULT_TOLERANCE[dtype] * max(1.0, float(conv.abs().max()))
            yield Trial(describe(x=x.shape, kernel=kernel, keys=padding, alpha=alpha),
                        float((ours - conv).abs().max()), tolerance=layer.conv_error_bound(x) + rounding)
