"""N3's neighbour volumes on tiny images as two matrix products (im2col, candidate sums and col2im in one).

Axis legend: ``b`` batch, ``c`` channels, ``s`` slots (N3's k volumes), ``q`` patch items,
``m`` candidates per item, ``o`` offsets inside a patch, ``p`` / ``p'`` pixels (``H W`` of them).

The volumes the :class:`~neighborhoods.combiners.Projection` combiner concatenates are
``col2im(candidate_sum(im2col(x), index, w))`` (Ploetz & Roth 2018, Eq. 11, then col2im
averaging overlaps). That is linear in ``x``, with a per-sample, per-slot pixel matrix:

    ``vol[b, s, c, p] = sum_p' A[b, s, p, p'] x[b, c, p']``,
    ``A[b, s, p, p'] = sum_{q, m} w[b, q, m, s] K[(q, m), (p, p')]``,
    ``K[(q, m), (p, p')] = #{o : pix(q, o) = p, pix(index[q, m], o) = p'} / cnt(p)``,

where ``pix(q, o)`` is the pixel at offset ``o`` of patch ``q`` (padding pixels: none; the
zero padding contributes nothing and the padded border is cropped) and ``cnt(p)`` the number
of patches covering ``p``. ``K`` is static (it depends on the image size, the patches and
the candidate index only) and cached. On the digits ablation's 4x4 maps (2x2 patches every
pixel, 9 items, 8 candidates) the whole aggregation is then ``w @ K`` and ``x @ A^T``: 4 ops
and their backward, where im2col, the blocked candidate sum (with its key bands read on the
host) and col2im (which loops over the batch on CPU) take ~300. ``K`` holds ``Nq M (H W)^2``
numbers, so this is for tiny images only (:data:`PIXEL_MATRIX_ELEMENTS`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from .patches import Patches
from .transforms import under_transform

#: largest ``Nq * M * (H W)^2`` (the entries of ``K``) for which the pixel matrix is used.
#: Measured forward + backward of the volumes, batch 32, 3 slots, 2x2 patches every pixel,
#: 3x3-item window, float32, one thread of a 2-core Xeon (im2col + candidate_sum + col2im
#: vs the two products): 4x4 maps (K: 18k entries) 1.67 -> 0.47 ms at C = 32, 2.78 -> 0.53 ms
#: at C = 64; 6x6 (259k) 3.37 -> 1.80 ms at C = 32; 8x8 (1.6M) 3.80 -> 9.13 ms at C = 16
#: and 15.7 -> 10.4 ms at C = 64 (the product w @ K grows as (H W)^2 and loses at small C).
PIXEL_MATRIX_ELEMENTS = 1 << 18


def use_pixel_matrix(x: Tensor, index: Tensor, patches: Patches) -> bool:
    """Whether :func:`pixel_volumes` is the route: a tiny CPU image (:data:`PIXEL_MATRIX_ELEMENTS`), eager mode.

    CPU only: the sizes were measured there (the per-op overhead it removes is the CPU's).
    Under compile/export/vmap the general kernels' traceable forms run instead (see
    :mod:`.transforms`).
    """
    if x.ndim != 4 or index.ndim != 2 or x.device.type != "cpu" or under_transform(x):
        return False
    pixels = x.shape[2] * x.shape[3]
    return index.shape[0] * index.shape[1] * pixels * pixels <= PIXEL_MATRIX_ELEMENTS


@functools.lru_cache(maxsize=64)
def _pixel_matrix(patches: Patches, spatial: tuple[int, int], index_bytes: bytes, shape: tuple[int, int],
                  dtype: torch.dtype) -> Tensor:
    h, w = spatial
    pixels = h * w
    (top, bottom), (left, right) = patches.pads(spatial)
    ids = F.pad(torch.arange(pixels, dtype=torch.float64).view(1, 1, h, w), (left, right, top, bottom), value=-1.0)
    pix = F.unfold(ids, patches.patch_size, stride=patches.stride)[0].t().long()  # (q, o); -1: padding
    if pix.shape[0] != shape[0]:
        raise ValueError(f"index must list candidates for the {pix.shape[0]} patches of a {spatial} image, "
                         f"got index {shape}")
    index = torch.frombuffer(bytearray(index_bytes), dtype=torch.long).view(shape)
    inside = pix >= 0
    cnt = torch.bincount(pix[inside], minlength=pixels).to(torch.float64)  # patches covering each pixel
    nq, m = shape
    p = pix.unsqueeze(1).expand(nq, m, -1)  # (q, m, o): the output pixel
    src = pix[index]  # (q, m, o): the candidate's pixel at the same offset
    row = torch.arange(nq * m).view(nq, m, 1).expand_as(p)
    keep = (p >= 0) & (src >= 0)
    p, src, row = p[keep], src[keep], row[keep]
    k = torch.zeros(nq * m, pixels * pixels, dtype=torch.float64)
    k.index_put_((row, p * pixels + src), 1.0 / cnt[p], accumulate=True)
    return k.to(dtype)


def pixel_matrix(patches: Patches, spatial: tuple[int, int], index: Tensor, dtype: torch.dtype) -> Tensor:
    """``K`` of the module docstring, ``(Nq * M, (H W)^2)`` on the CPU, cached per image size, patches and index."""
    index = index.detach().cpu().contiguous()
    return _pixel_matrix(patches, tuple(spatial), index.numpy().tobytes(), tuple(index.shape), dtype)


def _mixing(x: Tensor, weight: Tensor, index: Tensor, patches: Patches) -> Tensor:
    """``A = w @ K`` of the module docstring, ``(B, S, H W, H W)``: each sample's and slot's pixel matrix."""
    b, _, h, w = x.shape
    s = weight.shape[-1]
    k = pixel_matrix(patches, (h, w), index, x.dtype)
    return (weight.to(x.dtype).permute(0, 3, 1, 2).reshape(b * s, -1) @ k).view(b, s, h * w, h * w)


def pixel_volumes(x: Tensor, weight: Tensor, index: Tensor, patches: Patches) -> Tensor:
    """``col2im(candidate_sum(im2col(x), index, weight))`` as ``x @ (weight @ K)^T`` (module docstring).

    The same function as the general route (round-off apart); differentiable to any order.

    Shape:
        x: ``(B, C, H, W)``; weight: ``(B, Nq, M, S)``; index: ``(Nq, M)`` -> ``(B, S, C, H, W)``.
    """
    b, c, h, w = x.shape
    s = weight.shape[-1]
    pixels = h * w
    a = _mixing(x, weight, index, patches)  # (b, s, p, p')
    vol = x.reshape(b, c, pixels) @ a.view(b, s * pixels, pixels).transpose(1, 2)  # (b, c, s p)
    return vol.view(b, c, s, h, w).transpose(1, 2)



def pixel_projection(x: Tensor, weight: Tensor, index: Tensor, patches: Patches, proj_weight: Tensor,
                     proj_bias: Tensor | None, relative: bool) -> Tensor:
    """The N3 combiner on a tiny image: ``P([x, V_1 (- x), .., V_S (- x)]) + b``, no concatenation built.

    ``V_s`` are :func:`pixel_volumes`'s volumes, computed channels-last: ``A`` ordered
    ``(b, p, s, p')`` times the pixels' rows ``(b, p', c)`` gives ``(b, p, s, c)``, which read as
    ``(B H W, S C)`` rows are the concatenation's volume columns already. ``P = [P_0, P_V]``
    splits into two products over those rows, ``x P_0^T + V P_V^T + b``; with ``relative`` the
    ``- x`` terms fold into ``P_0 - sum_s P_s``. The general route builds the
    ``(B, (S + 1) C, H, W)`` concatenation and copies it channels-last for the projection.
    Forward + backward of the ablation's 64-channel block, batch 64, one thread of a 2-core
    AMD EPYC: 6.30 -> 5.20 ms; a training step of the digits N3 VGG 37.1 -> 33.6 ms.

    Shape:
        x: ``(B, C, H, W)``; weight: ``(B, Nq, M, S)``; index: ``(Nq, M)``; proj_weight:
        ``(O, (S + 1) C)``; proj_bias: ``(O,)`` or ``None`` -> ``(B, O, H, W)`` with
        channels-last strides (batch norm and the next block's convolutions take it as it is).
    """
    b, c, h, w = x.shape
    s = weight.shape[-1]
    pixels = h * w
    a = _mixing(x, weight, index, patches).transpose(1, 2).reshape(b, pixels * s, pixels)  # (b, (p s), p')
    rows = x.permute(0, 2, 3, 1).reshape(b * pixels, c)  # a view when x is channels-last already
    vol = torch.bmm(a, rows.view(b, pixels, c)).view(b * pixels, s * c)
    w_x, w_vol = proj_weight[:, :c], proj_weight[:, c:]
    if relative:
        w_x = w_x - w_vol.unflatten(1, (s, c)).sum(1)
    y = rows @ w_x.t() if proj_bias is None else torch.addmm(proj_bias, rows, w_x.t())
    y = y.addmm_(vol, w_vol.t())
    return y.view(b, h, w, proj_weight.shape[0]).permute(0, 3, 1, 2)
