"""The spectral non-local family: theorems, identity at initialisation, gradcheck, bad input.

The equivalences themselves (each block against the appendix formula written as dense
matrices) live in ``comparisons/theorems/spectral.py`` so that ``neighbor-zoo verify``
runs them too; here they run in float64 and float32 on two seeds.
"""

import itertools
import math

import pytest
import torch
from torch import nn

import operators
from comparisons.theorems import base, select, verify
from comparisons.theorems.spectral import randomize
from neighborhoods import ChannelLinear, NeighborAggregator
from neighborhoods.combiners import CayleyFilter, GraphFilter, chebyshev
from neighborhoods.functional import criss_cross_index, entry_features, entry_kernel
from neighborhoods.norms import ChannelBatchNorm
from neighborhoods.selectors import CompactAffinity, DenseAffinity, FixedSpatial
from operators import (CayleySNL1d, CayleySNL2d, CGNL2d, CrissCrossAttention2d, DoubleAttention2d, NonLocalStage1d,
                       SNL2d)

SPECTRAL = [n for n in operators.available() if operators.family(n) == "spectral"]
THEOREMS = [t.name for t in select("spectral.*")]


# ---- the theorems -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", THEOREMS)
def test_theorem(name, seed, dtype):
    verdict = verify(base.THEOREMS[name], seed=seed, dtype=dtype)
    assert verdict.trials, f"{name} ran no trial"
    assert verdict.passed, f"{name}: " + ", ".join(
        f"{t.shapes}: {t.error:.3g} > {verdict.bound(t):.0e}" for t in verdict.trials if not t.error <= verdict.bound(t))


def test_all_seven_blocks_are_registered_and_have_theorems():
    assert set(SPECTRAL) >= {operators.canonical(n) for n in (
        "nonlocal_stage2d", "double_attention2d", "cgnl2d", "criss_cross_attention2d", "snl2d", "gsnl2d",
        "cayley_snl2d", "nonlocal_stage1d", "snl1d", "cayley_snl1d")}
    assert {"spectral.nonlocal", "spectral.nonlocal_stage", "spectral.double_attention", "spectral.cgnl",
            "spectral.criss_cross", "spectral.snl", "spectral.cayley_snl",
            "spectral.affinity_properties"} <= set(THEOREMS)


# ---- identity at initialisation -----------------------------------------------------------------
@pytest.mark.parametrize("name", SPECTRAL)
def test_fresh_block_is_the_identity(name):
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs)
    x = torch.randn(*ex.input_shape)
    torch.testing.assert_close(layer(x), x, rtol=0, atol=0)
    randomize(layer, torch.Generator().manual_seed(0), torch.float32)  # not the identity with other parameters
    assert (layer(x) - x).abs().max() > 1e-3
    layer.reset_parameters()
    torch.testing.assert_close(layer(x), x, rtol=0, atol=0)


# ---- gradcheck ----------------------------------------------------------------------------------
GRADCHECK = [
    ("nonlocal2d", dict(in_channels=4, inter_channels=2, sub_sample=False), (1, 4, 2, 3), ("reference", "fast")),
    ("nonlocal_stage1d", dict(in_channels=4, inter_channels=2), (1, 4, 5), ("reference", "fast")),
    ("double_attention2d", dict(in_channels=4, feature_channels=2, attention_maps=2), (1, 4, 2, 3),
     ("reference", "fast")),
    ("cgnl2d", dict(in_channels=4, groups=2, kernel="gaussian", order=2), (1, 4, 2, 2), ("reference", "fast")),
    ("criss_cross_attention2d", dict(in_channels=4, key_channels=2), (1, 4, 2, 3), ("reference",)),
    ("snl2d", dict(in_channels=4, inter_channels=2), (1, 4, 2, 3), ("reference",)),
    ("gsnl1d", dict(in_channels=4, inter_channels=2), (1, 4, 5), ("reference",)),
    ("cayley_snl2d", dict(in_channels=4, inter_channels=2), (1, 4, 2, 3), ("reference",)),
]


