"""The concatenation non-local block loads the reference implementation's state_dict layout.

Wang et al.'s public PyTorch reference keeps ``concat_project`` as ``Sequential(Conv2d(2I, 1, 1),
ReLU)``, so it saves ``concat_project.0.weight`` with shape ``(1, 2I, 1, 1)``; we keep
``concat_project.weight`` ``(1, 2I)``. The state_dict below is written by hand from the
reference's module shapes (no reference code is needed).
"""

import pytest
import torch

from operators import NonLocalBlock1d, NonLocalBlock2d

C, I = 6, 3  # noqa: E741  (the paper's inter_channels)


def reference_layout(spatial: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Keys and shapes of the reference's concatenation block with sub_sample=True, bn_layer=True."""
    conv = (1,) * spatial  # a 1x1 conv kernel in `spatial` dims
    r = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    return {
        "g.0.weight": r(I, C, *conv), "g.0.bias": r(I),
        "W.0.weight": r(C, I, *conv), "W.0.bias": r(C),
        "W.1.weight": r(C), "W.1.bias": r(C), "W.1.running_mean": r(C), "W.1.running_var": r(C).abs() + 0.5,
        "W.1.num_batches_tracked": torch.tensor(7),
        "theta.weight": r(I, C, *conv), "theta.bias": r(I),
        "phi.0.weight": r(I, C, *conv), "phi.0.bias": r(I),
        "concat_project.0.weight": r(1, 2 * I, 1, 1),  # a Conv2d even in the 1-D block
    }


def by_formula(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Eq. 7 of Wang et al. on tokens, with max-pooled keys/values and eval-mode BatchNorm."""
    spatial = x.dim() - 2
    pool = torch.nn.functional.max_pool1d if spatial == 1 else torch.nn.functional.max_pool2d
    flat = lambda w: w.reshape(w.shape[0], -1)  # noqa: E731

    def project(name: str, t: torch.Tensor, pooled: bool) -> torch.Tensor:  # (B, C, *s) -> (B, N, I)
        out = torch.einsum("oc,bc...->bo...", flat(state[name + "weight"]), t) + state[name + "bias"].view(
            -1, *(1,) * spatial)
        return (pool(out, 2) if pooled else out).flatten(2).transpose(1, 2)

    theta, phi, g = project("theta.", x, False), project("phi.0.", x, True), project("g.0.", x, True)
    w = state["concat_project.0.weight"].reshape(-1)
    f = torch.relu((theta @ w[:I])[:, :, None] + (phi @ w[I:])[:, None, :])  # (B, N, N/2^d)
    y = (f / f.shape[-1]) @ g  # (B, N, I)
    wy = y @ flat(state["W.0.weight"]).T + state["W.0.bias"]
    bn = (wy - state["W.1.running_mean"]) / torch.sqrt(state["W.1.running_var"] + 1e-5)
    bn = bn * state["W.1.weight"] + state["W.1.bias"]
    return x + bn.transpose(1, 2).reshape(x.shape)


@pytest.mark.parametrize("cls, shape", [(NonLocalBlock1d, (2, C, 8)), (NonLocalBlock2d, (2, C, 4, 6))])
def test_loads_the_reference_layout(cls, shape):
    generator = torch.Generator().manual_seed(0)
    state = reference_layout(len(shape) - 2, generator)
    block = cls(C, inter_channels=I, mode="concatenation", dtype=torch.float64).eval()
    block.load_state_dict(state)  # strict: every key consumed, none missing
    x = torch.randn(*shape, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(block(x), by_formula(state, x), rtol=1e-10, atol=1e-10)
    # saved in our own layout, which loads back to the same block
    saved = block.state_dict()
    assert "concat_project.0.weight" not in saved
    assert saved["concat_project.weight"].shape == (1, 2 * I)
    twin = cls(C, inter_channels=I, mode="concatenation", dtype=torch.float64).eval()
    twin.load_state_dict(saved)
    torch.testing.assert_close(twin(x), block(x))


def test_a_reference_weight_of_the_wrong_shape_is_named():
    state = reference_layout(2, torch.Generator().manual_seed(0))
    state["concat_project.0.weight"] = torch.zeros(1, 2 * I + 2, 1, 1, dtype=torch.float64)
    block = NonLocalBlock2d(C, inter_channels=I, mode="concatenation", dtype=torch.float64)
    with pytest.raises(ValueError, match=r"concat_project\.0\.weight.*\(1, 6, 1, 1\)"):
        block.load_state_dict(state)


def test_other_modes_do_not_take_a_concat_project():
    state = reference_layout(2, torch.Generator().manual_seed(0))
    block = NonLocalBlock2d(C, inter_channels=I, mode="embedded_gaussian", dtype=torch.float64)
    with pytest.raises(RuntimeError, match="concat_project"):
        block.load_state_dict(state)  # strict loading reports the key this mode has no use for
