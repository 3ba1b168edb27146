"""Every registered operator, built from its registry example, honours the module contract.

Like timm's tests/test_models.py, the registry drives this file: a new operator gets these
checks by being registered.
"""

import io

import pytest
import torch

import operators

NAMES = operators.available()


def build(name, dtype=torch.float32):
    ex = operators.example(name)
    layer = operators.create(name, **ex.kwargs).to(dtype)
    x = torch.randn(*ex.input_shape, dtype=dtype)
    return layer, x


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_finite(name):
    layer, x = build(name)
    x.requires_grad_(True)
    y = layer(x)
    assert y.shape[0] == x.shape[0]
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in layer.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: parameter {pname} got no gradient"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    layer, x = build(name)
    layer.eval()
    buf = io.BytesIO()
    torch.save(layer.state_dict(), buf)
    buf.seek(0)
    torch.manual_seed(1234)  # a differently initialised twin
    twin = operators.create(name, **operators.example(name).kwargs).eval()
    twin.load_state_dict(torch.load(buf))
    torch.testing.assert_close(twin(x), layer(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_repr_names_the_class(name):
    layer, _ = build(name)
    assert type(layer).__name__ in repr(layer)


def test_available_sorted_and_filtered():
    assert NAMES == sorted(NAMES)
    assert all(n.startswith("conv") for n in operators.available("conv*"))
    assert "conv2d" in operators.available("conv*")


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="conv2d"):
        operators.create("no-such-layer")


@pytest.mark.parametrize("name", NAMES)
def test_reset_parameters_reinitialises(name):
    layer, x = build(name)
    params = dict(layer.named_parameters())
    with torch.no_grad():  # perturb every parameter, then ask the layer to start afresh
        for p in params.values():
            p.add_(1.0)
    perturbed = {k: p.clone() for k, p in params.items()}
    torch.manual_seed(4321)
    layer.reset_parameters()
    kept = [k for k, p in layer.named_parameters() if torch.equal(p, perturbed[k])]
    assert not kept, f"{name}: reset_parameters left {kept} as they were"
    assert torch.isfinite(layer(x)).all()


def _fresh_draws(layer):
    """Re-seed every random source a forward may draw from (random candidate sampling)."""
    torch.manual_seed(0)
    for m in layer.modules():
        if isinstance(getattr(m, "generator", None), torch.Generator):
            m.generator.manual_seed(0)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_compile_matches_eager(name):
    # slow (seconds of compilation per layer): run with `bash scripts/test.sh -m slow`
    layer, x = build(name)
    layer.eval()
    torch._dynamo.reset()  # each layer compiled afresh, for its one input shape
    compiled = torch.compile(layer, dynamic=False)
    _fresh_draws(layer)
    eager = layer(x)
    _fresh_draws(layer)
    torch.testing.assert_close(compiled(x), eager, rtol=1e-5, atol=1e-5)


def _dynamic_shapes(name, example_shape, multiple=1):
    """The example, a larger non-square input (sequence / every spatial axis grown), and that with a larger batch.

    ``multiple``: the grown sizes stay multiples of it (a pixel-shuffled layer needs sizes its
    ``shuffle_scale`` divides).
    """
    grown = list(example_shape)
    axes = [1] if operators.info(name).layout == "(B, N, E)" else list(range(2, len(grown)))
    for i, axis in enumerate(axes):
        grown[axis] += (2 + i) * multiple  # 2-D: H + 2, W + 3 (times the multiple): a square example turns non-square
    bigger_batch = [grown[0] + 1, *grown[1:]]
    return [tuple(example_shape), tuple(grown), tuple(bigger_batch)]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_compile_dynamic_matches_eager(name):
    # slow (one dynamic-shape compilation per layer, plus its backward): `bash scripts/test.sh -m slow`
    layer, _ = build(name)
    layer.eval()
    torch._dynamo.reset()
    compiled = torch.compile(layer, dynamic=True)  # compiled once, then fed every shape
    multiple = max([getattr(m, "shuffle_scale", 1) for m in layer.modules()], default=1)
    shapes = _dynamic_shapes(name, operators.example(name).input_shape, multiple)
    for shape in shapes:
        x = torch.randn(*shape)
        _fresh_draws(layer)
        eager = layer(x)
        _fresh_draws(layer)
        out = compiled(x)
        assert out.shape == eager.shape, f"{name} at {shape}"
        torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name} at {shape}: {m}")
    # the input gradient through the compiled backward, on the grown (non-example) shape
    x = torch.randn(*shapes[1])
    grads = []
    for fn in (layer, compiled):
        xi = x.clone().requires_grad_(True)
        _fresh_draws(layer)
        y = fn(xi)
        upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))  # the same for both
        grads.append(torch.autograd.grad(y, xi, upstream)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5, msg=lambda m: f"{name} input grad: {m}")