@pytest.mark.parametrize("name, kwargs, shape, paths", GRADCHECK, ids=[g[0] for g in GRADCHECK])
def test_gradcheck(name, kwargs, shape, paths):
    gen = torch.Generator().manual_seed(3)
    layer = randomize(operators.create(name, **kwargs), gen, torch.float64)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = next(layer.combiner.value.parameters())
    for path in paths:
        assert torch.autograd.gradcheck(lambda x, w, path=path: layer(x, path=path), (x, weight), fast_mode=True)


# ---- properties beyond the formulas -------------------------------------------------------------
@pytest.mark.parametrize("recurrence, covers", [(1, False), (2, True)])
def test_criss_cross_two_steps_reach_every_pixel(recurrence, covers):
    gen = torch.Generator().manual_seed(0)
    layer = randomize(CrissCrossAttention2d(4, key_channels=2, recurrence=recurrence), gen, torch.float64)
    x = torch.randn(1, 4, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    layer(x)[..., 0, 0].sum().backward()
    reached = x.grad.abs().sum(1)[0] > 0  # (H, W): input pixels that output pixel (0, 0) depends on
    assert bool(reached.all()) == covers
    assert reached[0].all() and reached[:, 0].all()  # its own row and column, always


def test_criss_cross_index_is_row_and_column():
    h, w = 3, 5
    index = criss_cross_index(h, w)
    assert index.shape == (h * w, h + w - 1)
    for u in range(h * w):
        i, j = divmod(u, w)
        expected = {r * w + j for r in range(h)} | {i * w + c for c in range(w)}
        assert sorted(index[u].tolist()) == sorted(expected)


def test_chebyshev_polynomials_are_cos_k_arccos():
    t = torch.linspace(-1, 1, 11, dtype=torch.float64)
    for k, coeffs in enumerate(chebyshev(4)):
        value = sum(c * t**j for j, c in enumerate(coeffs))
        torch.testing.assert_close(value, torch.cos(k * torch.arccos(t)))


def test_taylor_kernel_converges_to_the_gaussian():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    exact = torch.exp(-0.5 * (a[:, None] - b[None, :]) ** 2)
    errors = [(entry_kernel(a, b, "gaussian", p, 0.5) - exact).abs().max().item() for p in (1, 3, 6, 12, 24)]
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors)) and errors[-1] < 1e-12
    # the Lagrange remainder bounds the truncation error
    ab = (a[:, None] * b[None, :]).abs()
    bound = ab ** 4 / math.factorial(4) * torch.exp(ab)
    assert ((entry_kernel(a, b, "gaussian", 3, 0.5) - exact).abs() <= bound + 1e-15).all()
    torch.testing.assert_close(entry_features(a, "gaussian", 3, 0.5) @ entry_features(b, "gaussian", 3, 0.5).T,
                               entry_kernel(a, b, "gaussian", 3, 0.5))


def test_cgnl_fast_path_never_builds_the_entry_matrix(monkeypatch):
    layer = CGNL2d(8, groups=2)
    monkeypatch.setattr(CompactAffinity, "affinity", lambda *a: pytest.fail("the Nc x Nc matrix was built"))
    layer(torch.randn(2, 8, 4, 4))


