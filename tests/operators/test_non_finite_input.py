"""One NaN or inf in one sample: hard-selection layers run, and the damage stays in that sample.

Issue 9, item 2. Non-finite scores are ranked deterministically (NaN after everything,
``top_k_stable``), so the layer neither crashes nor lets the bad sample reach the others:
every other sample's output equals, bit for bit, its output in a batch without the bad value
and its output when run alone.
"""

import pytest
import torch

from operators import BranchingConv2d, ConvNN2d, KNNBlock2d

LAYERS = {
    "convnn2d_cosine": lambda: ConvNN2d(3, 5, k=5),
    "convnn2d_euclidean": lambda: ConvNN2d(3, 5, k=5, similarity="euclidean"),
    "convnn2d_location": lambda: ConvNN2d(3, 5, k=5, similarity="location"),
    "convnn2d_hybrid": lambda: ConvNN2d(3, 5, k=5, similarity="hybrid"),
    "convnn2d_dot": lambda: ConvNN2d(3, 5, k=5, metric="dot"),
    "convnn2d_random": lambda: ConvNN2d(3, 5, k=4, sampling="random", samples=12, seed=0),
    "convnn2d_spatial": lambda: ConvNN2d(3, 5, k=4, sampling="spatial", samples=3),
    "branching_conv2d": lambda: BranchingConv2d(3, 6, ratio=0.5, k=5),
    "knnblock2d": lambda: KNNBlock2d(3, k=2, patch_size=3, patch_stride=1, window=5),
}


def _reseed(layer):
    # random candidate sampling: the batch and the lone sample must see the same draw
    for m in layer.modules():
        if isinstance(getattr(m, "generator", None), torch.Generator):
            m.generator.manual_seed(0)


#: A batch of 3 and a batch of 1 are different shapes, so BLAS may block them differently
#: (it does for Conv2d everywhere, and for KNNBlock2d's matmuls on AMD EPYC with MKL): a lone
#: run is compared with float32 round-off. Runs of the same shape (clean or damaged batch)
#: run the same kernels, so those are compared bit for bit. See tests/README.md.
LONE_RUN_TOLERANCE = dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_pixel_stays_in_its_sample(name, bad):
    torch.manual_seed(0)
    layer = LAYERS[name]().eval()
    clean = torch.randn(3, 3, 7, 8)
    x = clean.clone()
    x[1, 2, 3, 4] = bad
    with torch.no_grad():
        _reseed(layer)
        y = layer(x)
        _reseed(layer)
        y_clean = layer(clean)
        for b in (0, 2):
            assert torch.equal(y[b], y_clean[b]), b
            assert torch.isfinite(y[b]).all()
            _reseed(layer)
            alone = layer(x[b:b + 1])
            torch.testing.assert_close(y[b:b + 1], alone, **LONE_RUN_TOLERANCE)
        _reseed(layer)
        assert torch.equal(y[1:2].isnan(), layer(x[1:2]).isnan())


def test_a_nan_query_of_convnn_still_draws_on_k_distinct_tokens():
    layer = ConvNN2d(3, 5, k=4)
    x = torch.randn(2, 3, 4, 5)
    x[0, :, 1, 1] = float("nan")
    index = layer.neighborhood(x).index  # (B, N, k)
    assert torch.equal(index[:, :, 0], torch.arange(20).expand(2, 20))  # slot 0 is the token itself
    assert (index.sort(-1).values.diff(dim=-1) > 0).all()  # k distinct tokens everywhere
    # the NaN token (6) ranks last for every other query, its own slots are the lowest indices
    assert index[0, 6].tolist() == [6, 0, 1, 2]
    assert not (index[0, torch.arange(20) != 6, 1:] == 6).any()
