"""Sweep configs are data (tomllib / json): operators by name or by parts, errors name the key and the line."""

import json
import sys

import pytest
import torch

from comparisons.ablation.config import ConfigError, load_config, parse_config
from comparisons.ablation.parts import Parts
from comparisons.ablation.presets import SELECTOR_VARIANTS, vary_selector
from comparisons.ablation.specs import OperatorSpec, parse_operator_list

TOML = """\
task = "digits"
epochs = 3

[backbone_options]
width = 4

[operators.mine]
selector = {type = "HardKNN", k = 9, space = "hybrid"}
combiner = {type = "Conv1D"}

[operators.wide]
name = "convnn2d"
k = 4
"""

needs_tomllib = pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is Python >= 3.11")


@needs_tomllib
def test_toml_config_gives_settings_and_operators_in_order():
    config = parse_config(TOML, "c.toml")
    assert config.settings == {"task": "digits", "epochs": 3, "backbone_options": {"width": 4}}
    mine, wide = config.operators
    assert (mine.label, mine.selector, mine.combiner) == ("mine", {"type": "HardKNN", "k": 9, "space": "hybrid"},
                                                          {"type": "Conv1D"})
    assert (wide.label, wide.name, wide.kwargs) == ("wide", "convnn2d", {"k": 4})
    assert mine.origin == "c.toml line 7"


def test_json_config_is_the_same_schema(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"seeds": 2, "operators": {"mine": {"selector": {"type": "N3", "k": 3},
                                                                   "combiner": {"type": "WeightedMean"}}}}))
    config = load_config(path)
    assert config.settings == {"seeds": 2}
    assert config.operators[0].combiner == {"type": "WeightedMean"}


@needs_tomllib
@pytest.mark.parametrize("text, line, key, why", [
    (TOML.replace("k = 9, space", "kk = 9, space"), 8, "operators.mine.selector.kk", "unknown key selector.kk"),
    (TOML.replace('type = "HardKNN"', 'type = "KNN"'), 8, "operators.mine.selector.type",
     "selector.type must be one of FixedSpatial, HardKNN, N3, SoftmaxAll"),
    (TOML.replace('{type = "Conv1D"}', '{type = "Sum"}'), 9, "operators.mine.combiner.type", "combiner.type"),
    (TOML.replace("epochs = 3", "epochs = 0"), 2, "epochs", "must be >= 1"),
    (TOML.replace("epochs = 3", 'epochs = "3"'), 2, "epochs", "must be int"),
    ("learning_rate = 1\n" + TOML, 1, "learning_rate", "unknown key"),
    (TOML.replace('name = "convnn2d"', 'name = "convnn2d"\nselector = {type = "HardKNN"}'), 12, "operators.wide.name",
     "not both"),
])
def test_bad_config_names_the_key_and_the_line(text, line, key, why):
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.toml")
    message = str(err.value)
    assert f"line {line}," in message and f"key {key}:" in message and why in message, message


@needs_tomllib
def test_toml_syntax_error_names_the_line():
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 2"):
        parse_config('task = "digits"\nepochs = = 3\n', "c.toml")


def test_json_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n  "epochs": 3,\n  "seeds": ,\n}')
    with pytest.raises(ConfigError, match=r"not valid JSON: .*line 3"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_config_is_never_executed(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"operators": {"x": {"name": "__import__('os').system('false')"}}}))
    spec = load_config(path).operators[0]  # a name is only ever looked up, so this is just an unknown name
    with pytest.raises(ValueError, match="unknown operator"):
        spec.resolve("vgg")


@pytest.mark.parametrize("selector", list(SELECTOR_VARIANTS.values()))
@pytest.mark.parametrize("combiner", ["Conv1D", "WeightedMean", "Projection"])
def test_every_selector_variant_builds_with_every_combiner(selector, combiner):
    layer = Parts(selector, {"type": combiner}).build(4, 6)
    y = layer(torch.randn(2, 4, 4, 4))
    assert y.shape == (2, 6, 4, 4) and torch.isfinite(y).all()
    y.sum().backward()


def test_vary_selector_holds_the_combiner_fixed():
    specs = vary_selector({"type": "WeightedMean"})
    assert [s.label for s in specs] == list(SELECTOR_VARIANTS)
    assert all(s.combiner == {"type": "WeightedMean"} for s in specs)
    assert len({s.selector["type"] for s in specs}) == 4


def test_operator_list_parses_keyword_arguments_as_data():
    a, b, c = parse_operator_list("conv2d, branching_conv2d(ratio=0.25, similarity=hybrid),convnn(k=4)")
    assert (a.name, a.kwargs) == ("conv2d", {})
    assert (b.name, b.kwargs) == ("branching_conv2d", {"ratio": 0.25, "similarity": "hybrid"})
    assert (c.resolve("vgg").description, c.resolve("vgg").layout) == ("convnn2d(k=4)", "(B, C, H, W)")
    assert (c.resolve("vit").description, c.resolve("vit").layout) == ("convnn1d(k=4)", "(B, C, N)")
    for bad, why in [("conv2d,,convnn", "empty entry"), ("convnn(k=4", "unclosed"), ("convnn(4)", "key=value"),
                     ("conv-2d", "NAME or NAME")]:
        with pytest.raises(ValueError, match=why):
            parse_operator_list(bad)


def test_unknown_operator_lists_shorthands_and_registered_names():
    with pytest.raises(ValueError, match=r"unknown operator 'convmixer'; shorthands: conv2d, convnn, .*registered"):
        OperatorSpec(label="convmixer", name="convmixer").resolve("vgg")
