"""What the benchmark runs: every operator at every size, as each of its variants, with its FLOP count.

A :class:`Workload` is one operator at one image size: an input, the useful FLOPs of one
forward pass, and the variants to time side by side (same weights):

=============  ================================================================================
variant        what runs
=============  ================================================================================
``fast``       the layer as a user calls it (``path='auto'``: a native kernel where one applies)
``reference``  the same layer through its explicit Neighborhood (``path='reference'``)
``native``     torch's own op for the same computation (``F.conv2d``, ``F.scaled_dot_product_attention``)
``naive``      the all-pairs form of the seeds' codes (:mod:`.naive`): full N x N scores
``peer``       the public ConvNN layer loaded from ``--peer-dir`` (:mod:`.peer`)
=============  ================================================================================

FLOP counts are multiply-adds x 2 of the operator's defined work (the same count for every
variant of an operator, so their TFLOP/s compare the same work); forward + backward counts
3x the forward (the usual convention: the backward pass computes two products per forward one).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import operators

from . import naive
from .peer import load_peer_convnn2d


@dataclass(frozen=True)
class Settings:
    """The shared workload shape and where it runs."""

    batch: int = 8
    channels: int = 64
    k: int = 9
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    #: naive forms whose estimated peak exceeds this many bytes are not run (their estimate is reported)
    memory_cap: int = 4 << 30
    peer_dir: str | None = None
    seed: int = 0


@dataclass
class Variant:
    """One way of computing the workload: ``forward(x) -> y`` and the parameters it trains."""

    name: str
    forward: Callable[[Tensor], Tensor]
    parameters: list[nn.Parameter] = field(default_factory=list)
    #: why it is not run at this size (then ``estimated_bytes`` says what it would need), else None
    skip: str | None = None
    estimated_bytes: int | None = None


@dataclass
class Workload:
    """One operator at one image size."""

    operator: str
    size: int
    x: Tensor
    flops: float
    flops_formula: str
    variants: list[Variant]
    #: the variant the others' time is divided by: "native", "naive", or None
    baseline: str | None
    #: recall@k of the selection against exact k-NN (sampled candidates only)
    recall: float | None = None
    notes: list[str] = field(default_factory=list)


def _layer_variants(layer: nn.Module) -> list[Variant]:
    params = [p for p in layer.parameters() if p.requires_grad]
    return [Variant("fast", lambda x: layer(x, path="auto"), params),
            Variant("reference", lambda x: layer(x, path="reference"), params)]


def _input(s: Settings, size: int, channels: int | None = None) -> Tensor:
    g = torch.Generator().manual_seed(s.seed)
    return torch.randn(s.batch, channels or s.channels, size, size, generator=g, dtype=s.dtype).to(s.device)


def _factory(s: Settings) -> dict:
    return {"device": s.device, "dtype": s.dtype}


def conv2d(s: Settings, size: int) -> Workload:
    """3x3 convolution, padding 1: ours vs ``F.conv2d``."""
    torch.manual_seed(s.seed)
    layer = operators.create("conv2d", in_channels=s.channels, out_channels=s.channels, kernel_size=3, padding=1,
                             **_factory(s))
    n = size * size
    variants = _layer_variants(layer)
    variants.append(Variant("native", lambda x: F.conv2d(x, layer.weight.view(s.channels, s.channels, 3, 3),
                                                         layer.bias, padding=1), variants[0].parameters))
    return Workload("conv2d", size, _input(s, size), 2.0 * s.batch * n * s.channels * s.channels * 9,
                    "2 B N C_in C_out 9", variants, "native")


def _convnn(s: Settings, name: str, **kw) -> nn.Module:
    torch.manual_seed(s.seed)
    return operators.create(name, in_channels=s.channels, out_channels=s.channels, k=s.k, **kw, **_factory(s))


def convnn2d(s: Settings, size: int) -> Workload:
    """ConvNN, cosine, k nearest among all tokens: ours vs the all-pairs form (and the public layer)."""
    layer = _convnn(s, "conv_nn2d")
    n = size * size
    variants = _layer_variants(layer)
    need = naive.convnn2d_all_pairs_bytes(s.batch, n, s.channels, s.k, s.dtype.itemsize)
    variants.append(Variant("naive", lambda x: naive.convnn2d_all_pairs(layer, x), variants[0].parameters,
                            **_over_cap(need, s)))
    notes = []
    if s.peer_dir is not None:
        peer, message = load_peer_convnn2d(s.peer_dir, layer)
        if peer is None:
            notes.append(message)
        else:
            variants.append(Variant("peer", peer, list(peer.parameters()), **_over_cap(need, s)))
    flops = 2.0 * s.batch * n * n * s.channels + 2.0 * s.batch * n * s.channels * s.channels * s.k
    return Workload("conv_nn2d", size, _input(s, size), flops, "2 B N^2 C + 2 B N C_in C_out k", variants, "naive",
                    notes=notes)


def _sampled_convnn(s: Settings, size: int, name: str, samples: int, candidates: int) -> Workload:
    layer = _convnn(s, name, samples=samples, seed=s.seed)
    x = _input(s, size)
    n = size * size
    flops = 2.0 * s.batch * n * candidates * s.channels + 2.0 * s.batch * n * s.channels * s.channels * s.k
    variants = _layer_variants(layer)
    return Workload(name, size, x, flops, f"2 B N S C + 2 B N C_in C_out k, S = {candidates} candidates",
                    variants, None, recall=recall_at_k(layer, _convnn(s, "conv_nn2d"), x))


def convnn2d_random(s: Settings, size: int) -> Workload:
    """ConvNN with N/16 random candidates (at least 4k)."""
    samples = min(size * size, max(4 * s.k, size * size // 16))
    return _sampled_convnn(s, size, "conv_nn2d_random", samples, samples)


def convnn2d_spatial(s: Settings, size: int) -> Workload:
    """ConvNN with a (size/4) x (size/4) evenly spaced candidate grid (at least 2k candidates)."""
    per_axis = min(size, max(math.isqrt(2 * s.k) + 1, size // 4))
    return _sampled_convnn(s, size, "conv_nn2d_spatial", per_axis, per_axis * per_axis)


def recall_at_k(sampled: nn.Module, exact: nn.Module, x: Tensor) -> float:
    """Mean fraction of each token's exact k nearest (all candidates) that the sampled selection also picks."""
    with torch.no_grad():
        got = sampled.neighborhood(x).index  # (b, n, k)
        want = exact.neighborhood(x).index
    hits = (got.unsqueeze(-1) == want.unsqueeze(-2)).any(-1)
    return float(hits.float().mean())


