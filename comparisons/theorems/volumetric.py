"""The 3-D twins, ``(B, C, T, H, W)``, are their 2-D layers with three spatial axes.

References written independently of the library: ``torch.nn.Conv3d`` / ``F.conv3d``, the
ConvNN poster's Algorithm 1 as a per-token loop (:func:`.convnn.algorithm1`, which flattens
any grid), Wang et al.'s Eqs. 1-6 written densely with ``F.max_pool3d((1, 2, 2))``, and
``F.scaled_dot_product_attention`` on the layer's projections.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from operators import Conv3d, ConvNN3d, NonLocalBlock3d, SelfAttention2d, SelfAttention3d
from operators.non_local import MODES

from .attention import _randomise_w, _sdpa_by_hand
from .base import Trial, describe, max_error, randn, theorem
from .convnn import algorithm1

#: (kernel, stride, padding, dilation, groups, padding_mode): the registry's 3x3x3 'same', a
#: pointwise one, non-cubic, strided, dilated, depthwise, every padding mode
CONV3D_CASES = [(3, 1, 1, 1, 1, "zeros"), (1, 1, 0, 1, 1, "zeros"), ((1, 3, 2), 1, "same", 1, 2, "reflect"),
                (3, 2, (1, 0, 1), 1, 4, "zeros"), ((2, 3, 3), 1, 0, (1, 2, 1), 1, "circular"),
                (3, (1, 2, 2), 1, 1, 4, "replicate")]


def _conv3d_trials(generator: torch.Generator, dtype: torch.dtype, against: str) -> Iterator[Trial]:
    for kernel, stride, padding, dilation, groups, mode in CONV3D_CASES:
        args = (4, 8, kernel, stride, padding, dilation, groups)
        layer = Conv3d(*args, padding_mode=mode, dtype=dtype)
        x = randn(generator, 2, 4, 4, 5, 6, dtype=dtype)
        if against == "torch":
            native = nn.Conv3d(*args, padding_mode=mode, dtype=dtype)
            layer.load_state_dict(native.state_dict())  # torch's state_dict, unchanged
            for path in ("reference", "fast"):
                err = max_error(lambda: layer(x, path=path), lambda: native(x), [x], generator,
                                a_params=[layer.weight, layer.bias], b_params=[native.weight, native.bias])
                yield Trial(describe(x=x.shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                                     groups=groups, mode=mode, path=path), err)
        else:
            err = max_error(lambda: layer(x, path="fast"), lambda: layer(x, path="reference"),
                            [x, layer.weight, layer.bias], generator)
            yield Trial(describe(x=x.shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                                 groups=groups, mode=mode), err)


@theorem("conv3d==torch", "Conv3d loaded with torch.nn.Conv3d's state_dict equals it (explicit 3-D window and "
         "F.conv3d paths; strides, dilation, groups, every padding mode)")
def conv3d_torch(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    yield from _conv3d_trials(generator, dtype, "torch")


@theorem("conv3d.fast==reference", "Conv3d's F.conv3d fast path equals its explicit 3-D window path")
def conv3d_fast(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    yield from _conv3d_trials(generator, dtype, "fast")


@theorem("convnn3d.location==conv3d",
         "ConvNN3d with 'location' similarity and k = (2r+1)^3 equals Conv3d(2r+1, padding='same') (k = 27: "
         "3x3x3), and with a conv's stride and padding the strided Conv3d; both paths")
def convnn3d_location(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for spatial, width, stride, padding in [((3, 4, 5), 3, 1, None), ((4, 4, 3), 1, 1, None),
                                            ((3, 6, 6), 5, 1, None), ((5, 6, 7), 3, 2, 1), ((4, 7, 6), 3, (1, 2, 2), 0)]:
        kwargs = {} if padding is None else dict(stride=stride, padding=padding, candidate_padding=1)
        layer = ConvNN3d(3, 5, k=width ** 3, similarity="location", dtype=dtype, **kwargs)
        pads = (width - 1) // 2 if padding is None else padding
        x = randn(generator, 2, 3, *spatial, dtype=dtype)

        def conv3d() -> Tensor:
            return F.conv3d(x, layer.weight.reshape(5, 3, width, width, width), layer.bias, stride, pads)

        for path in ("reference", "fast"):
            err = max_error(lambda: layer(x, path=path), conv3d, [x, layer.weight, layer.bias], generator)
            yield Trial(describe(x=x.shape, k=width ** 3, stride=stride, padding=padding, path=path), err)


@theorem("convnn3d.features==algorithm1",
         "ConvNN3d with cosine/euclidean similarity (all T H W tokens, or a spatial sample) equals a per-token "
         "loop of the poster's Algorithm 1 over the video's tokens")
def convnn3d_features(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for spatial, k, similarity, samples in [((3, 4, 5), 9, "cosine", None), ((2, 5, 4), 5, "euclidean", None),
                                            ((3, 4, 4), 1, "cosine", None), ((3, 5, 5), 4, "cosine", 2)]:
        sampling = dict(sampling="spatial", samples=samples) if samples else {}
        layer = ConvNN3d(3, 4, k=k, similarity=similarity, block_size=7, dtype=dtype, **sampling)
        pool = None
        if samples:  # samples evenly spaced planes, rows and columns, rounded to the nearest token
            axes = [[round(i * (n - 1) / (samples - 1)) for i in range(samples)] for n in spatial]
            pool = [(t * spatial[1] + r) * spatial[2] + c for t in axes[0] for r in axes[1] for c in axes[2]]
        x = randn(generator, 2, 3, *spatial, dtype=dtype)
        err = max_error(lambda: layer(x), lambda: algorithm1(x, layer.weight, layer.bias, k, similarity, pool),
                        [x, layer.weight, layer.bias], generator)
        yield Trial(describe(x=x.shape, k=k, similarity=similarity, samples=samples), err)


def non_local_3d_formula(block: NonLocalBlock3d, x: Tensor) -> Tensor:
    """Wang et al. 2018, Eqs. 1-6 densely; ``phi`` and ``g`` max-pooled by ``(1, 2, 2)`` (Sec. 4.1) when sub-sampling.

    The 1x1x1 embeddings are applied as matrix products of the block's conv weights; the
    pooling is ``F.max_pool3d``, not the block's own module.
    """
    def pool(t: Tensor) -> Tensor:
        return F.max_pool3d(t, (1, 2, 2)) if block.sub_sample else t

    def embed(layer: nn.Module, t: Tensor) -> Tensor:
        conv = layer[0] if isinstance(layer, nn.Sequential) else layer
        return torch.einsum("oc,bc...->bo...", conv.weight.flatten(1), t) + conv.bias.view(1, -1, 1, 1, 1)

    if block.mode == "gaussian":
        theta, phi = x, pool(x)
    else:
        theta, phi = embed(block.theta, x), pool(embed(block.phi, x))
    theta, phi = theta.flatten(2).transpose(1, 2), phi.flatten(2).transpose(1, 2)  # (b, q, d), (b, m, d)
    g = pool(embed(block.g, x)).flatten(2).transpose(1, 2)  # (b, m, i)
    if block.mode == "concatenation":
        w = block.concat_project.weight[0]
        d = theta.shape[-1]
        # ReLU(w^T [theta_i, phi_j]) = ReLU(w_1 . theta_i + w_2 . phi_j)
        a = torch.relu((theta @ w[:d]).unsqueeze(-1) + (phi @ w[d:]).unsqueeze(1)) / phi.shape[1]
    else:
        f = theta @ phi.transpose(1, 2)
        a = f.softmax(-1) if block.mode in ("gaussian", "embedded_gaussian") else f / phi.shape[1]
    y = (a @ g).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])
    return block.W(y) + x


@theorem("non_local_block3d==formula",
         "NonLocalBlock3d equals Wang et al.'s Eqs. 1-6 on a video, keys and values max-pooled over space only, "
         "(1, 2, 2), as their video model (Sec. 4.1); the four modes, both paths")
def non_local_block3d(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for mode in MODES:
        for sub_sample, shape in ((True, (2, 4, 3, 5, 4)), (False, (1, 6, 2, 3, 4))):  # odd H: pooling floors
            block = NonLocalBlock3d(shape[1], inter_channels=3, mode=mode, sub_sample=sub_sample, dtype=dtype)
            _randomise_w(block, generator)
            x = randn(generator, *shape, dtype=dtype)
            for path in ("auto", "reference"):
                err = max_error(lambda: block(x, path=path), lambda: non_local_3d_formula(block, x),
                                [x, *block.parameters()], generator)
                yield Trial(describe(x=x.shape, mode=mode, sub_sample=sub_sample, path=path), err)


@theorem("self_attention3d==self_attention2d",
         "SelfAttention3d equals SelfAttention2d on the (T, H W) image with its state_dict (the same tokens, "
         "row-major), and SDPA on its projections (masks, heads, both paths)")
def self_attention3d(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for heads, shape, masked in [(1, (2, 4, 2, 3, 4), False), (2, (2, 6, 3, 2, 3), True), (3, (1, 6, 2, 2, 2), False)]:
        layer = SelfAttention3d(shape[1], heads, qk_channels=6, value_channels=3 * heads, out_channels=5, dtype=dtype)
        flat = SelfAttention2d(shape[1], heads, qk_channels=6, value_channels=3 * heads, out_channels=5, dtype=dtype)
        flat.load_state_dict(layer.state_dict())
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 0.5)
            flat.load_state_dict(layer.state_dict())
        x = randn(generator, *shape, dtype=dtype)
        n = x.shape[2:].numel()
        mask = None
        if masked:
            mask = torch.rand(n, n, generator=generator) < 0.6
            mask[:, 0] = True
        image = (shape[0], shape[1], shape[2], shape[3] * shape[4])
        for path in ("fast", "reference"):
            err = max_error(lambda: layer(x, mask, path=path),
                            lambda: flat(x.reshape(image), mask).reshape(shape[0], -1, *shape[2:]), [x], generator,
                            a_params=list(layer.parameters()), b_params=list(flat.parameters()))
            err = max(err, max_error(lambda: layer(x, mask, path=path), lambda: _sdpa_by_hand(layer, x, mask),
                                     [x, *layer.parameters()], generator))
            yield Trial(describe(x=x.shape, heads=heads, mask=masked, path=path), err)