def test_non_softmax_symmetric_blocks_have_no_fast_path():
    with pytest.raises(ValueError, match="path='fast'"):
        SNL2d(4)(torch.randn(2, 4, 3, 3), path="fast")


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("build, match", [
    (lambda: CGNL2d(6, groups=4), "in_channels must be divisible by groups"),
    (lambda: CGNL2d(8, inter_channels=6, groups=4), "inter_channels must be divisible by groups"),
    (lambda: SNL2d(4, order=0), "order must be >= 1"),
    (lambda: chebyshev(0), "order must be >= 1"),
    (lambda: CayleySNL2d(4, order=0), "order must be >= 1"),
    (lambda: CayleySNL1d(4, order=2), "order must be 1"),
    (lambda: CrissCrossAttention2d(8, recurrence=0), "recurrence must be >= 1"),
    (lambda: SNL2d(4, kernel="dot"), "kernel must be one of"),
    (lambda: CGNL2d(4, kernel="cosine"), "kernel must be one of"),
    (lambda: CGNL2d(4, kernel="gaussian", order=0), "order must be >= 1"),
    (lambda: GraphFilter(4, 4, 4, chebyshev(1), output=False), "single polynomial"),
    (lambda: GraphFilter(4, polynomials=[(0.0, 0.0)]), "non-zero coefficient"),
    (lambda: GraphFilter(4, nodes="edges"), "nodes must be one of"),
])
def test_bad_construction_is_named(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("polynomials", [[], "A", [("a",)]])
def test_bad_polynomials_type(polynomials):
    with pytest.raises(TypeError, match="polynomials"):
        GraphFilter(4, polynomials=polynomials)


def test_non_square_affinity_is_named():
    # keys max-pooled by 2: A is N x N/2, fine for A Z alone, not for the identity and A^2 terms
    selector = DenseAffinity(ChannelLinear(4, 2), nn.Sequential(ChannelLinear(4, 2), nn.MaxPool1d(2)))
    value = nn.Sequential(ChannelLinear(4, 2), nn.MaxPool1d(2))
    x = torch.randn(2, 4, 8)
    plain = NeighborAggregator(selector, GraphFilter(4, 2, 4, value=value))
    assert plain(x).shape == x.shape and plain(x, path="reference").shape == x.shape
    cheb = NeighborAggregator(selector, GraphFilter(4, 2, 4, chebyshev(2), value=value))
    for path in ("auto", "reference"):
        with pytest.raises(ValueError, match=r"square affinity \(Nq == Nk\), got Nq=8, Nk=4"):
            cheb(x, path=path)


def test_graph_filter_needs_one_slot():
    layer = NeighborAggregator(FixedSpatial(3, padding=1, ndim=1), GraphFilter(4))
    with pytest.raises(ValueError, match="one slot per query"):
        layer(torch.randn(2, 4, 6))


def test_cayley_zoom_needs_one_head():
    layer = NeighborAggregator(DenseAffinity(ChannelLinear(4, 4), ChannelLinear(4, 4), kernel="sigmoid",
                                             normalize="symmetric", num_heads=2), CayleyFilter(4))
    with pytest.raises(ValueError, match="single-head affinity"):
        layer(torch.randn(2, 4, 5))


@pytest.mark.parametrize("layer, shape", [(SNL2d(4), (2, 4, 6)), (NonLocalStage1d(4), (2, 4, 3, 3)),
                                          (CrissCrossAttention2d(8), (2, 8, 6))])
def test_wrong_input_rank_is_named(layer, shape):
    with pytest.raises(ValueError, match="x must have"):
        layer(torch.randn(*shape))


def test_channel_batch_norm_checks_channels():
    with pytest.raises(ValueError, match="x must have 4 channels"):
        ChannelBatchNorm(4)(torch.randn(2, 3, 5))


def test_repr_names_the_configuration():
    text = repr(DoubleAttention2d(16))
    assert "feature_channels=4" in text and "GraphFilter" in text and "DenseAffinity" in text
    assert "polynomials=((1.0,), (0.0, 1.0), (-1.0, 0.0, 2.0))" in repr(operators.create("gsnl2d", in_channels=4))


def test_cgnl_default_affinity_is_unnormalised_as_eq16_and_the_authors_code():
    layer = CGNL2d(4, groups=2).double()
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    a, b = layer.selector.entries(x)
    assert layer.selector.normalize == "none"
    torch.testing.assert_close(layer.selector.affinity(x), entry_kernel(a, b), rtol=0, atol=0)
    assert CompactAffinity().normalize == "none"


def test_residual_filter_with_new_width_has_a_projection_shortcut():
    # out_channels != in_channels: Y = P X + norm(F), P a 1x1 map without bias; a fresh filter is P X
    f = GraphFilter(4, 2, 6, residual=True, norm=torch.nn.BatchNorm1d(6)).eval()
    assert f.shortcut.weight.shape == (6, 4) and f.shortcut.bias is None
    x = torch.randn(2, 4, 5)
    nbhd = DenseAffinity()(x)
    torch.testing.assert_close(f(x, nbhd), torch.einsum("oc,bcn->bon", f.shortcut.weight, x), rtol=0, atol=1e-6)
    assert GraphFilter(4, 2, 4, residual=True).shortcut is None
