"""SelfAttention (drop-in for nn.MultiheadAttention), SelfAttention2d and the non-local block."""

import io

import pytest
import torch

import operators
from comparisons.theorems import THEOREMS, verify
from operators import NonLocalBlock1d, NonLocalBlock2d, SelfAttention, SelfAttention2d
from operators.non_local import MODES

THEOREM_NAMES = ["self_attention==torch.mha", "attention.reference==sdpa", "nonlocal.fast==reference",
                 *[f"nonlocal.{m}==formula" for m in MODES]]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", THEOREM_NAMES)
def test_theorems(name, dtype):
    verdict = verify(THEOREMS[name], 0, dtype)
    assert verdict.passed, [(t.shapes, t.error) for t in verdict.trials if not t.error <= verdict.tolerance]


@pytest.mark.parametrize("bias", [True, False])
def test_mha_state_dict_saved_to_disk_loads_both_ways(bias):
    mha = torch.nn.MultiheadAttention(12, 3, bias=bias, batch_first=True, dtype=torch.float64)
    buf = io.BytesIO()
    torch.save(mha.state_dict(), buf)
    buf.seek(0)
    ours = SelfAttention(12, 3, bias=bias, dtype=torch.float64)
    ours.load_state_dict(torch.load(buf))
    assert set(ours.state_dict()) == set(mha.state_dict())
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    torch.testing.assert_close(ours(x), mha(x, x, x, need_weights=False)[0], rtol=0, atol=1e-10)
    back = torch.nn.MultiheadAttention(12, 3, bias=bias, batch_first=True, dtype=torch.float64)
    back.load_state_dict(ours.state_dict())
    torch.testing.assert_close(back(x, x, x, need_weights=False)[0], ours(x), rtol=0, atol=1e-10)


def test_mha_initialisation_statistics():
    ours, mha = SelfAttention(64, 4), torch.nn.MultiheadAttention(64, 4)
    w = ours.state_dict()["in_proj_weight"]
    assert w.abs().max() <= mha.in_proj_weight.abs().max() * 1.05 and w.std() > 0.8 * mha.in_proj_weight.std()
    assert (ours.state_dict()["in_proj_bias"] == 0).all() and (ours.state_dict()["out_proj.bias"] == 0).all()


def test_gradcheck_attention_layers():
    sa = SelfAttention(4, 2, dtype=torch.float64)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    kpm = torch.tensor([[False, False, True], [False, False, False]])
    assert torch.autograd.gradcheck(lambda x: sa(x, key_padding_mask=kpm, path="reference"), (x,))
    sa2 = SelfAttention2d(2, 2, qk_channels=4, value_channels=2, dtype=torch.float64)
    x2 = torch.randn(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sa2(x, path="reference"), (x2,))


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_nonlocal(mode):
    block = NonLocalBlock2d(2, inter_channels=2, mode=mode, sub_sample=True, bn_layer=False, dtype=torch.float64)
    with torch.no_grad():
        for p in block.W.parameters():
            p.normal_()
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: block(x, path="reference"), (x,))


@pytest.mark.parametrize("cls, shape", [(NonLocalBlock1d, (2, 6, 8)), (NonLocalBlock2d, (2, 6, 4, 4))])
@pytest.mark.parametrize("mode", MODES)
def test_nonlocal_starts_as_identity_with_named_submodules(cls, shape, mode):
    block = cls(6, mode=mode)
    x = torch.randn(*shape)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    for name in ("g", "theta", "phi", "W"):
        assert isinstance(getattr(block, name), torch.nn.Module)
    assert isinstance(block.W[1], torch.nn.modules.batchnorm._BatchNorm) and (block.W[1].weight == 0).all()
    assert block.inter_channels == 3
    n_keys = block.neighborhood(x).num_keys
    assert n_keys == x[0, 0].numel() // (2 ** (len(shape) - 2))  # sub_sample max-pools the keys by 2 per axis


def test_nonlocal_dot_product_normalises_by_key_count():
    block = NonLocalBlock2d(3, inter_channels=2, mode="dot_product", sub_sample=False)
    x = torch.randn(1, 3, 3, 4)
    nbhd = block.neighborhood(x)
    theta = block.theta(x).flatten(2)[0]
    phi = block.phi(x).flatten(2)[0]
    torch.testing.assert_close(nbhd.weight[0, 0, ..., 0], theta.T @ phi / 12)


def test_registry_lists_new_families():
    for name, fam in [("self_attention", "attention"), ("self_attention2d", "attention"), ("nonlocal2d", "nonlocal"),
                      ("nonlocal1d", "nonlocal"), ("nonlocal2d_concatenation", "nonlocal")]:
        assert operators.canonical(name) in operators.available() and operators.family(name) == fam


def test_bad_input():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads, got embed_dim=10, num_heads=4"):
        SelfAttention(10, 4)
    with pytest.raises(ValueError, match="value_channels must be divisible by num_heads"):
        SelfAttention2d(6, num_heads=4, qk_channels=8)
    sa = SelfAttention(8, 2)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(N, N\)=\(5, 5\)"):
        sa(x, attn_mask=torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B, N\)=\(2, 5\)"):
        sa(x, key_padding_mask=torch.zeros(5, dtype=torch.bool))
    with pytest.raises(TypeError, match="attn_mask must be bool or floating point"):
        sa(x, attn_mask=torch.zeros(5, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="x must have 8 channels in dim 2"):
        sa(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="x must have 3 dimensions"):
        sa(torch.randn(2, 8, 5, 1))
    with pytest.raises(ValueError, match="mask must have shape"):
        SelfAttention2d(4)(torch.randn(1, 4, 2, 3), mask=torch.ones(5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="mode must be one of"):
        NonLocalBlock2d(4, mode="cosine")
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        NonLocalBlock2d(4)(torch.randn(2, 4, 9))


@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian", "dot_product", "concatenation"])
def test_nonlocal_state_dict_uses_wang_et_al_names(mode):
    block = NonLocalBlock2d(8, mode=mode)
    keys = set(block.state_dict())
    assert {"g.0.weight", "W.0.weight", "W.1.running_mean"} <= keys
    assert not any(k.startswith(("selector.", "combiner.")) for k in keys)
    if mode != "gaussian":
        assert {"theta.weight", "phi.0.weight"} <= keys
    twin = NonLocalBlock2d(8, mode=mode)
    twin.load_state_dict(block.state_dict())
    for (k, a), b in zip(block.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), k


def test_self_attention_neighborhood_is_mha_weights():
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    attn = SelfAttention(8, 2, dtype=torch.float64)
    attn.load_state_dict(mha.state_dict())
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[0, 3:] = True
    ours = attn.neighborhood(x, key_padding_mask=pad).weight.squeeze(-1)  # (B, H, N, N)
    theirs = mha(x, x, x, key_padding_mask=pad, need_weights=True, average_attn_weights=False)[1]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
