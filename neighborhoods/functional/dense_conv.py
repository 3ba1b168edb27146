"""A convolution of a tiny map as one matrix product: ``(B, C_in H W) @ (C_in H W, C_out H' W')``.

A 2-D convolution is linear in its input, so on a map of ``H x W`` pixels it is one dense
matrix ``M[(ci, p), (co, q)] = sum_t weight[co, ci, t] T[t, p, q]``, where the static 0/1 tensor
``T[t, p, q]`` says that tap ``t`` of output pixel ``q`` reads input pixel ``p`` (zero padding
reads none). ``M`` is one small product of the weight with ``T`` (cached per map size), and the
convolution one ``addmm``; autograd of the two products gives the input and weight gradients.

Why: on the CPU a convolution's cost on tiny maps is per call. N3's embedding and temperature
networks run 3x3 convolutions on the 4x4 maps of the digits ablation, batch 64. Forward +
backward on a 2-core AMD EPYC (2 threads, float32), oneDNN -> this route: C_in 8 -> C_out 1
485 -> 168 us, 8 -> 8 414 -> 258 us, 8 -> 16 363 -> 340 us, 32 -> 16 507 -> 904 us. ``M``
holds ``C_in H W C_out H' W'`` numbers and its products grow with ``(H W)^2``, so the route
is for tiny maps and few channels only (:data:`DENSE_CONV_ELEMENTS`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..hooks import hooked
from .transforms import under_transform

#: largest ``C_in H W * C_out H' W'`` (the entries of ``M``) for which the dense route is taken:
#: 8 -> 8 channels on 4x4 maps is 16 Ki entries (a gain), 8 -> 16 is 32 Ki (even)
DENSE_CONV_ELEMENTS = 1 << 14


@functools.lru_cache(maxsize=64)
def _taps(spatial: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
          dilation: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
    """``T`` ``(kh kw, H W, H' W')``: 1 where tap ``t`` of output pixel ``q`` reads input pixel ``p``."""
    h, w = spatial
    ids = torch.arange(h * w, dtype=torch.float64).view(1, 1, h, w)
    # unfold pads with zeros: shift the ids by one so that 0 marks padding
    cols = F.unfold(ids + 1, kernel, dilation=dilation, padding=padding, stride=stride)[0].long() - 1  # (t, q)
    taps, out = cols.shape
    t, q = torch.meshgrid(torch.arange(taps), torch.arange(out), indexing="ij")
    inside = cols >= 0
    table = torch.zeros(taps, h * w, out, dtype=dtype)
    table[t[inside], cols[inside], q[inside]] = 1.0
    return table.to(device)


def dense_conv_takes(conv: nn.Module, x: Tensor) -> bool:
    """Whether :func:`dense_conv2d` runs ``conv`` on ``x``: a plain, unhooked ``nn.Conv2d`` of one
    group and zero (numeric) padding on a tiny CPU map in eager mode (:data:`DENSE_CONV_ELEMENTS`).
    """
    if (type(conv) is not nn.Conv2d or hooked(conv) or conv.groups != 1 or conv.padding_mode != "zeros"
            or not isinstance(conv.padding, tuple) or x.ndim != 4 or x.device.type != "cpu"
            or x.dtype != conv.weight.dtype or x.shape[1] != conv.in_channels or under_transform(x)):
        return False
    oh, ow = _out_size(tuple(x.shape[2:]), conv)
    if oh < 1 or ow < 1:
        return False
    return conv.in_channels * x.shape[2] * x.shape[3] * conv.out_channels * oh * ow <= DENSE_CONV_ELEMENTS


def _out_size(spatial: tuple[int, ...], conv: nn.Conv2d) -> tuple[int, int]:
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1  # type: ignore[return-value]
                 for n, k, s, p, d in zip(spatial, conv.kernel_size, conv.stride, conv.padding, conv.dilation))


def dense_conv2d(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv(x)`` as one matrix product (module docstring); callers check :func:`dense_conv_takes`.

    Shape:
        x: ``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``, as ``conv``.
    """
    b, cin, h, w = x.shape
    cout = conv.out_channels
    oh, ow = _out_size((h, w), conv)
    taps = _taps((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation, x.dtype, x.device)
    # M[(ci, p), (co, q)]: the weight times the tap table, laid out for x (B, ci p) @ M
    m = (conv.weight.reshape(cout * cin, -1) @ taps.reshape(taps.shape[0], -1)).view(cout, cin, h * w, oh * ow)
    m = m.permute(1, 2, 0, 3).reshape(cin * h * w, cout * oh * ow)
    flat = x.reshape(b, cin * h * w)
    if conv.bias is None:
        y = flat @ m
    else:
        y = torch.addmm(conv.bias.repeat_interleave(oh * ow), flat, m)
    return y.view(b, cout, oh, ow)
