"""The untrained operators the figures, ``show`` and the explorer draw, configured to mean something.

Selection by position (convolution, location ConvNN) has no parameters; selection by
content does, and random ones say nothing about a photo. So content-based demos compare the
raw pixel colours: ConvNN's similarities have no parameters anyway, attention, N3 and the
criss-cross are built with ``identity_projections=True`` (no query / key / embedding maps),
and the Gaussian non-local block is ``softmax_j(x_i . x_j)`` by definition.

Every demo is keyed by a registered operator name, so ``neighbor-zoo show NAME`` finds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import operators

#: N3 demo: 3 x 3 patches every pixel, searched over the whole image, k = 3 volumes
N3_K = 3
N3_PATCH = 3
#: temperatures of the N3 figures, hot to cold (the scores are -|patch_q - patch_m|^2 on
#: standardised colours; the nearest patches of a photo are ~0.1-1 apart)
N3_TEMPERATURES = (10.0, 1.0, 0.03)


@dataclass(frozen=True)
class Demo:
    """One operator as the figures show it.

    Attributes:
        name: the registered operator name it is an instance of.
        title: a short panel title.
        build: ``build(channels, **options)`` -> the layer, for an input of ``channels`` channels;
            ``options`` are what ``show`` may override (``k``, ``temperature``) where it takes them.
        slots: neighbour volumes drawn one by one (N3); ``None`` paints all slots summed.
    """

    name: str
    title: str
    build: Callable[..., nn.Module]
    slots: int | None = None


def n3_demo(channels: int, temperature: float = 1.0, k: int = N3_K) -> nn.Module:
    """The N3 block on raw 3 x 3 patches with a fixed temperature (``temp_bias``, log t = 0)."""
    return operators.N3Block2d(channels, k=k, patch_size=N3_PATCH, patch_stride=1, window=None,
                               identity_projections=True, temperature="scalar", temp_bias=temperature)


def criss_cross_demo(channels: int) -> nn.Module:
    return operators.CrissCrossAttention2d(channels, identity_projections=True)


#: the neighbourhood-attention demo's window (Hassani et al. 2023 use 7 x 7)
NA_KERNEL = 7


def neighborhood_attention_demo(channels: int) -> nn.Module:
    """Neighbourhood attention on raw colours: a softmax over the 7 x 7 window (shifted inward at borders)."""
    return operators.NeighborhoodAttention2d(channels, num_heads=1, kernel_size=NA_KERNEL, identity_projections=True)


DEMOS: tuple[Demo, ...] = (
    Demo("conv2d", "Conv2d 3x3: fixed window", lambda c: operators.Conv2d(c, c, 3, padding=1)),
    Demo("conv_nn2d", "ConvNN k=9, cosine (features)",
         lambda c, k=9: operators.ConvNN2d(c, c, k=k, similarity="cosine")),
    Demo("conv_nn2d_location", "ConvNN k=9, location",
         lambda c, k=9: operators.ConvNN2d(c, c, k=k, similarity="location")),
    Demo("conv_nn2d_hybrid", "ConvNN k=9, hybrid",
         lambda c, k=9: operators.ConvNN2d(c, c, k=k, similarity="hybrid", hybrid_lambda=0.5)),
    Demo("neighborhood_attention2d", f"neighbourhood attention {NA_KERNEL}x{NA_KERNEL}",
         neighborhood_attention_demo),
    Demo("self_attention2d", "attention: softmax over all",
         lambda c: operators.SelfAttention2d(c, identity_projections=True)),
    Demo("non_local_block2d_gaussian", "non-local (Gaussian)",
         lambda c: operators.NonLocalBlock2d(c, mode="gaussian", sub_sample=False)),
    Demo("n3_block2d", f"N3 k={N3_K}, t={N3_TEMPERATURES[1]:g}",
         lambda c, k=N3_K, temperature=N3_TEMPERATURES[1]: n3_demo(c, temperature, k), slots=N3_K),
    Demo("criss_cross_attention2d", "criss-cross: row + column", criss_cross_demo),
)


def demo(name: str) -> Demo | None:
    """The demo of a registered operator name (or alias), if the figures have one."""
    name = operators.registry.canonical(name)
    return next((d for d in DEMOS if d.name == name), None)


def options(name: str) -> tuple[str, ...]:
    """The options (``k``, ``temperature``) the demo of ``name`` takes; ``()`` for a name without a demo."""
    d = demo(name)
    return () if d is None else tuple(inspect.signature(d.build).parameters)[1:]


def build(name: str, channels: int, seed: int = 0, **overrides) -> nn.Module:
    """The demo layer of ``name``, or ``operators.create(name, ...)`` with seeded random weights.

    ``overrides`` (``k=``, ``temperature=``) go to the demo's builder (which must take them,
    see :func:`options`) or, without a demo, to ``operators.create``. Layers are float64 and
    in eval mode (batch norms use their running statistics).
    """
    torch.manual_seed(seed)
    d = demo(name)
    if d is not None:
        unknown = sorted(set(overrides) - set(options(name)))
        if unknown:
            raise ValueError(f"the {name} demo takes {list(options(name)) or 'no options'}, got {unknown}")
        layer = d.build(channels, **overrides)
    else:
        layer = operators.create(name, in_channels=channels, **overrides)
    return layer.to(torch.float64).eval()
