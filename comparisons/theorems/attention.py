"""Self-attention and the non-local block are softmax-over-all-keys neighbour aggregations."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from operators import NonLocalBlock1d, NonLocalBlock2d, SelfAttention, SelfAttention2d
from operators.non_local import MODES

from .base import Trial, describe, max_error, randn, theorem

HEADS = (1, 2, 4)
MASKS = ("none", "attn_bool", "attn_float", "key_padding", "both")


def mha_masks(kind: str, generator: torch.Generator, b: int, h: int, n: int, dtype: torch.dtype):
    """(attn_mask, key_padding_mask) in MultiheadAttention's convention; every query keeps a key."""
    attn = kpm = None
    if kind in ("attn_bool", "both"):
        attn = torch.rand(b * h, n, n, generator=generator) < 0.4
        attn[:, torch.arange(n), torch.arange(n)] = False
    if kind == "attn_float":
        attn = torch.randn(n, n, generator=generator, dtype=dtype)
    if kind in ("key_padding", "both"):
        kpm = torch.zeros(b, n, dtype=torch.bool)
        kpm[0, n - 2:] = True
        if attn is not None:
            attn[:, :, 0] = False  # key 0 stays visible to every query under both masks
    return attn, kpm


@theorem("self_attention==torch.mha", "SelfAttention loaded with nn.MultiheadAttention's state_dict equals it "
         "(fast and reference paths, masks, heads, batch_first both ways)")
def self_attention_mha(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    b, n, e = 3, 6, 8
    for heads in HEADS:
        for kind in MASKS:
            for batch_first in (True, False):
                mha = torch.nn.MultiheadAttention(e, heads, batch_first=batch_first, dtype=dtype)
                with torch.no_grad():
                    mha.in_proj_bias.normal_(generator=generator)
                    mha.out_proj.bias.normal_(generator=generator)
                ours = SelfAttention(e, heads, dtype=dtype)
                ours.load_state_dict(mha.state_dict())
                x = randn(generator, b, n, e, dtype=dtype)
                attn, kpm = mha_masks(kind, generator, b, heads, n, dtype)
                xt = x if batch_first else x.transpose(0, 1)

                def theirs() -> Tensor:
                    y = mha(xt, xt, xt, attn_mask=attn, key_padding_mask=kpm, need_weights=False)[0]
                    return y if batch_first else y.transpose(0, 1)

                for path in ("fast", "reference"):
                    def mine() -> Tensor:
                        return ours(x, attn, kpm, path=path)
                    err = max_error(mine, theirs, [x], generator,
                                    a_params=[ours.in_proj_weight, ours.in_proj_bias, ours.out_proj.weight,
                                              ours.out_proj.bias],
                                    b_params=[mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight,
                                              mha.out_proj.bias])
                    yield Trial(describe(x=x.shape, heads=heads, mask=kind, batch_first=batch_first, path=path), err)


def _sdpa_by_hand(layer: SelfAttention2d, x: Tensor, mask: Tensor | None) -> Tensor:
    """F.scaled_dot_product_attention on projections computed from the layer's weights."""
    q_lin, k_lin = layer.selector.query, layer.selector.key
    v_lin, o_lin = layer.combiner.value, layer.combiner.output
    tokens = x.flatten(2).transpose(1, 2)  # (b, n, c)
    h = layer.selector.num_heads

    def heads(t: Tensor) -> Tensor:
        return t.unflatten(-1, (h, -1)).transpose(1, 2)

    q, k, v = (heads(F.linear(tokens, m.weight, m.bias)) for m in (q_lin, k_lin, v_lin))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    y = F.linear(y.transpose(1, 2).flatten(2), o_lin.weight, o_lin.bias)
    return y.transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])


@theorem("attention.reference==sdpa", "SoftmaxAll + WeightedMean through the explicit neighbourhood equals "
         "F.scaled_dot_product_attention on the same projections (and so does the fast path)")
