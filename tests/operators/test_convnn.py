"""ConvNN1d / ConvNN2d against independent computations.

Feature similarity is checked against a plain loop of Algorithm 1 of the ConvNN poster
written here; 'location' similarity against torch's 'same' convolution.
"""

import pytest
import torch
import torch.nn.functional as F

import operators
from operators import ConvNN1d, ConvNN2d

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def poster_algorithm1(x, weight, bias, k, similarity):
    """Algorithm 1: normalise, S = X X^T, top-k with self first, V' (C, N*k), conv1d(kernel=k, stride=k)."""
    batch, channels = x.shape[:2]
    out = []
    for b in range(batch):
        X = x[b].reshape(channels, -1).T  # (N, C), rows x_i
        n = X.shape[0]
        Xd = X.detach()
        if similarity == "cosine":
            Xn = Xd / Xd.norm(dim=1, keepdim=True)
            S = Xn @ Xn.T
        else:  # euclidean: nearer = smaller squared distance, as a similarity its negative
            S = -torch.stack([((Xd - Xd[i]) ** 2).sum(1) for i in range(n)])
        V = torch.zeros(channels, n * k, dtype=x.dtype)
        for i in range(n):
            row = S[i].clone()
            row[i] = float("-inf")
            # best first, equal scores in index order (stable sort of the negated row)
            order = torch.sort(-row, stable=True).indices[: k - 1]
            neighbours = torch.cat([torch.tensor([i]), order])
            V = V.index_copy(1, torch.arange(i * k, (i + 1) * k), X[neighbours].T)
        out.append(F.conv1d(V[None], weight, bias, stride=k)[0])
    return torch.stack(out).reshape(batch, weight.shape[0], *x.shape[2:])


