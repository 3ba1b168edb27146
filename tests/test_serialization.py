"""Layers serialise like torch's own: whole-module pickling and public state_dict keys in load errors.

Issue 9, items 1 (pickle / ``torch.save(module)``) and 8 (``load_state_dict`` errors name the
keys that ``state_dict()`` writes, never the internal ``combiner.*`` / ``selector.*`` ones).
"""

import copy
import io
import pickle

import pytest
import torch

import operators
from operators import Conv2d, NonLocalBlock2d, SelfAttention

NAMES = operators.available()


def _reseed(layer):
    """Re-seed every random source a forward may draw from (random candidate sampling)."""
    torch.manual_seed(0)
    for m in layer.modules():
        if isinstance(getattr(m, "generator", None), torch.Generator):
            m.generator.manual_seed(0)


def _torch_save_load(layer):
    buf = io.BytesIO()
    torch.save(layer, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


COPIES = {"pickle": lambda m: pickle.loads(pickle.dumps(m)), "torch.save": _torch_save_load,
          "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("name", NAMES)
def test_whole_module_round_trip(name):
    ex = operators.example(name)
    torch.manual_seed(0)
    layer = operators.create(name, **ex.kwargs).eval()
    x = torch.randn(*ex.input_shape)
    for how, copy_of in COPIES.items():
        _check_twin(layer, copy_of(layer), x)


def _check_twin(layer, twin, x):
    assert type(twin) is type(layer)
    want, got = layer.state_dict(), twin.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    _reseed(layer)
    expected = layer(x)
    _reseed(twin)
    torch.testing.assert_close(twin(x), expected, rtol=0, atol=0)
    # the copy's aliases still work: its state_dict loads back into the original
    layer.load_state_dict(twin.state_dict())


def _load_error(layer, state, strict=True):
    with pytest.raises(RuntimeError) as info:
        layer.load_state_dict(state, strict=strict)
    message = str(info.value)
    assert "combiner." not in message and "selector." not in message, message
    return message


def test_conv_load_errors_name_public_keys():
    layer = Conv2d(4, 6, 3)
    message = _load_error(layer, {"weight": torch.randn(6, 5, 3, 3), "bias": torch.randn(6)})
    assert "size mismatch for weight: copying a param with shape torch.Size([6, 5, 3, 3])" in message
    assert "the shape in current model is torch.Size([6, 4, 3, 3])" in message
    assert 'Missing key(s) in state_dict: "bias"' in _load_error(layer, {"weight": torch.randn(6, 4, 3, 3)})
    message = _load_error(layer, {**layer.state_dict(), "weights": torch.randn(1)})
    assert 'Unexpected key(s) in state_dict: "weights"' in message
    result = layer.load_state_dict({"weight": torch.randn(6, 4, 3, 3)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == []


def test_attention_load_errors_name_packed_keys():
    layer = SelfAttention(8, 2)
    state = layer.state_dict()
    message = _load_error(layer, {**state, "in_proj_weight": torch.randn(24, 6)})
    # one message for the packed tensor, with its packed shapes, not three for q, k, v
    assert message.count("size mismatch") == 1
    assert ("size mismatch for in_proj_weight: copying a param with shape torch.Size([24, 6]) from checkpoint, "
            "the shape in current model is torch.Size([24, 8])") in message
    assert "Missing key" not in message
    message = _load_error(layer, {k: v for k, v in state.items() if k != "in_proj_bias"})
    assert 'Missing key(s) in state_dict: "in_proj_bias". ' in message
    message = _load_error(layer, {**state, "in_proj_weight": torch.randn(21, 8)})
    assert "size mismatch for in_proj_weight" in message and "torch.Size([21, 8])" in message
    result = layer.load_state_dict({"out_proj.weight": state["out_proj.weight"]}, strict=False)
    assert result.missing_keys == ["in_proj_weight", "in_proj_bias", "out_proj.bias"]


def test_non_local_load_errors_name_public_keys():
    layer = NonLocalBlock2d(4)
    state = layer.state_dict()
    bad = {**state, "g.0.weight": torch.randn(2, 3, 1, 1)}
    del bad["W.1.running_mean"]
    message = _load_error(layer, bad)
    assert "size mismatch for g.0.weight: copying a param with shape torch.Size([2, 3, 1, 1])" in message
    assert 'Missing key(s) in state_dict: "W.1.running_mean"' in message


def test_nested_layer_load_errors_name_public_keys():
    layer = operators.BranchingConv2d(4, 6, ratio=0.5)
    state = layer.state_dict()
    assert "convnn.weight" in state
    message = _load_error(layer, {k: v for k, v in state.items() if k != "convnn.weight"})
    assert 'Missing key(s) in state_dict: "convnn.weight"' in message
