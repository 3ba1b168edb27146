"""The spectral non-local family equals the appendix formulas of Zhu et al. 2021.

Each check builds a block with random parameters (normalisation included, BatchNorm in
eval mode, so the zero initialisation does not hide the filter) and compares its output
and gradients with a direct dense-matrix computation of the formula, written here from
the appendix, in token form: ``X`` is ``(B, N, C)``, every 1x1 projection ``X W^T + b``.
Where the block has a fast path, both of its paths are compared with the formula.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from operators import (CayleySNL1d, CayleySNL2d, CGNL1d, CGNL2d, CrissCrossAttention2d, DoubleAttention1d,
                       DoubleAttention2d, NonLocalBlock1d, NonLocalBlock2d, NonLocalStage1d, NonLocalStage2d,
                       NonLocalStages1d, NonLocalStages2d, SNL1d, SNL2d)

from .base import DEFAULT_TOLERANCE, Trial, describe, max_error, randn, theorem

SHAPES = [(2, 6, 9), (1, 6, 3, 4), (2, 6, 4, 4)]  # (B, C, *spatial): a sequence and two grids
ND = {1: (NonLocalStage1d, DoubleAttention1d, SNL1d, CayleySNL1d, CGNL1d, NonLocalBlock1d),
      2: (NonLocalStage2d, DoubleAttention2d, SNL2d, CayleySNL2d, CGNL2d, NonLocalBlock2d)}


# ---- the direct formulas' building blocks -----------------------------------------------------
def randomize(layer: nn.Module, generator: torch.Generator, dtype: torch.dtype) -> nn.Module:
    """Random parameters and BatchNorm statistics, eval mode: every term of the block is live."""
    layer.to(dtype).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=dtype))
        for name, b in layer.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.3 * torch.randn(b.shape, generator=generator, dtype=dtype))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=generator, dtype=dtype))
    return layer


def tokens(x: Tensor) -> Tensor:
    """``(B, C, *spatial) -> (B, N, C)``."""
    return x.flatten(2).transpose(1, 2)


def linear(m: nn.Module, t: Tensor) -> Tensor:
    """A 1x1 projection (ChannelLinear or a 1x1 conv) on tokens: ``t W^T + b``."""
    w = m.weight.reshape(m.weight.shape[0], -1)
    return t @ w.T + (m.bias if m.bias is not None else 0)


def batch_norm(bn: nn.Module, t: Tensor) -> Tensor:
    """Eval-mode BatchNorm on tokens: ``(t - mean) / sqrt(var + eps) * weight + bias``."""
    return (t - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def group_norm(gn: nn.GroupNorm, y: Tensor) -> Tensor:
    """GroupNorm on ``(B, C, N)``, over each group's channels and positions."""
    b, c, n = y.shape
    g = y.reshape(b, gn.num_groups, -1)
    g = (g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + gn.eps)
    return g.reshape(b, c, n) * gn.weight[:, None] + gn.bias[:, None]


def symmetric(m: Tensor) -> Tensor:
    """SNL's affinity ``D^-1/2 M_hat D^-1/2``, ``M_hat = (M + M^T)/2``, D the degrees of M_hat."""
    m_hat = (m + m.transpose(-1, -2)) / 2
    d = torch.diag_embed(m_hat.sum(-1) ** -0.5)
    return d @ m_hat @ d


def residual(x: Tensor, f: Tensor) -> Tensor:
    """``X + F`` back in the input's channels-first shape."""
    return x + f.transpose(1, 2).reshape(x.shape)


def _trials(layer: nn.Module, x: Tensor, direct: Callable[[], Tensor], generator: torch.Generator,
            paths: tuple[str, ...] = ("reference",), **shapes) -> Iterator[Trial]:
    wrt = [x, *layer.parameters()]
    for path in paths:
        err = max_error(lambda path=path: layer(x, path=path), direct, wrt, generator)
        yield Trial(describe(x=x.shape, path=path, **shapes), err)


def _blocks(dim_index: int, generator: torch.Generator, dtype: torch.dtype, **kwargs):
    """(layer, x) for every shape, the layer being ``ND[ndim][dim_index]``."""
    for shape in SHAPES:
        layer = randomize(ND[len(shape) - 2][dim_index](shape[1], **kwargs), generator, dtype)
        yield layer, randn(generator, *shape, dtype=dtype)


