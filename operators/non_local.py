"""The non-local block (Wang et al. 2018) as a NeighborAggregator plus its residual.

``z = W(y) + x`` with ``y_i = (1 / C(x)) sum_j f(x_i, x_j) g(x_j)`` (Eqs. 1 and 6). The
selector is the pairwise function ``f`` with its normalisation ``C`` (a ``DenseAffinity``
over ``theta(x)``, ``phi(x)``), the combiner a ``WeightedMean`` with ``value=g``,
``output=W``. The four instantiations of Sec. 3.2:

==================  ===============================  ==========  =========================
mode                f(x_i, x_j)                      C(x)        selector
==================  ===============================  ==========  =========================
gaussian            exp(x_i^T x_j)                   sum_j f     softmax, theta = phi = id
embedded_gaussian   exp(theta(x_i)^T phi(x_j))       sum_j f     softmax (= self-attention)
dot_product         theta(x_i)^T phi(x_j)            N           mean
concatenation       ReLU(w_f^T [theta_i, phi_j])     N           ConcatAffinity
==================  ===============================  ==========  =========================

``sub_sample`` max-pools the keys and values (``phi`` and ``g``) by 2 per axis (an axis of
length 1 is left unpooled, so 1xW, Hx1 and 1x1 inputs work: :mod:`operators._subsample`); ``W`` is a
1x1 convolution followed by BatchNorm whose scale and shift start at zero (without
``bn_layer``, the convolution starts at zero), so a fresh block is the identity.

In the spectral view (Zhu et al. 2021, appendix Eqs. 2-5) the block is the plain graph
filter ``X + W(A g(X))``: the combiner is a residual
:class:`~neighborhoods.combiners.GraphFilter` with ``g`` as its value map and ``W`` as its
output map, which also owns the residual and the zero start. ``out_channels != C`` adds
GraphFilter's 1x1 projection shortcut, ``z = W(y) + P x``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from neighborhoods import NeighborAggregator
from neighborhoods.checks import check_choice, check_int, check_tensor
from neighborhoods.combiners import GraphFilter
from neighborhoods.lifting import lift
from neighborhoods.selectors import ConcatAffinity, DenseAffinity
from neighborhoods.paths import PathChoice

from ._subsample import SubSample
from .attention import token_queries
from .registry import Example, register

#: Wang et al.'s four pairwise functions (Sec. 3.2)
NonLocalMode = Literal["embedded_gaussian", "gaussian", "dot_product", "concatenation"]
MODES: tuple[str, ...] = get_args(NonLocalMode)
_LAYERS = {1: (nn.Conv1d, nn.BatchNorm1d), 2: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv3d, nn.BatchNorm3d)}
#: sub_sample's pooling window: 2 per axis; the video model pools space only, (1, 2, 2) (Wang et al. 2018, Sec. 4.1)
_SUB_SAMPLE = {1: 2, 2: 2, 3: (1, 2, 2)}


def _load_conv_concat_project(module: nn.Module, state: dict, prefix: str, *args: object) -> None:
    """Load hook: ``concat_project.0.weight`` ``(1, 2I, 1, 1)`` (a 1x1 conv, as Wang et al.'s
    reference implementation saves it) becomes our ``concat_project.weight`` ``(1, 2I)``."""
    key = prefix + "concat_project.0.weight"
    if key not in state or getattr(module, "mode", None) != "concatenation":
        return
    value = state.pop(key)
    expected = (1, 2 * module.inter_channels, 1, 1)
    if tuple(value.shape) != expected:
        raise ValueError(f"state_dict entry {key!r} must have shape {expected} (a 1x1 conv from 2 * inter_channels "
                         f"= {2 * module.inter_channels} channels to 1), got {tuple(value.shape)}")
    if prefix + "concat_project.weight" in state:
        raise ValueError(f"state_dict holds both {key!r} and {prefix + 'concat_project.weight'!r}: give one")
    state[prefix + "concat_project.weight"] = value.reshape(1, -1)


class _NonLocalBlockNd(NeighborAggregator):
    """What :class:`NonLocalBlock1d` and :class:`NonLocalBlock2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    spatial_dims: ClassVar[int]
    #: ``stride`` / ``padding`` are a convolution's: queries on its output grid (operators.swap reads this)
    strided_queries: ClassVar[bool] = True

    def __init__(self, in_channels: int, inter_channels: int | None = None, mode: NonLocalMode = "embedded_gaussian",
                 sub_sample: bool = True, bn_layer: bool = True, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None, path: PathChoice = "auto", *, out_channels: int | None = None,
                 stride: int | tuple[int, ...] = 1, padding: int | tuple[int, ...] | str | None = None) -> None:
        in_channels = check_int("in_channels", in_channels, minimum=1)
        out = check_int("out_channels", in_channels if out_channels is None else out_channels, minimum=1)
        inter = check_int("inter_channels", inter_channels if inter_channels is not None else max(in_channels // 2, 1),
                          minimum=1)
        mode = check_choice("mode", mode, MODES)
        queries = token_queries(type(self).__name__, self.spatial_dims, stride, padding)
        conv, bn = _LAYERS[self.spatial_dims]
        factory = {"device": device, "dtype": dtype}

        def pooled(m: nn.Module) -> nn.Module:
            return nn.Sequential(m, SubSample(self.spatial_dims, _SUB_SAMPLE[self.spatial_dims])) if sub_sample else m

        g = pooled(conv(in_channels, inter, 1, **factory))
        if mode == "gaussian":
            pool = SubSample(self.spatial_dims, _SUB_SAMPLE[self.spatial_dims])
            theta, phi = nn.Identity(), (pool if sub_sample else nn.Identity())
        else:
            theta, phi = conv(in_channels, inter, 1, **factory), pooled(conv(in_channels, inter, 1, **factory))
        w = (nn.Sequential(conv(inter, out, 1, **factory), bn(out, **factory)) if bn_layer
             else conv(inter, out, 1, **factory))
        if mode == "concatenation":
            selector = ConcatAffinity(inter, theta, phi, queries=queries, **factory)
        else:
            selector = DenseAffinity(theta, phi, kernel="dot", normalize="mean" if mode == "dot_product" else "softmax",
                                     queries=queries)
        super().__init__(selector, GraphFilter(in_channels, inter, out, value=g, output=w, residual=True, **factory),
                         path=path)
        self.in_channels, self.inter_channels, self.out_channels, self.mode = in_channels, inter, out, mode
        self.sub_sample, self.bn_layer = bool(sub_sample), bool(bn_layer)
        # the reference implementation's concat_project is Sequential(Conv2d(2I, 1, 1), ReLU): accept
        # its `concat_project.0.weight` (1, 2I, 1, 1) too
        self.register_load_state_dict_pre_hook(_load_conv_concat_project)
        # Wang et al.'s names for the four embeddings, held by the block (so they are its state_dict
        # keys and functional_call / EMA act on them); the selector and the combiner read them from here
        for part, name, public in ((self.selector, "query", "theta"), (self.selector, "key", "phi"),
                                   (self.combiner, "value", "g"), (self.combiner, "output", "W"),
                                   (self.combiner, "shortcut", "shortcut")):
            lift(part, name, self, public)
        if mode == "concatenation":
            lift(self.selector, "concat_project", self)

    def forward(self, x: Tensor, *, path: PathChoice | None = None) -> Tensor:
        check_tensor("x", x, ndim=2 + self.spatial_dims)
        return super().forward(x, path=path)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, inter_channels={self.inter_channels}, mode={self.mode!r}"
        s += f", sub_sample={self.sub_sample}, bn_layer={self.bn_layer}"
        if self.out_channels != self.in_channels:
            s += f", out_channels={self.out_channels}"
        if self.selector.queries is not None:
            s += f", {self.selector.queries.describe()}"
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


class NonLocalBlock1d(_NonLocalBlockNd):
    """The non-local block on (B, C, N) (Wang et al. 2018, Eqs. 1-6); see the module docstring.

    Arguments as :class:`NonLocalBlock2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class NonLocalBlock2d(_NonLocalBlockNd):
    """The non-local block on (B, C, H, W) (Wang et al. 2018, Eqs. 1-6); see the module docstring.

    Args:
        in_channels: C.
        inter_channels: channels of theta, phi, g (default ``C // 2``).
        mode: one of :data:`MODES`.
        sub_sample: max-pool keys and values by 2 (axes of length 1 are not pooled).
        bn_layer: ``W`` = conv + BatchNorm (zero-initialised BN) instead of a zero conv.
        out_channels: channels of the output (default C); another value adds a 1x1
            projection of the input on the residual path, ``z = W(y) + P x``.
        stride, padding: a convolution's, for the output grid: queries (and the residual) are
            the pixels ``g * stride``, keys stay every pixel (:class:`~neighborhoods.query_grid.QueryGrid`);
            ``padding`` must be 0 or None (a query is one token).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H_out, W_out)``, ``H_out = floor((H - 1) / stride) + 1``.
    """

    spatial_dims = 2


register(NonLocalBlock1d, family="nonlocal", example=Example(dict(in_channels=4), (2, 4, 10)), aliases=["nonlocal1d"])
register(NonLocalBlock2d, family="nonlocal", example=Example(dict(in_channels=4), (2, 4, 6, 6)), aliases=["nonlocal2d"])
for _mode in MODES[1:]:
    register(NonLocalBlock2d, family="nonlocal", example=Example(dict(in_channels=4), (2, 4, 6, 6)), variant=_mode,
             aliases=[f"nonlocal2d_{_mode}"], mode=_mode)
