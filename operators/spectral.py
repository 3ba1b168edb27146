"""The spectral non-local family as configurations of ``NeighborAggregator``.

Zhu et al. ("Unifying nonlocal blocks for neural networks", ICCV 2021, appendix) read each
non-local block as a graph with affinity ``A`` over the positions and a graph filter
``F(A, Z)`` on ``Z = g(X)``. Here ``A`` is what a selector returns (a one-slot
:class:`~neighborhoods.Neighborhood`) and ``F`` is a
:class:`~neighborhoods.combiners.GraphFilter`; every block adds its input back
(``Y = X + norm(F)``) with a zero-initialised ``norm``, so a fresh block is the identity.
Every block takes ``out_channels`` (default C); another value adds GraphFilter's 1x1
projection shortcut, ``Y = P X + norm(F)`` (criss-cross, whose steps share weights,
projects the input first instead).

=======================  ====================================  ===========================
block                    selector (A)                          combiner (F)
=======================  ====================================  ===========================
NonLocalStage            softmax(theta phi^T)                  (A - I) Z W, BatchNorm
NonLocalStages           the same A, computed once             R stages X_r = NS_r(X_r-1, A)
DoubleAttention          softmax_c(X W_p) softmax_N(X W_q)^T   A Z W, BatchNorm
CGNL                     f(vec theta, vec phi), Nc x Nc        A^f vec(Z) W, GroupNorm
CrissCrossAttention      softmax over row + column             A X W_v, gamma, R times
SNL / gSNL               D^-1/2 (M + M^T)/2 D^-1/2             Chebyshev order 1 / 2
CayleySNL                same, sigmoid kernel                  Z W_1 + 2 (L^2 Z W_h + Z) W_2
=======================  ====================================  ===========================

The non-local block itself (``A Z W``) is :class:`operators.NonLocalBlock2d`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from neighborhoods import ChannelLinear, NeighborAggregator, Neighborhood
from neighborhoods.checks import check_bool, check_choice, check_divisible, check_int, check_tensor
from neighborhoods.combiners import CayleyFilter, GraphFilter, Stages, chebyshev
from neighborhoods.norms import ChannelBatchNorm, ChannelSoftmax, Scale, SpatialSoftmax
from neighborhoods.selectors import CompactAffinity, CrissCross, DenseAffinity
from neighborhoods.functional.taylor import EntryKernel
from neighborhoods.paths import PathChoice
from neighborhoods.selectors.compact_affinity import EntryNormalization

from .registry import Example, register

#: Tao et al.'s non-local stage filter, A - I (appendix Eq. 9)
NONLOCAL_STAGE = ((-1.0, 1.0),)
#: kernels that keep the symmetric normalisation's degrees positive
SNLKernel = Literal["exp", "sigmoid"]
SNL_KERNELS: tuple[str, ...] = get_args(SNLKernel)
_EX1D, _EX2D = (2, 8, 13), (2, 8, 5, 6)


def _channels(name: str, value: int | None, default: int) -> int:
    return check_int(name, value if value is not None else max(default, 1), minimum=1)


def _changed(name: str, value: int, default: int) -> dict[str, int]:
    """``{name: value}`` for the repr when it differs from the default, else nothing."""
    return {} if value == default else {name: value}


def _sizes(in_channels: int, name: str, value: int | None, divisor: int) -> tuple[int, int]:
    """``C`` and an inner width ``name`` (default ``C // divisor``), both checked."""
    c = check_int("in_channels", in_channels, minimum=1)
    return c, _channels(name, value, c // divisor)


class _SpectralBlock(NeighborAggregator):
    """Shared by the family: the input rank check and a repr of the channel counts."""

    spatial_dims: ClassVar[int]
    #: constructor arguments of the registry example beyond ``in_channels=8``
    example_kwargs: ClassVar[dict[str, Any]] = {}

    def _setup(self, **hyper: Any) -> None:
        """Remember the constructor's resolved hyper-parameters (for ``repr``)."""
        self.hyper = hyper

    def forward(self, x: Tensor, *, path: PathChoice | None = None) -> Tensor:
        check_tensor("x", x, ndim=2 + self.spatial_dims)
        return super().forward(x, path=path)

    def extra_repr(self) -> str:
        s = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return s + (f", path={self.path!r}" if self.path != "auto" else "")


# ---- non-local stage -----------------------------------------------------------------------
class _NonLocalStageNd(_SpectralBlock):
    """What :class:`NonLocalStage1d` and :class:`NonLocalStage2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    def __init__(self, in_channels: int, inter_channels: int | None = None, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, ci = _sizes(in_channels, "inter_channels", inter_channels, 2)
        out = _channels("out_channels", out_channels, c)
        f = {"device": device, "dtype": dtype}
        super().__init__(
            DenseAffinity(ChannelLinear(c, ci, bias=bias, **f), ChannelLinear(c, ci, bias=bias, **f)),
            GraphFilter(c, ci, out, NONLOCAL_STAGE, norm=ChannelBatchNorm(out, **f), residual=True, bias=bias, **f),
            path=path)
        self._setup(in_channels=c, inter_channels=ci, **_changed("out_channels", out, c))


# ---- non-local stages sharing one affinity ------------------------------------------------
class ReLUAfter(nn.Module):
    """``relu(norm(x))``: a residual block's output normalisation followed by a ReLU.

    Its parameters are the norm's, so a residual filter that zeroes them starts as the
    identity (``relu(0) = 0``), as the SNL authors' units (``out = relu(bn(...)) + x``) do.
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.norm(x))


class _NonLocalStagesNd(_SpectralBlock):
    """What :class:`NonLocalStages1d` and :class:`NonLocalStages2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    example_kwargs: ClassVar[dict[str, Any]] = {"stages": 2}

    def __init__(self, in_channels: int, inter_channels: int | None = None, stages: int = 2, relu: bool = False,
                 bias: bool = True, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, ci = _sizes(in_channels, "inter_channels", inter_channels, 2)
        out = _channels("out_channels", out_channels, c)
        count = check_int("stages", stages, minimum=1)
        relu = check_bool("relu", relu)
        f = {"device": device, "dtype": dtype}

        def stage(o: int) -> GraphFilter:
            norm = ChannelBatchNorm(o, **f)
            return GraphFilter(c, ci, o, NONLOCAL_STAGE, norm=ReLUAfter(norm) if relu else norm, residual=True,
                               bias=bias, **f)

        super().__init__(
            DenseAffinity(ChannelLinear(c, ci, bias=bias, **f), ChannelLinear(c, ci, bias=bias, **f)),
            Stages([stage(c) for _ in range(count - 1)] + [stage(out)]),
            path=path)
        self._setup(in_channels=c, inter_channels=ci, stages=count, **({"relu": True} if relu else {}),
                    **_changed("out_channels", out, c))


# ---- double attention ----------------------------------------------------------------------
class _DoubleAttentionNd(_SpectralBlock):
    """What :class:`DoubleAttention1d` and :class:`DoubleAttention2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    def __init__(self, in_channels: int, feature_channels: int | None = None, attention_maps: int | None = None,
                 bias: bool = True, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, cm = _sizes(in_channels, "feature_channels", feature_channels, 4)
        cn = _channels("attention_maps", attention_maps, cm)
        out = _channels("out_channels", out_channels, c)
        f = {"device": device, "dtype": dtype}
        super().__init__(
            DenseAffinity(query=nn.Sequential(ChannelLinear(c, cn, bias=bias, **f), ChannelSoftmax()),
                          key=nn.Sequential(ChannelLinear(c, cn, bias=bias, **f), SpatialSoftmax()),
                          kernel="dot", normalize="none"),
            GraphFilter(c, cm, out, norm=ChannelBatchNorm(out, **f), residual=True, bias=bias, **f),
            path=path)
        self._setup(in_channels=c, feature_channels=cm, attention_maps=cn, **_changed("out_channels", out, c))


# ---- compact generalized non-local ---------------------------------------------------------
class _CGNLNd(_SpectralBlock):
    """What :class:`CGNL1d` and :class:`CGNL2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    example_kwargs: ClassVar[dict[str, Any]] = {"groups": 2}

    def __init__(self, in_channels: int, inter_channels: int | None = None, groups: int = 1, kernel: EntryKernel = "dot",
                 order: int = 3, gamma: float = 0.5, normalize: EntryNormalization = "none",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, ci = _sizes(in_channels, "inter_channels", inter_channels, 2)
        out = _channels("out_channels", out_channels, c)
        groups = check_int("groups", groups, minimum=1)
        check_divisible("in_channels", c, "groups", groups)
        check_divisible("inter_channels", ci, "groups", groups)
        check_divisible("out_channels", out, "groups", groups)
        f = {"device": device, "dtype": dtype}
        output = ChannelLinear(ci, out, bias=False, groups=groups, **f)
        super().__init__(
            CompactAffinity(ChannelLinear(c, ci, bias=False, **f), ChannelLinear(c, ci, bias=False, **f),
                            groups=groups, kernel=kernel, order=order, gamma=gamma, normalize=normalize),
            GraphFilter(c, ci, out, output=output, norm=nn.GroupNorm(groups, out, **f), residual=True,
                        nodes="entries", **f),
            path=path)
        self._setup(in_channels=c, inter_channels=ci, groups=groups, kernel=kernel, **_changed("out_channels", out, c))


# ---- criss-cross attention -----------------------------------------------------------------
@register(family="spectral", example=Example(dict(in_channels=8), _EX2D))
class CrissCrossAttention2d(_SpectralBlock):
    """CCNet's recurrent criss-cross attention: ``X <- X + gamma A X W_v``, ``recurrence`` times.

    Huang et al. 2019 (Eqs. 1-2, recurrence Sec. 3.3): every pixel attends, with a
    softmax, to its own row and column (:class:`~neighborhoods.selectors.CrissCross`), so
    ``A = D^-1 (C . M)`` with the criss-cross mask C (Zhu et al. 2021, appendix Eqs.
    18-19); the weights are shared across the ``recurrence`` steps, and two steps connect
    every pixel with every pixel. ``gamma`` starts at 0.

    Args:
        in_channels: C.
        key_channels: channels of queries and keys (default ``out_channels // 8``).
        recurrence: R >= 1 (CCNet: 2).
        bias: whether the 1x1 projections carry a bias.
        identity_projections: no query and key maps: the affinity compares the raw input
            features, ``softmax_j(x_u . x_j)`` over the cross (``key_channels`` and
            ``out_channels`` must be ``None``).
        out_channels: channels of the output (default C). Because the R steps share their
            weights, another value projects the input first (``input_projection``, a 1x1
            map without bias) and the steps run at ``out_channels``.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2

    def __init__(self, in_channels: int, key_channels: int | None = None, recurrence: int = 2, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None, identity_projections: bool = False) -> None:
        c_in = check_int("in_channels", in_channels, minimum=1)
        if check_bool("identity_projections", identity_projections) and (key_channels, out_channels) != (None, None):
            raise ValueError(f"identity_projections=True compares the raw input channels; key_channels and "
                             f"out_channels must be None, got key_channels={key_channels}, "
                             f"out_channels={out_channels}")
        # without projections the "keys" are the input's own C channels
        c, ck = _sizes(_channels("out_channels", out_channels, c_in), "key_channels", key_channels,
                       1 if identity_projections else 8)
        steps = check_int("recurrence", recurrence, minimum=1)
        f = {"device": device, "dtype": dtype}
        qk = (None, None) if identity_projections else (ChannelLinear(c, ck, bias=bias, **f),
                                                        ChannelLinear(c, ck, bias=bias, **f))
        super().__init__(
            CrissCross(*qk),
            GraphFilter(c, c, c, output=False, norm=Scale(**f), residual=True, bias=bias, **f),
            path=path)
        self.input_projection = ChannelLinear(c_in, c, bias=False, **f) if c != c_in else None
        self.recurrence = steps
        self._setup(in_channels=c_in, key_channels=ck, recurrence=steps, **_changed("out_channels", c, c_in),
                    **({"identity_projections": True} if identity_projections else {}))

    def forward(self, x: Tensor, *, path: PathChoice | None = None) -> Tensor:
        if self.input_projection is not None:
            check_tensor("x", x, ndim=4)
            x = self.input_projection(x)
        for _ in range(self.recurrence):
            x = super().forward(x, path=path)
        return x

    def step_neighborhoods(self, x: Tensor) -> list[Neighborhood]:
        """The criss-cross neighbourhood of every one of the ``recurrence`` steps on ``x``.

        Step ``r`` selects on the output of step ``r - 1`` (the weights are shared, the
        features are not), so the pixels one query reaches after R steps are the support of
        the product ``A_R ... A_1`` of the steps' dense affinities (:meth:`Neighborhood.to_dense`):
        a cross after one step, every pixel after two. ``neighborhood(x)`` is the first.
        """
        check_tensor("x", x, ndim=4)
        if self.input_projection is not None:
            x = self.input_projection(x)
        out = []
        for step in range(self.recurrence):
            out.append(self.selector(x))
            if step + 1 < self.recurrence:
                x = super().forward(x)
        return out


# ---- SNL, gSNL -----------------------------------------------------------------------------
class _SNLNd(_SpectralBlock):
    """What :class:`SNL1d` and :class:`SNL2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    def __init__(self, in_channels: int, inter_channels: int | None = None, order: int = 1, kernel: SNLKernel = "exp",
                 bias: bool = False, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, ci = _sizes(in_channels, "inter_channels", inter_channels, 2)
        out = _channels("out_channels", out_channels, c)
        order = check_int("order", order, minimum=1)
        f = {"device": device, "dtype": dtype}
        super().__init__(
            _symmetric_affinity(c, ci, check_choice("kernel", kernel, SNL_KERNELS), bias, f),
            GraphFilter(c, ci, out, chebyshev(order), norm=ChannelBatchNorm(out, **f), residual=True, bias=bias, **f),
            path=path)
        self._setup(in_channels=c, inter_channels=ci, order=order, kernel=kernel, **_changed("out_channels", out, c))


def _symmetric_affinity(c: int, ci: int, kernel: str, bias: bool, factory: dict) -> DenseAffinity:
    return DenseAffinity(ChannelLinear(c, ci, bias=bias, **factory), ChannelLinear(c, ci, bias=bias, **factory),
                         kernel=kernel, normalize="symmetric")


# ---- Cayley SNL ----------------------------------------------------------------------------
class _CayleySNLNd(_SpectralBlock):
    """What :class:`CayleySNL1d` and :class:`CayleySNL2d` share; ``spatial_dims`` (1 or 2) picks the layout."""

    def __init__(self, in_channels: int, inter_channels: int | None = None, order: int = 1, bias: bool = False,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 path: PathChoice = "auto", *, out_channels: int | None = None) -> None:
        c, ci = _sizes(in_channels, "inter_channels", inter_channels, 2)
        out = _channels("out_channels", out_channels, c)
        if check_int("order", order, minimum=1) != 1:
            raise ValueError(f"order must be 1 (the first-order Cayley filter of Eq. 22), got order={order}")
        f = {"device": device, "dtype": dtype}
        super().__init__(
            _symmetric_affinity(c, ci, "sigmoid", bias, f),
            CayleyFilter(c, ci, out, norm=ChannelBatchNorm(out, **f), residual=True, bias=bias, **f),
            path=path)
        self._setup(in_channels=c, inter_channels=ci, **_changed("out_channels", out, c))


class NonLocalStage1d(_NonLocalStageNd):
    """``Y = X + BN(W sum_j A_ij (Z_j - Z_i))``, ``A = softmax(theta(X) phi(X)^T)``.

    Arguments as :class:`NonLocalStage2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class NonLocalStage2d(_NonLocalStageNd):
    """``Y = X + BN(W sum_j A_ij (Z_j - Z_i))``, ``A = softmax(theta(X) phi(X)^T)``.

    The non-local stage of Tao et al. 2018 (their Eq. 11), i.e. the first-order Chebyshev
    filter with tied weights ``F = A Z W - Z W`` (Zhu et al. 2021, appendix Eqs. 6-11),
    with the embedded-Gaussian affinity and the BatchNorm-after-W of Wang et al. 2018.

    Args:
        in_channels: C.
        inter_channels: channels of theta, phi, g (default ``C // 2``).
        bias: whether the 1x1 projections carry a bias.
        out_channels: channels of the output (default C; see the module docstring).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class NonLocalStages1d(_NonLocalStagesNd):
    """``stages`` non-local stages sharing one affinity ``A = softmax(theta(X_0) phi(X_0)^T)``.

    Arguments as :class:`NonLocalStages2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class NonLocalStages2d(_NonLocalStagesNd):
    """``stages`` non-local stages sharing one affinity ``A = softmax(theta(X_0) phi(X_0)^T)``.

    Tao et al. 2018's nonlocal stage as the spectral non-local paper's code builds its NS
    (``Stage(nl_type='ns', stage_num=R)``): the affinity is computed once, from the input
    ``X_0``, and ``R`` units ``X_r = X_{r-1} + BN_r(W_r sum_j A_ij (Z_j - Z_i))``,
    ``Z = g_r(X_{r-1})``, each with its own ``g``, ``W`` and BatchNorm, apply it in turn
    (Zhu et al. 2021, appendix Eqs. 6-9, the filter ``A Z W - Z W``). The selector is a
    :class:`~neighborhoods.selectors.DenseAffinity`, the combiner a
    :class:`~neighborhoods.combiners.Stages` of :class:`~neighborhoods.combiners.GraphFilter`
    s, so ``A`` is built once per forward; ``stages=1`` is :class:`NonLocalStage2d`.

    Args:
        in_channels: C.
        inter_channels: channels of theta, phi and every stage's g (default ``C // 2``).
        stages: R >= 1.
        relu: ``X_r = X_{r-1} + relu(BN_r(...))``, as the authors' ``NSUnit`` (whose filter
            ``W Z - W A Z`` is this one with ``W`` negated); default ``False``, Eq. 9 as printed.
        bias: whether the 1x1 projections carry a bias (the authors' code: none).
        out_channels: channels of the output (default C): the last stage's (see the module
            docstring); the earlier stages keep C.

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class DoubleAttention1d(_DoubleAttentionNd):
    """``Y = X + BN(W A Z)``, ``A = softmax_c(X W_v) softmax_N(X W_b)^T``, ``Z = X W_a``.

    Arguments as :class:`DoubleAttention2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class DoubleAttention2d(_DoubleAttentionNd):
    """``Y = X + BN(W A Z)``, ``A = softmax_c(X W_v) softmax_N(X W_b)^T``, ``Z = X W_a``.

    The double-attention block of Chen et al. 2018 (Eqs. 3-4: gather ``c_n`` global
    descriptors ``G = Z^T softmax_N(B)``, distribute them with ``softmax_c(V)``), read as
    ``A Z W`` (Zhu et al. 2021, appendix Eqs. 12-13). ``A`` is rank ``c_n`` and row
    stochastic without any degree normalisation; the fast path evaluates ``Q (K^T Z)``,
    the paper's own order, the reference path the dense ``N x N`` ``A``.

    Args:
        in_channels: C.
        feature_channels: ``c_m``, channels of the gathered features Z (default ``C // 4``).
        attention_maps: ``c_n``, gathering/distributing maps (default ``feature_channels``).
        bias: whether the 1x1 projections carry a bias.
        out_channels: channels of the output (default C; see the module docstring).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class CGNL1d(_CGNLNd):
    """``Y = X + GN(W vec^-1(A^f vec Z))`` over (channel, position) entries, per channel group.

    Arguments as :class:`CGNL2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class CGNL2d(_CGNLNd):
    """``Y = X + GN(W vec^-1(A^f vec Z))`` over (channel, position) entries, per channel group.

    The compact generalized non-local block of Yue et al. 2018 (Eqs. 3-4, grouping Sec.
    3.4): ``A^f = f(vec theta(X), vec phi(X))`` is ``Nc x Nc`` per group (Zhu et al. 2021,
    appendix Eqs. 14-17). The default path uses the separable (Taylor) form and never
    builds ``A^f``; ``path='reference'`` builds it. ``W`` is a grouped 1x1 convolution and
    the GroupNorm after it starts at zero.

    Args:
        in_channels: C (divisible by ``groups``).
        inter_channels: channels of theta, phi, g (default ``C // 2``, divisible by ``groups``).
        groups: channel groups.
        kernel, order, gamma, normalize: see :class:`~neighborhoods.selectors.CompactAffinity`.
            ``normalize="none"`` (the default) is Eq. 16 as printed and the authors' code
            (their optional ``use_scale`` divides by ``sqrt(cN)``, which no option here
            reproduces); ``"mean"`` divides ``A^f`` by the ``cN`` entries of a group.
        out_channels: channels of the output (default C, divisible by ``groups``; see the
            module docstring).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class SNL1d(_SNLNd):
    """``Y = X + BN(sum_k T_k(A) Z W_k)`` with the symmetric ``A = D^-1/2 (M + M^T)/2 D^-1/2``.

    Arguments as :class:`SNL2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class SNL2d(_SNLNd):
    """``Y = X + BN(sum_k T_k(A) Z W_k)`` with the symmetric ``A = D^-1/2 (M + M^T)/2 D^-1/2``.

    The spectral non-local block of Zhu et al. 2021 (Sec. 4): order 1 gives SNL,
    ``F = Z W_1 + A Z W_2``; order 2 the generalised gSNL, adding ``(2 A^2 Z - Z) W_3``.
    ``M = f(theta(X), phi(X))`` with a positive kernel (default the embedded Gaussian).

    Args:
        in_channels: C.
        inter_channels: channels of theta, phi, g (default ``C // 2``).
        order: Chebyshev order K >= 1 (one ``W_k`` per term ``T_0 .. T_K``).
        kernel: ``'exp'`` or ``'sigmoid'``.
        bias: whether the 1x1 projections carry a bias.
        out_channels: channels of the output (default C; see the module docstring).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2


class CayleySNL1d(_CayleySNLNd):
    """``Y = X + BN(Z W_1 + 2 (L^2 Z W_h + Z) W_2)``, ``L = I - A`` (Zhu et al. 2021, appendix Eq. 23).

    Arguments as :class:`CayleySNL2d`; the input is a sequence.

    Shape:
        x: ``(B, C, N)`` -> ``(B, out_channels, N)``.
    """

    spatial_dims = 1


class CayleySNL2d(_CayleySNLNd):
    """``Y = X + BN(Z W_1 + 2 (L^2 Z W_h + Z) W_2)``, ``L = I - A`` (Zhu et al. 2021, appendix Eq. 23).

    The first-order Cayley filter (appendix Eqs. 20-22) on the symmetric affinity of a
    sigmoid kernel, ``A = D^-1/2 (M + M^T)/2 D^-1/2``, ``M = sigmoid(theta phi^T)``.

    Args:
        in_channels: C.
        inter_channels: channels of theta, phi, g (default ``C // 2``).
        order: Cayley order; only 1, the form the appendix defines (Eq. 22), is available.
        bias: whether the 1x1 projections carry a bias.
        out_channels: channels of the output (default C; see the module docstring).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    spatial_dims = 2



for _cls, _old in ((NonLocalStage1d, "nonlocal_stage1d"), (NonLocalStage2d, "nonlocal_stage2d"),
                   (NonLocalStages1d, "nonlocal_stages1d"), (NonLocalStages2d, "nonlocal_stages2d"),
                   (DoubleAttention1d, None), (DoubleAttention2d, None), (CGNL1d, None), (CGNL2d, None),
                   (SNL1d, None), (SNL2d, None), (CayleySNL1d, None), (CayleySNL2d, None)):
    _example = Example(dict(in_channels=8, **_cls.example_kwargs), _EX1D if _cls.spatial_dims == 1 else _EX2D)
    register(_cls, family="spectral", example=_example, aliases=[_old] if _old else [])
    if _cls in (SNL1d, SNL2d):  # gSNL: the second-order Chebyshev filter
        register(_cls, family="spectral", example=_example, variant="order2", aliases=[f"gsnl{_cls.spatial_dims}d"],
                 order=2)

# DESIGN.md's family names, for images (the common case), as torch names its 2-D layers' defaults
NonLocalStage, NonLocalStages, DoubleAttention, CGNL, CrissCrossAttention, SNL, CayleySNL = (
    NonLocalStage2d, NonLocalStages2d, DoubleAttention2d, CGNL2d, CrissCrossAttention2d, SNL2d, CayleySNL2d)