# ---- theorems -----------------------------------------------------------------------------------
def _max_pool(t: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """Tokens max-pooled by 2 on every spatial axis (the non-local block's ``sub_sample``)."""
    grid = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *spatial)
    pool = torch.nn.functional.max_pool1d if len(spatial) == 1 else torch.nn.functional.max_pool2d
    return tokens(pool(grid, 2))


@theorem("spectral.nonlocal", "NonLocalBlock = X + BN(A Z W), A = D_M^-1 M, M = exp(theta phi^T) (appendix "
         "Eqs. 2-5), with and without max-pooled keys and values, both paths")
def nonlocal_block(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for sub_sample in (False, True):
        for layer, x in _blocks(5, generator, dtype, inter_channels=3, sub_sample=sub_sample):
            def direct(layer=layer, x=x, sub_sample=sub_sample) -> Tensor:
                t, spatial = tokens(x), tuple(x.shape[2:])
                conv = [m[0] if isinstance(m, nn.Sequential) else m for m in (layer.phi, layer.g)]  # no pooling
                keys, z = linear(conv[0], t), linear(conv[1], t)
                if sub_sample:
                    keys, z = _max_pool(keys, spatial), _max_pool(z, spatial)
                m = torch.exp(linear(layer.theta, t) @ keys.transpose(1, 2))
                a = m / m.sum(-1, keepdim=True)  # D_M^-1 M, N x N (or N x N/2^d pooled)
                return residual(x, batch_norm(layer.W[1], linear(layer.W[0], a @ z)))

            yield from _trials(layer, x, direct, generator, ("reference", "fast"), sub_sample=sub_sample)


@theorem("spectral.nonlocal_stage", "NonLocalStage = X + BN(sum_j f(X_i,X_j)(Z_j - Z_i) W / sum_j f(X_i,X_j)) "
         "(appendix Eq. 11), both paths")
def nonlocal_stage(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer, x in _blocks(0, generator, dtype, inter_channels=3):
        sel, comb = layer.selector, layer.combiner

        def direct(layer=layer, x=x, sel=sel, comb=comb) -> Tensor:
            t = tokens(x)
            f = torch.exp(linear(sel.query, t) @ linear(sel.key, t).transpose(1, 2))
            z = linear(comb.value, t)
            diff = z.unsqueeze(1) - z.unsqueeze(2)  # [b, i, j] = Z_j - Z_i
            y = torch.einsum("bij,bijc->bic", f, diff) / f.sum(-1, keepdim=True)
            return residual(x, batch_norm(comb.norm, linear(comb.output, y)))

        yield from _trials(layer, x, direct, generator, ("reference", "fast"))


@theorem("spectral.nonlocal_stages", "NonLocalStages: A computed once from X_0, then X_r = X_{r-1} + "
         "[relu] BN_r(sum_j A_ij (Z_j - Z_i) W_r), Z = g_r(X_{r-1}), for r = 1..R (Tao et al. 2018's stage; "
         "the SNL code's NS)")
def nonlocal_stages(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape, stages, relu in [((2, 6, 9), 2, False), ((1, 6, 3, 4), 3, True), ((2, 6, 4, 4), 2, False)]:
        cls = NonLocalStages1d if len(shape) == 3 else NonLocalStages2d
        layer = randomize(cls(shape[1], 3, stages=stages, relu=relu), generator, dtype)
        x = randn(generator, *shape, dtype=dtype)

        def direct(layer=layer, x=x, relu=relu) -> Tensor:
            t = tokens(x)
            a = torch.softmax(linear(layer.selector.query, t) @ linear(layer.selector.key, t).transpose(1, 2), -1)
            for stage in layer.combiner.stages:
                z = linear(stage.value, t)
                f = batch_norm(stage.norm.norm if relu else stage.norm, linear(stage.output, a @ z - z))
                t = t + (torch.relu(f) if relu else f)
            return t.transpose(1, 2).reshape(x.shape)

        yield from _trials(layer, x, direct, generator, stages=stages, relu=relu)


@theorem("spectral.double_attention", "DoubleAttention = X + BN(A Z W), A = softmax_c(X W_v) softmax_N(X W_b)^T "
         "(appendix Eqs. 12-13), both paths")
def double_attention(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer, x in _blocks(1, generator, dtype, feature_channels=3, attention_maps=2):
        sel, comb = layer.selector, layer.combiner

        def direct(layer=layer, x=x, sel=sel, comb=comb) -> Tensor:
            t = tokens(x)
            distribute = linear(sel.query[0], t).softmax(-1)  # over the c_n maps, at each position
            gather = linear(sel.key[0], t).softmax(1)  # over positions, for each map
            a = distribute @ gather.transpose(1, 2)
            return residual(x, batch_norm(comb.norm, linear(comb.output, a @ linear(comb.value, t))))

        yield from _trials(layer, x, direct, generator, ("reference", "fast"))


def _cgnl_kernel(a: Tensor, b: Tensor, kernel: str, order: int, gamma: float) -> Tensor:
    """The ``Nc x Nc`` matrix of CGNL's kernel on entries: ``a_u b_v`` or the truncated Gaussian."""
    ab = a[..., :, None] * b[..., None, :]
    if kernel == "dot":
        return ab
    decay = torch.exp(-gamma * (a[..., :, None] ** 2 + b[..., None, :] ** 2))
    return decay * sum((2 * gamma * ab) ** p / float(math.factorial(p)) for p in range(order + 1))


CGNL_CASES = [dict(groups=1, kernel="dot", normalize="mean"), dict(groups=2, kernel="dot", normalize="none"),
              dict(groups=2, kernel="gaussian", order=3, normalize="mean"),
              dict(groups=1, kernel="gaussian", order=2, gamma=0.3, normalize="row")]


#: float32 bound of CGNL's reference path: this many times the explicit formula's own float32 error ...
CGNL_FLOAT32_FACTOR = 16.0
#: ... but never looser than this, so a wrong path still fails
CGNL_FLOAT32_CAP = 1e-2


def _cgnl_float32_trials(layer: nn.Module, x: Tensor, direct: Callable[..., Tensor], generator: torch.Generator,
                         **case) -> Iterator[Trial]:
    """Both paths in float32 against the explicit formula in float64 (see :func:`cgnl` for the bounds)."""
    layer64, x64 = copy.deepcopy(layer).double(), x.detach().double().requires_grad_(True)
    truth = lambda: direct(x64, layer64.selector, layer64.combiner)  # noqa: E731
    # a layer and its float64 copy hold distinct tensors: gradients are paired one to one
    pairs = dict(a_params=[x, *layer.parameters()], b_params=[x64, *layer64.parameters()])
    explicit32 = max_error(lambda: direct().double(), truth, [], generator, **pairs)
    bound = min(CGNL_FLOAT32_CAP, max(DEFAULT_TOLERANCE[torch.float32], CGNL_FLOAT32_FACTOR * explicit32))
    for path in ("reference", "fast"):
        err = max_error(lambda path=path: layer(x, path=path).double(), truth, [], generator, **pairs)
        yield Trial(describe(x=x.shape, path=path, **case, explicit32=f"{explicit32:.1e}"), err,
                    tolerance=bound if path == "reference" else None)


@theorem("spectral.cgnl", "CGNL's Taylor fast form and its reference path equal the explicit Nc x Nc form "
         "X + GN(W vec^-1(A^f vec Z)) (appendix Eq. 17)")
def cgnl(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    """Float64: both paths against the explicit formula, to 1e-10.

    Float32: both paths are compared with the explicit formula evaluated in float64 (the
    truth). The fast path is held to 1e-4. The reference path builds ``A^f`` explicitly and
    is only as accurate as the explicit form is well conditioned at this input, so it is held
    to ``max(1e-4, 16 e32)`` (at most 1e-2), where ``e32`` is the explicit formula's own
    float32 error against the truth here: a measured condition number times the unit
    round-off. Where the conditioning comes from: with the dot kernel ``A^f = a b^T`` has rank
    one, so a group's output is ``y_u = a_u s`` with ``s = sum_v b_v z_v`` over ``n = cN``
    entries. The explicit product rounds each ``y_u`` separately, with relative error up to
    ``n u kappa``, ``kappa = sum_v |b_v z_v| / |s|`` (137 at ``--seed 26``); the GroupNorm
    after ``W`` divides by the group's spread, proportional to ``|s|``, so these per-entry
    errors reach the output and, amplified, the gradients (9e-4 at seed 26). The separable
    fast form rounds ``s`` once, a common scale that the GroupNorm removes (2e-5 there). Two
    float32 evaluations of one ill-conditioned product (our batched reference and this
    file's formula accumulate in different orders) were measured to differ in error by up
    to 16x over seeds 0-49 (``neighbor-zoo verify --dtype float32 --seeds 0:50 --filter
    cgnl`` prints ``explicit32`` per trial), hence the factor.
    """
    for case in CGNL_CASES:
        for layer, x in _blocks(4, generator, dtype, inter_channels=4, **case):
            sel, comb = layer.selector, layer.combiner
            groups, kernel = case["groups"], case["kernel"]
            if case["normalize"] == "row":  # keep the degrees away from zero: positive kernel values
                with torch.no_grad():
                    sel.key.weight.abs_()
                    sel.query.weight.abs_()
                x = x.detach().abs().requires_grad_(True)

            def direct(x=x, sel=sel, comb=comb, groups=groups, kernel=kernel, case=case) -> Tensor:
                t = tokens(x)
                b, n, _ = t.shape

                def vec(u: Tensor) -> Tensor:  # (B, N, G*c) -> (B, G, c*N), channel-major per group
                    return u.transpose(1, 2).reshape(b, groups, -1)

                m = _cgnl_kernel(vec(linear(sel.query, t)), vec(linear(sel.key, t)), kernel,
                                 case.get("order", 3), case.get("gamma", 0.5))
                if case["normalize"] == "mean":
                    m = m / m.shape[-1]
                elif case["normalize"] == "row":
                    m = m / m.sum(-1, keepdim=True)
                y = (m @ vec(linear(comb.value, t)).unsqueeze(-1)).reshape(b, groups, -1, n)  # (B, G, c, N)
                w = comb.output.weight.reshape(groups, -1, y.shape[2])  # grouped 1x1: (G, C/G, c)
                out = torch.einsum("bgcn,goc->bgon", y, w).reshape(b, -1, n)
                return x + group_norm(comb.norm, out).reshape(x.shape)

            if dtype == torch.float64:
                yield from _trials(layer, x, direct, generator, ("reference", "fast"), **case)
            else:
                yield from _cgnl_float32_trials(layer, x, direct, generator, **case)


def _criss_cross_dense(q: Tensor, k: Tensor, height: int, width: int) -> Tensor:
    """``A = D^-1 (C . exp(Q K^T))`` with ``C_ij = 1`` iff i, j share a row or a column (appendix Sec. 1.5)."""
    r, c = torch.div(torch.arange(height * width), width, rounding_mode="floor"), torch.arange(height * width) % width
    mask = (r[:, None] == r[None, :]) | (c[:, None] == c[None, :])
    m = torch.exp(q @ k.transpose(1, 2)) * mask
    return m / m.sum(-1, keepdim=True)


def _criss_cross_loop(q: Tensor, k: Tensor, v: Tensor, height: int, width: int) -> Tensor:
    """Pixel by pixel: softmax over its column then the rest of its row, weighted sum of values."""
    rows = []
    for i in range(height):
        for j in range(width):
            keys = [r * width + j for r in range(height)] + [i * width + c for c in range(width) if c != j]
            u = i * width + j
            w = torch.einsum("bd,bmd->bm", q[:, u], k[:, keys]).softmax(-1)
            rows.append(torch.einsum("bm,bmc->bc", w, v[:, keys]))
    return torch.stack(rows, 1)


@theorem("spectral.criss_cross", "CrissCrossAttention (R steps) = X <- X + gamma D^-1 (C . M) X W_v (appendix "
         "Eq. 18), both as the masked dense affinity and as a per-row/per-column loop")
def criss_cross(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape, recurrence in [((2, 6, 3, 4), 1), ((1, 6, 4, 4), 2), ((2, 6, 2, 5), 3)]:
        layer = randomize(CrissCrossAttention2d(6, key_channels=2, recurrence=recurrence), generator, dtype)
        x = randn(generator, *shape, dtype=dtype)
        sel, comb = layer.selector, layer.combiner
        h, w = shape[2:]
        for form in ("masked", "loop"):
            def direct(x=x, sel=sel, comb=comb, form=form, h=h, w=w, recurrence=recurrence) -> Tensor:
                for _ in range(recurrence):
                    t = tokens(x)
                    q, k, v = linear(sel.query, t), linear(sel.key, t), linear(comb.value, t)
                    y = (_criss_cross_dense(q, k, h, w) @ v if form == "masked"
                         else _criss_cross_loop(q, k, v, h, w))
                    x = residual(x, comb.norm.gamma * y)
                return x

            yield from _trials(layer, x, direct, generator, form=form, recurrence=recurrence)


def _snl_affinity(sel: nn.Module, t: Tensor, kernel: str) -> Tensor:
    s = linear(sel.query, t) @ linear(sel.key, t).transpose(1, 2)
    return symmetric(torch.exp(s) if kernel == "exp" else torch.sigmoid(s))


@theorem("spectral.snl", "SNL = X + BN(Z W_1 + A Z W_2) and gSNL adds (2 A^2 Z - Z) W_3, "
         "A = D^-1/2 (M + M^T)/2 D^-1/2 (Chebyshev orders 1 and 2)")
def snl(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for order, kernel in [(1, "exp"), (2, "exp"), (2, "sigmoid"), (3, "exp")]:
        for layer, x in _blocks(2, generator, dtype, inter_channels=3, order=order, kernel=kernel):
            sel, comb = layer.selector, layer.combiner

            def direct(x=x, sel=sel, comb=comb, order=order, kernel=kernel) -> Tensor:
                t = tokens(x)
                a = _snl_affinity(sel, t, kernel)
                z = linear(comb.value, t)
                cheb = [z, a @ z]  # T_0 Z, T_1 Z, then T_k = 2 A T_{k-1} - T_{k-2}
                while len(cheb) <= order:
                    cheb.append(2 * a @ cheb[-1] - cheb[-2])
                ws = comb.output.weight.split(z.shape[-1], dim=1)  # W_k^T blocks
                f = sum(term @ w_k.T for term, w_k in zip(cheb, ws))
                return residual(x, batch_norm(comb.norm, f))

            yield from _trials(layer, x, direct, generator, order=order, kernel=kernel)


@theorem("spectral.cayley_snl", "CayleySNL = X + BN(Z W_1 + 2 (L^2 Z W_h + Z) W_2), L = I - A, "
         "A the symmetric sigmoid affinity (appendix Eq. 23)")
def cayley_snl(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer, x in _blocks(3, generator, dtype, inter_channels=3):
        sel, comb = layer.selector, layer.combiner

        def direct(x=x, sel=sel, comb=comb) -> Tensor:
            t = tokens(x)
            a = _snl_affinity(sel, t, "sigmoid")
            lap = torch.eye(a.shape[-1], dtype=a.dtype) - a
            z = linear(comb.value, t)
            w1, w2 = comb.output.weight.split(z.shape[-1], dim=1)
            f = z @ w1.T + 2 * (lap @ lap @ z @ comb.zoom.weight.T + z) @ w2.T
            return residual(x, batch_norm(comb.norm, f))

        yield from _trials(layer, x, direct, generator)


@theorem("spectral.affinity_properties", "NL, NS, A^2 and criss-cross affinities are row stochastic; "
         "SNL's and Cayley SNL's are symmetric (max |A 1 - 1| or max |A - A^T|)")
def affinity_properties(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for shape in SHAPES:
        c = shape[1]
        x = randn(generator, *shape, dtype=dtype, requires_grad=False)
        nd = ND[len(shape) - 2]
        blocks = {"nonlocal": nd[5](c), "nonlocal_stage": nd[0](c), "double_attention": nd[1](c),
                  "snl": nd[2](c), "cayley_snl": nd[3](c)}
        if len(shape) == 4:
            blocks["criss_cross"] = CrissCrossAttention2d(c)
        for name, layer in blocks.items():
            a = randomize(layer, generator, dtype).neighborhood(x).to_dense(dtype=dtype)[..., 0, :]
            a = a.reshape(-1, *a.shape[-2:])
            if name in ("snl", "cayley_snl"):
                err = (a - a.transpose(-1, -2)).abs().max().item()
            else:
                err = (a.sum(-1) - 1).abs().max().item()
            yield Trial(describe(x=shape, block=name), err)