def assert_forward_and_grads(layer, reference, x, dtype):
    x = x.clone().requires_grad_(True)
    out, ref = layer(x), reference(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    wrt = [x, layer.weight, layer.bias]
    for a, b in zip(torch.autograd.grad(out, wrt, cot), torch.autograd.grad(ref, wrt, cot)):
        torch.testing.assert_close(a, b, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
@pytest.mark.parametrize("layer_cls, spatial, k", [
    (ConvNN2d, (4, 5), 9), (ConvNN2d, (3, 7), 4), (ConvNN2d, (6, 6), 1), (ConvNN1d, (15,), 5), (ConvNN1d, (8,), 8),
])
@pytest.mark.parametrize("seed", [0, 1])
def test_feature_similarity_equals_algorithm1(layer_cls, spatial, k, similarity, dtype, seed):
    torch.manual_seed(seed)
    layer = layer_cls(3, 4, k=k, similarity=similarity, block_size=5, dtype=dtype)
    x = torch.randn(2, 3, *spatial, dtype=dtype)
    assert_forward_and_grads(layer, lambda t: poster_algorithm1(t, layer.weight, layer.bias, k, similarity), x, dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layer_cls, spatial, width", [
    (ConvNN2d, (5, 6), 1), (ConvNN2d, (5, 6), 3), (ConvNN2d, (8, 7), 5), (ConvNN2d, (9, 9), 7),
    (ConvNN1d, (10,), 3), (ConvNN1d, (10,), 5),
])
def test_location_equals_same_conv(layer_cls, spatial, width, dtype):
    d = len(spatial)
    layer = layer_cls(3, 4, k=width ** d, similarity="location", dtype=dtype)
    native = (torch.nn.Conv2d if d == 2 else torch.nn.Conv1d)(3, 4, width, padding="same", dtype=dtype)
    with torch.no_grad():
        native.weight.copy_(layer.weight.reshape(native.weight.shape))
        native.bias.copy_(layer.bias)
    x = torch.randn(2, 3, *spatial, dtype=dtype, requires_grad=True)
    out, ref = layer(x), native(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=TOL[dtype])
    cot = torch.randn_like(out)
    g_ours = torch.autograd.grad(out, [x, layer.weight, layer.bias], cot)
    g_torch = torch.autograd.grad(ref, [x, native.weight, native.bias], cot)
    for a, b in zip(g_ours, g_torch):
        torch.testing.assert_close(a.reshape(b.shape), b, rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("name", operators.available("convnn*"))
def test_output_size_equals_input_size_for_any_size(name):
    layer = operators.create(name, in_channels=3, out_channels=5, k=4, **({"samples": 4} if "spatial" in name else {}))
    shapes = [(2, 3, 5), (1, 3, 9)] if name.startswith("convnn1d") else [(2, 3, 5, 6), (1, 3, 8, 4), (3, 3, 4, 4)]
    for shape in shapes:
        y = layer(torch.randn(*shape))
        assert y.shape == (shape[0], 5, *shape[2:])


def test_weight_layout_and_state_dict_keys():
    layer = ConvNN2d(3, 5, k=7)
    assert layer.weight.shape == (5, 3, 7) and layer.bias.shape == (5,)
    assert set(layer.state_dict()) == {"weight", "bias"}
    twin = ConvNN2d(3, 5, k=7, bias=False)
    assert set(twin.state_dict()) == {"weight"} and twin.bias is None


def test_padding_adds_zero_candidates_for_features():
    x = torch.randn(1, 3, 4, 4)
    plain, padded = ConvNN2d(3, 2, k=9), ConvNN2d(3, 2, k=9, candidate_padding=1, similarity="euclidean")
    assert plain.neighborhood(x).valid is None
    nb = padded.neighborhood(x)
    assert nb.valid is not None and nb.valid[..., 0].all()  # self is always inside


def test_random_sampling_reproducible_with_seed():
    x = torch.randn(2, 3, 6, 6)
    a = ConvNN2d(3, 4, k=5, sampling="random", samples=12, seed=3)
    b = ConvNN2d(3, 4, k=5, sampling="random", samples=12, seed=3)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def _inside(pool: torch.Tensor, spatial: tuple[int, int], padding: int) -> torch.Tensor:
    """Whether each padded-grid index lies on the image."""
    width = spatial[1] + 2 * padding
    rows, cols = pool // width - padding, pool % width - padding
    return (rows >= 0) & (rows < spatial[0]) & (cols >= 0) & (cols < spatial[1])


@pytest.mark.parametrize("sampling, samples", [("spatial", 3), ("random", 9)])
def test_sampling_with_padding_takes_image_tokens(sampling, samples):
    layer = ConvNN2d(3, 4, k=5, sampling=sampling, samples=samples, candidate_padding=1, seed=0)
    pool = layer.selector.candidates((7, 7))
    assert pool.numel() == (samples ** 2 if sampling == "spatial" else samples) and _inside(pool, (7, 7), 1).all()
    if sampling == "spatial":  # the corners and midpoints of the 7x7 image itself
        assert sorted(((pool // 9 - 1) * 7 + pool % 9 - 1).tolist()) == [0, 3, 6, 21, 24, 27, 42, 45, 48]
    idx = layer.neighborhood(torch.randn(2, 3, 7, 7))
    assert idx.valid.all()  # no slot reads a padding token


def test_sampling_from_the_padded_grid_is_an_option():
    layer = ConvNN2d(3, 4, k=5, sampling="spatial", samples=3, candidate_padding=1, sample_from="padded")
    pool = layer.selector.candidates((7, 7))
    assert (~_inside(pool, (7, 7), 1)).sum() == 8  # 8 of 9 are padding tokens: why 'image' is the default
    with pytest.raises(ValueError, match="sample_from must be one of"):
        ConvNN2d(3, 4, sampling="spatial", samples=3, sample_from="grid")


def test_random_sampling_is_fixed_in_eval_and_fresh_in_training():
    x = torch.randn(2, 3, 6, 6)
    layer = ConvNN2d(3, 4, k=5, sampling="random", samples=8, seed=1)
    train = [layer.neighborhood(x).index for _ in range(4)]
    assert not all(torch.equal(train[0], t) for t in train[1:])  # a new draw per training forward
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x), rtol=0, atol=0)
    assert torch.equal(layer.neighborhood(x).index, layer.neighborhood(x).index)
    # the eval draw depends on the seed and the input shape only, not on how often it ran
    twin = ConvNN2d(3, 4, k=5, sampling="random", samples=8, seed=1).eval()
    assert torch.equal(twin.neighborhood(x).index, layer.neighborhood(x).index)
    unseeded = ConvNN2d(3, 4, k=5, sampling="random", samples=8).eval()
    assert torch.equal(unseeded.neighborhood(x).index, unseeded.neighborhood(x).index)
