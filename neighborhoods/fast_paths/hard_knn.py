"""Hard k-NN + per-slot weights (ConvNN, ``(HardKNN, Conv1D)``) without the explicit Neighborhood.

Two twins share the pair: the location k-NN that is a fixed window runs as ``F.conv{1,2}d``
(:func:`~.convolution.spatial_knn_conv`); every other configuration (content similarity,
hybrid, sampled candidates, strided queries) runs as :func:`knn_gather_linear`: the
selector's own :meth:`~neighborhoods.selectors.HardKNN.select` (so the same neighbours, and
the same random draws), then one gather of the k neighbours' feature vectors into
``(B, Nq, k C)`` and one matrix product with the weight laid out as ``(C_out, k C)``.

That is steps 3-4 of the ConvNN poster's Algorithm 1 as one GEMM: the reference path's
``einsum`` over ``(slot, channel)`` computes the same sums in another order (equal up to
round-off). The backward pass is the GEMM's and the gather's (a scatter-add into the tokens);
the indices carry no gradient, as on the reference path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..combiners.conv1d import Conv1D
from ..functional.positions import padded_to_image_index
from ..functional.gather_linear import gather_linear
from ..functional.stages import stage
from ..functional.transforms import under_transform
from ..selectors.hard_knn import HardKNN
from ..tokens import from_tokens
from .convolution import _conv_name, location_why_not, spatial_knn_conv
from .registry import fast_path

#: the kernel name :meth:`~neighborhoods.NeighborAggregator.fast_path_name` reports for content k-NN
GATHER_LINEAR = "blocked k-NN + gather + F.linear"


def _is_window(selector: HardKNN, combiner: Conv1D, x: Tensor | None = None) -> bool:
    """Whether the k nearest positions are a fixed window (a convolution computes the layer)."""
    # the cheap attribute test first: location_why_not builds its sentence when it says no
    return (selector.space == "positions" and selector.metric == "chebyshev" and selector.order == "index"
            and location_why_not(selector, combiner, x) is None)


def hard_knn_why_not(selector: HardKNN, combiner: Conv1D, x: Tensor | None = None) -> str | None:
    if x is not None and x.ndim != 2 + selector.ndim:  # the reference path names the error
        return f"x has {x.ndim} dimensions, not the {2 + selector.ndim} of a {selector.ndim}-D input"
    if _is_window(selector, combiner, x):
        return None
    if selector.k != combiner.num_slots:
        return f"the selector's k={selector.k} differs from the Conv1D weight's {combiner.num_slots} slots"
    if combiner.groups != 1:
        return f"a grouped Conv1D (groups={combiner.groups}) is not covered"
    return None


def _kernel(selector: HardKNN, combiner: Conv1D) -> str:
    return _conv_name(selector, combiner) if _is_window(selector, combiner) else GATHER_LINEAR


#: gathered entries ``B Nq k C`` from which the Conv1d over the neighbours runs blockwise
#: (:func:`~neighborhoods.functional.gather_linear.gather_linear`); below it the autograd Function's
#: overhead outweighs the page faults it saves. ConvNN2d B 8, C 64, k 9, same process, 2-core AMD
#: EPYC, blockwise / whole: 8x8 (295k entries) forward 1.16x, f+b 1.08x; 16x16 (1.2M) 1.02x / 0.99x;
#: 32x32 (4.7M) 0.91x-0.98x / 0.78x-1.15x over five runs; 64x64 0.82x-0.87x / 0.83x-0.89x.
BLOCKED_MIN_ELEMENTS = 1 << 21


@fast_path(HardKNN, Conv1D, why_not=hard_knn_why_not, kernel=_kernel)
def hard_knn_conv(selector: HardKNN, combiner: Conv1D, x: Tensor) -> Tensor:
    """The location window as a convolution, any other configuration as :func:`knn_gather_linear`."""
    if _is_window(selector, combiner, x):
        with stage("combining"):  # the window is implicit: the convolution is all the work
            return spatial_knn_conv(selector, combiner, x)
    return knn_gather_linear(selector, combiner, x)


def knn_gather_linear(selector: HardKNN, combiner: Conv1D, x: Tensor) -> Tensor:
    """``y_q = bias + W [v_{n(q,1)}; ...; v_{n(q,k)}]`` with ``W`` the ``(C_out, k C_in)`` weight.

    Shape:
        x: ``(B, C, *spatial)`` -> ``(B, C_out, *query_shape)``.
    """
    spatial = tuple(x.shape[2:])
    query_shape = selector.output_shape(spatial)
    b, c = x.shape[:2]
    tokens = x.flatten(2).transpose(1, 2).contiguous()  # (b, n, c): scored, then read row by row
    n = tokens.shape[1]
    if selector.padding:
        to_image, inside = padded_to_image_index(spatial, selector.padding, device=x.device)
        chosen = selector.select(x, inside, tokens)
        index, valid = to_image[chosen], inside[chosen]
    else:  # the padded grid is the image: indices are pixels, all valid
        index, valid = selector.select(x, None, tokens), None
    q, k = index.shape[1:]
    weight = combiner.weight.flatten(2).transpose(1, 2).reshape(combiner.out_channels, k * c)  # (o, s c)
    # one index_select of whole rows over the flattened batch (its backward: an index_add into the tokens)
    with stage("gathering"):
        flat = (index + torch.arange(0, b * n, n, device=x.device).view(b, 1, 1)).view(-1)
    if valid is None and x.device.type == "cpu" and b * q * k * c >= BLOCKED_MIN_ELEMENTS and not under_transform(x):
        # gathered and multiplied a block of queries at a time (gather_linear.py labels each block's two stages)
        y = gather_linear(tokens.view(b * n, c), flat, weight, combiner.bias).view(b, q, combiner.out_channels)
        return from_tokens(y, query_shape)
    with stage("gathering"):
        gathered = tokens.view(b * n, c).index_select(0, flat).view(b, q, k * c)
        if valid is not None:  # a padding token reads as zero (where, not a product: NaN stays out)
            mask = valid.expand(b, -1, -1).unsqueeze(-1).expand(b, q, k, c).reshape(b, q, k * c)
            gathered = torch.where(mask, gathered, gathered.new_zeros(()))
    with stage("combining"):
        y = F.linear(gathered, weight, combiner.bias)  # (b, q, o)
    return from_tokens(y, query_shape)