def attention_reference_sdpa(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for heads, shape, mask_kind in [(1, (2, 4, 3, 5), "none"), (2, (2, 4, 4, 4), "bool"), (4, (1, 8, 2, 6), "float"),
                                    (2, (3, 6, 3, 3), "bool4")]:
        layer = SelfAttention2d(shape[1], heads, qk_channels=8, value_channels=4 * heads, out_channels=5, dtype=dtype)
        x = randn(generator, *shape, dtype=dtype)
        n = shape[2] * shape[3]
        mask = None
        if mask_kind == "bool":
            mask = torch.rand(n, n, generator=generator) < 0.6
            mask[:, 0] = True
        elif mask_kind == "bool4":
            mask = torch.rand(shape[0], heads, n, n, generator=generator) < 0.5
            mask[..., -1] = True
        elif mask_kind == "float":
            mask = torch.randn(shape[0], n, n, generator=generator, dtype=dtype)
        direct_mask = mask if mask is None or mask.ndim != 3 else mask[:, None]
        wrt = [x, *layer.parameters()]
        for path in ("reference", "fast"):
            err = max_error(lambda: layer(x, mask, path=path), lambda: _sdpa_by_hand(layer, x, direct_mask), wrt,
                            generator)
            yield Trial(describe(x=x.shape, heads=heads, mask=mask_kind, path=path), err)


def nonlocal_by_formula(block: NonLocalBlock1d | NonLocalBlock2d, x: Tensor) -> Tensor:
    """Wang et al. 2018, Eqs. 1-6 written out: z = W(y) + x, y_i = 1/C sum_j f(x_i, x_j) g(x_j)."""
    theta = block.theta(x).flatten(2).transpose(1, 2)  # (b, q, d)
    phi = block.phi(x).flatten(2).transpose(1, 2)  # (b, n, d)
    g = block.g(x).flatten(2).transpose(1, 2)  # (b, n, c)
    if block.mode in ("embedded_gaussian", "gaussian"):
        f = torch.exp(theta @ phi.transpose(1, 2))
        a = f / f.sum(-1, keepdim=True)
    elif block.mode == "dot_product":
        a = theta @ phi.transpose(1, 2) / phi.shape[1]
    else:
        w = block.selector.concat_project.weight[0]
        pairs = torch.cat([theta.unsqueeze(2).expand(-1, -1, phi.shape[1], -1),
                           phi.unsqueeze(1).expand(-1, theta.shape[1], -1, -1)], dim=-1)  # (b, q, n, 2d)
        a = torch.relu(pairs @ w) / phi.shape[1]
    y = (a @ g).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])
    return block.W(y) + x


def _randomise_w(block: torch.nn.Module, generator: torch.Generator) -> None:
    """W starts at zero (the block is the identity); give it weights so the theorem has content.

    W's BatchNorm runs in eval mode with random running statistics: in training mode the
    gradient of the conv bias before it is analytically zero, and comparing two round-offs
    of zero says nothing about the aggregation this theorem is about.
    """
    with torch.no_grad():
        for p in block.W.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.5)
        for name, buf in block.W.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=generator, dtype=buf.dtype) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=generator, dtype=buf.dtype) + 0.5)
    block.eval()


def _nonlocal_trials(mode: str, generator: torch.Generator, dtype: torch.dtype, paths: Sequence[str],
                     against_formula: bool = True) -> Iterator[Trial]:
    for cls, shape in ((NonLocalBlock2d, (2, 4, 4, 6)), (NonLocalBlock1d, (3, 6, 10))):
        for sub_sample in (False, True):
            for bn_layer in (True, False):
                block = cls(shape[1], inter_channels=3, mode=mode, sub_sample=sub_sample, bn_layer=bn_layer,
                            dtype=dtype)
                _randomise_w(block, generator)
                x = randn(generator, *shape, dtype=dtype)
                wrt = [x, *block.parameters()]
                for path in paths:
                    other = (lambda: nonlocal_by_formula(block, x)) if against_formula else \
                        (lambda: block(x, path="reference"))
                    err = max_error(lambda: block(x, path=path), other, wrt, generator)
                    yield Trial(describe(block=cls.__name__, x=x.shape, sub_sample=sub_sample, bn=bn_layer,
                                         path=path), err)


_STATEMENTS = {
    "embedded_gaussian": "the embedded-Gaussian non-local block equals self-attention "
                         "softmax(theta^T phi) g with the same projections, plus W and the residual",
    "gaussian": "the Gaussian non-local block weights keys by softmax_j(x_i^T x_j)",
    "dot_product": "the dot-product non-local block normalises theta^T phi by the number of keys N",
    "concatenation": "the concatenation non-local block weights keys by ReLU(w_f^T [theta_i, phi_j]) / N",
}

for _mode in MODES:
    theorem(f"nonlocal.{_mode}==formula", f"{_STATEMENTS[_mode]} (Wang et al. 2018, Eqs. 1-6)")(
        lambda generator, dtype, _m=_mode: _nonlocal_trials(_m, generator, dtype, ("auto", "reference")))


@theorem("nonlocal.fast==reference", "the softmax non-local modes' F.scaled_dot_product_attention fast path "
         "equals their reference path")
def nonlocal_fast(generator: torch.Generator, dtype: torch.dtype) -> Iterator[Trial]:
    for mode in ("embedded_gaussian", "gaussian"):
        yield from _nonlocal_trials(mode, generator, dtype, ("fast",), against_formula=False)