def self_attention2d(s: Settings, size: int) -> Workload:
    """One-head self-attention over the pixels: ours vs ``F.scaled_dot_product_attention`` on its q, k, v."""
    torch.manual_seed(s.seed)
    layer = operators.create("self_attention2d", in_channels=s.channels, **_factory(s))
    n = size * size
    variants = _layer_variants(layer)

    def native(x: Tensor) -> Tensor:
        # the attention core alone: the projections are 1x1 convolutions either way
        q, k = layer.selector.project(x)
        v = layer.combiner.values(x, layer.selector.num_heads)
        return F.scaled_dot_product_attention(q, k, v, scale=layer.selector.scale)

    variants.append(Variant("native", native, variants[0].parameters))
    flops = 4.0 * s.batch * n * n * s.channels + 8.0 * s.batch * n * s.channels * s.channels
    return Workload("self_attention2d", size, _input(s, size), flops, "4 B N^2 C + 8 B N C^2", variants, "native",
                    notes=["native = SDPA on the layer's own q, k, v (projections included, output projection not)"])


def n3_block2d(s: Settings, size: int) -> Workload:
    """The N3 block at the paper's denoising setting (k 7, 10x10 patches, stride 5, 80x80 window).

    Images smaller than the window search the whole image, noted in the results; the naive
    all-pairs form runs where the patches tile the image (the block pads other sizes).
    """
    torch.manual_seed(s.seed)
    block = operators.create("n3_block2d", in_channels=s.channels, window=N3_WINDOW, **_factory(s))
    sel = block.selector
    grid = sel.patches.grid((size, size))
    patches = math.prod(grid)
    index, _ = sel.candidates((size, size), torch.device("cpu"))
    m = index.shape[1]
    d_embed = sel.embedding[-1].out_channels * sel.patches.area
    d_value = s.channels * sel.patches.area
    hidden = sel.embedding[0].out_channels
    nets = 2 * 2.0 * s.batch * size * size * 9 * (s.channels * hidden + hidden * hidden)  # two 3-layer CNNs
    nets += 2.0 * s.batch * size * size * 9 * hidden * (d_embed // sel.patches.area + 1)
    flops = nets + 2.0 * s.batch * patches * m * d_embed + 2.0 * s.batch * patches * m * sel.k * d_value
    variants = _layer_variants(block)
    need = naive.n3_block2d_all_pairs_bytes(s.batch, patches, sel.k, d_value, s.dtype.itemsize)
    tiles = (size - sel.patches.patch_size[0]) % sel.patches.stride[0] == 0
    skip = {} if tiles else {"skip": "the patches do not tile the image (the block pads it; the all-pairs form "
                                     "covers tiling sizes)"}
    variants.append(Variant("naive", lambda x: naive.n3_block2d_all_pairs(block, x), variants[0].parameters,
                            **(skip or _over_cap(need, s))))
    notes = [] if size >= N3_WINDOW else [f"at {size}x{size} the {N3_WINDOW}px search window covers the whole image"]
    return Workload("n3_block2d", size, _input(s, size), flops,
                    "embedding/temperature CNNs + 2 B Np M d_e + 2 B Np M k C p^2", variants, "naive", notes=notes)


#: the paper's search window in pixels (Ploetz & Roth 2018, Sec. 5.2)
N3_WINDOW = 80


def _over_cap(need: int, s: Settings) -> dict:
    if need <= s.memory_cap:
        return {}
    return {"skip": f"estimated peak {need / 2**30:.1f} GiB > cap {s.memory_cap / 2**30:.1f} GiB",
            "estimated_bytes": need}


#: operator name -> workload builder; N3 has its own sizes (its patches must tile the image)
WORKLOADS: dict[str, Callable[[Settings, int], Workload]] = {
    "conv2d": conv2d, "conv_nn2d": convnn2d, "conv_nn2d_random": convnn2d_random,
    "conv_nn2d_spatial": convnn2d_spatial, "self_attention2d": self_attention2d, "n3_block2d": n3_block2d,
}
