"""ConvNN is hard k-nearest-neighbour aggregation; with spatial distance it is a convolution.

References used here are written independently of the library: ``F.conv1d``/``F.conv2d``,
a plain per-token loop of Algorithm 1 of the ConvNN poster, and a brute-force sort for k-NN.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from neighborhoods.combiners import Conv1D
from neighborhoods.functional import knn
from neighborhoods.selectors import HardKNN
from operators import BranchingConv2d, ConvNN1d, ConvNN2d

from .base import Trial, describe, max_error, randn, theorem

_CONV = {1: F.conv1d, 2: F.conv2d}


# ---- independent references ---------------------------------------------------------------------
def algorithm1(x: Tensor, weight: Tensor, bias: Tensor | None, k: int, metric: str,
               candidates: Sequence[int] | None = None) -> Tensor:
    """Algorithm 1 of the ConvNN poster, one token at a time.

    For each token i: score it against every token (cosine: l2-normalise, ``S = X X^T``;
    euclidean: ``-|x_i - x_j|^2``), keep i itself and the k-1 best other tokens (among
    ``candidates`` when given; ties to the lower index), write their features as columns
    ``i*k .. (i+1)*k`` of ``V'`` (C, N*k), then ``Y = conv1d(V', W, stride=k)``.
    """
    b, c = x.shape[:2]
    flat = x.reshape(b, c, -1)
    n = flat.shape[-1]
    pool = list(range(n)) if candidates is None else [int(j) for j in candidates]
    out = []
    for t in range(b):
        tokens = flat[t].T  # (n, c)
        with torch.no_grad():
            u = tokens.detach()
            if metric == "cosine":
                u = u / u.norm(dim=1, keepdim=True)
                scores = (u @ u.T).tolist()
            else:
                scores = [[-float(((u[i] - u[j]) ** 2).sum()) for j in range(n)] for i in range(n)]
        columns = []
        for i in range(n):
            others = sorted((j for j in pool if j != i), key=lambda j: (-scores[i][j], j))
            columns.append(tokens[[i, *others[: k - 1]]].T)  # (c, k)
        v_prime = torch.cat(columns, 1)  # (c, n * k)
        out.append(F.conv1d(v_prime.unsqueeze(0), weight, bias, stride=k)[0])
    return torch.stack(out).reshape(b, -1, *x.shape[2:])


def window_slot_of(index: Tensor, spatial: tuple[int, ...], query: int, radius: int) -> Tensor:
    """For each slot of ``query``, its tap in the row-major (2r+1)^d kernel, from the chosen token's offset."""
    width = 2 * radius + 1
    taps = torch.zeros(index.shape[-1], dtype=torch.long)
    for s, key in enumerate(index.tolist()):
        tap = 0
        for axis in range(len(spatial)):
            step = 1
            for size in spatial[axis + 1:]:
                step *= size
            offset = (key // step) % spatial[axis] - (query // step) % spatial[axis]
            tap = tap * width + offset + radius
        taps[s] = tap
    return taps


# ---- theorems ---------------------------------------------------------------------------------------
# (metric, kernel width, order): Chebyshev balls are square windows for every odd width;
# squared-Euclidean balls are for 3x3 (k = 9) and 5x5 (k = 25)
SPATIAL_CASES = [("chebyshev", 1, "index"), ("chebyshev", 3, "index"), ("chebyshev", 5, "score"),
                 ("chebyshev", 7, "index"), ("euclidean", 3, "score"), ("euclidean", 5, "score")]


@theorem("hardknn.positions==conv2d",
         "HardKNN on positions over the zero-padded grid + Conv1D equals F.conv2d with the weight in slot order")
def spatial_knn_is_conv(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for metric, width, order in SPATIAL_CASES:
        r = width // 2
        spatial = (width + 2, width + 3)
        x = randn(generator, 2, 3, *spatial, dtype=dtype)
        selector = HardKNN(width * width, space="positions", metric=metric, padding=r, self_first=False, order=order)
        combiner = Conv1D(3, 4, width * width, dtype=dtype)
        nbhd = selector(x)
        centre = (spatial[0] // 2) * spatial[1] + spatial[1] // 2
        taps = window_slot_of(nbhd.index[0, centre], spatial, centre, r)
        inverse = torch.argsort(taps)  # kernel tap -> slot

        def conv() -> Tensor:
            kernel = combiner.weight[..., inverse].reshape(4, 3, width, width)
            return F.conv2d(x, kernel, combiner.bias, padding=r)

        err = max_error(lambda: combiner(x, nbhd), conv, [x, combiner.weight, combiner.bias], generator)
        yield Trial(describe(x=x.shape, metric=metric, kernel=f"{width}x{width}", order=order), err)


@theorem("convnn.location==conv.same", "ConvNN with 'location' similarity equals Conv(padding='same'), 1-D and 2-D")
def location_is_same_conv(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer_cls, spatial, width in [(ConvNN2d, (6, 7), 1), (ConvNN2d, (6, 7), 3), (ConvNN2d, (7, 5), 5),
                                      (ConvNN1d, (11,), 3), (ConvNN1d, (11,), 7)]:
        d = len(spatial)
        layer = layer_cls(3, 5, k=width ** d, similarity="location", dtype=dtype)
        x = randn(generator, 2, 3, *spatial, dtype=dtype)

        def conv() -> Tensor:
            kernel = layer.weight.reshape(5, 3, *(width,) * d)
            return _CONV[d](x, kernel, layer.bias, padding="same")

        err = max_error(lambda: layer(x, path="reference"), conv, [x, layer.weight, layer.bias], generator)
        yield Trial(describe(layer=layer_cls.__name__, x=x.shape, k=width ** d), err)


@theorem("convnn.location.strided==conv.strided",
         "ConvNN 'location' with a conv's stride s and padding p equals Conv(stride=s, padding=p), 1-D and 2-D, "
         "both paths")
def location_is_strided_conv(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer_cls, spatial, width, stride, padding in [
            (ConvNN2d, (9, 8), 3, 2, 1), (ConvNN2d, (9, 8), 3, 2, 0), (ConvNN2d, (7, 10), 3, 3, 2),
            (ConvNN2d, (9, 9), 5, 2, 2), (ConvNN2d, (8, 7), 3, (1, 2), (2, 0)), (ConvNN1d, (13,), 3, 2, 1),
            (ConvNN1d, (12,), 5, 3, 4)]:
        d = len(spatial)
        # candidate padding given: the default for these arguments, stated (no deprecation warning at stride 1)
        pads = (padding,) * d if isinstance(padding, int) else padding
        layer = layer_cls(3, 5, k=width ** d, similarity="location", stride=stride, padding=padding,
                          candidate_padding=max((width - 1) // 2, *pads), dtype=dtype)
        x = randn(generator, 2, 3, *spatial, dtype=dtype)

        def conv() -> Tensor:
            kernel = layer.weight.reshape(5, 3, *(width,) * d)
            return _CONV[d](x, kernel, layer.bias, stride=stride, padding=padding)

        for path in ("reference", "fast"):
            err = max_error(lambda: layer(x, path=path), conv, [x, layer.weight, layer.bias], generator)
            yield Trial(describe(layer=layer_cls.__name__, x=x.shape, k=width ** d, stride=stride, padding=padding,
                                 path=path), err)


@theorem("convnn.location.fast==reference",
         "ConvNN 'location' layers take an F.conv fast path that equals their k-NN reference path")
def location_fast_path(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer_cls, spatial, k in [(ConvNN2d, (6, 7), 9), (ConvNN2d, (3, 4), 25), (ConvNN1d, (11,), 5)]:
        layer = layer_cls(3, 5, k=k, similarity="location", dtype=dtype)
        x = randn(generator, 2, 3, *spatial, dtype=dtype)
        err = max_error(lambda: layer(x, path="fast"), lambda: layer(x, path="reference"),
                        [x, layer.weight, layer.bias], generator)
        yield Trial(describe(layer=layer_cls.__name__, x=x.shape, k=k), err)


FEATURE_CASES = [(ConvNN2d, (5, 6), 9, "cosine"), (ConvNN2d, (4, 7), 5, "euclidean"), (ConvNN1d, (13,), 4, "cosine"),
                 (ConvNN1d, (12,), 6, "euclidean"), (ConvNN2d, (5, 5), 1, "cosine")]


@theorem("convnn.features==algorithm1",
         "ConvNN with cosine/euclidean similarity equals a per-token loop of the poster's Algorithm 1")
def features_are_algorithm1(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for layer_cls, spatial, k, similarity in FEATURE_CASES:
        layer = layer_cls(3, 4, k=k, similarity=similarity, block_size=7, dtype=dtype)
        x = randn(generator, 2, 3, *spatial, dtype=dtype)
        err = max_error(lambda: layer(x), lambda: algorithm1(x, layer.weight, layer.bias, k, similarity),
                        [x, layer.weight, layer.bias], generator)
        yield Trial(describe(layer=layer_cls.__name__, x=x.shape, k=k, similarity=similarity), err)


@theorem("convnn.sampling==algorithm1",
         "ConvNN with random / spatial candidate sampling equals Algorithm 1 restricted to those candidates")
def sampling_is_restricted_algorithm1(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    spatial = (6, 7)
    for sampling, samples, similarity in [("random", 10, "cosine"), ("random", 6, "euclidean"),
                                          ("spatial", 3, "cosine"), ("spatial", 4, "euclidean")]:
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        layer = ConvNN2d(3, 4, k=5, similarity=similarity, sampling=sampling, samples=samples, seed=seed, dtype=dtype)
        if sampling == "random":  # the draw of a freshly seeded twin is the layer's first draw
            pool = HardKNN(5, sampling="random", samples=samples, seed=seed).candidates(spatial).tolist()
        else:  # samples evenly spaced rows and columns, rounded to the nearest token
            rows = [round(i * (spatial[0] - 1) / (samples - 1)) for i in range(samples)]
            cols = [round(j * (spatial[1] - 1) / (samples - 1)) for j in range(samples)]
            pool = [r * spatial[1] + c for r in rows for c in cols]
        x = randn(generator, 2, 3, *spatial, dtype=dtype)
        err = max_error(lambda: layer(x), lambda: algorithm1(x, layer.weight, layer.bias, 5, similarity, pool),
                        [x, layer.weight, layer.bias], generator)
        yield Trial(describe(x=x.shape, sampling=sampling, samples=samples, similarity=similarity), err)


def _brute_force_knn(queries: Tensor, keys: Tensor, k: int, metric: str) -> Tensor:
    """k nearest by sorting (score, index) pairs in Python; scores computed pair by pair."""
    out = []
    for qs, ks in zip(queries.tolist(), keys.tolist()):
        rows = []
        for q in qs:
            diffs = [[a - b for a, b in zip(q, key)] for key in ks]
            if metric == "dot":
                rank = [-sum(a * b for a, b in zip(q, key)) for key in ks]
            elif metric == "euclidean":
                rank = [sum(d * d for d in diff) for diff in diffs]
            else:
                rank = [max(abs(d) for d in diff) for diff in diffs]
            rows.append(sorted(range(len(ks)), key=lambda j: (rank[j], j))[:k])
        out.append(rows)
    return torch.tensor(out)


@theorem("knn.ties_and_blocks",
         "knn returns the same neighbours for every block_size, and exact ties go to the lower index",
         float64=0.0, float32=0.0)
def knn_ties_and_blocks(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for metric in ("dot", "euclidean", "chebyshev"):
        # small integer coordinates: many exactly tied scores, all exactly representable
        queries = torch.randint(-2, 3, (2, 9, 3), generator=generator).to(dtype)
        keys = torch.randint(-2, 3, (2, 23, 3), generator=generator).to(dtype)
        expected = _brute_force_knn(queries, keys, 6, metric)
        mismatches = max(int((knn(queries, keys, 6, metric, block_size=bs)[1] != expected).sum())
                         for bs in (1, 7, 9, 1024))
        yield Trial(describe(queries=queries.shape, keys=keys.shape, k=6, metric=metric, block_size="1,7,9,1024"),
                    float(mismatches))
    queries, keys = randn(generator, 2, 31, 5, dtype=dtype, requires_grad=False), \
        randn(generator, 2, 40, 5, dtype=dtype, requires_grad=False)
    for metric in ("cosine", "euclidean"):
        full = knn(queries, keys, 8, metric, block_size=31)[1]
        mismatches = max(int((knn(queries, keys, 8, metric, block_size=bs)[1] != full).sum()) for bs in (1, 7))
        yield Trial(describe(queries=queries.shape, keys=keys.shape, k=8, metric=metric, block_size="1,7 vs 31"),
                    float(mismatches))


@theorem("branching.pure_ratios==branch",
         "BranchingConv2d without the 1x1 mix equals torch Conv2d(padding='same') at ratio 0 and ConvNN2d at ratio 1")
def branching_pure_ratios(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for ratio, kernel_size, similarity in [(0.0, 3, "cosine"), (0.0, (2, 5), "cosine"), (1.0, 3, "euclidean"),
                                           (1.0, 3, "location")]:
        layer = BranchingConv2d(3, 4, ratio, kernel_size=kernel_size, k=9, similarity=similarity, pointwise=False,
                                dtype=dtype)
        if ratio == 0.0:
            twin = torch.nn.Conv2d(3, 4, kernel_size, padding="same", dtype=dtype)
            twin.load_state_dict(layer.conv.state_dict())
        else:
            twin = ConvNN2d(3, 4, k=9, similarity=similarity, dtype=dtype)
            twin.load_state_dict(layer.convnn.state_dict())
        x = randn(generator, 2, 3, 5, 6, dtype=dtype)
        yield Trial(describe(x=x.shape, ratio=ratio, kernel_size=kernel_size, similarity=similarity),
                    max_error(lambda: layer(x), lambda: twin(x), [x], generator,
                              a_params=list(layer.parameters()), b_params=list(twin.parameters())))
