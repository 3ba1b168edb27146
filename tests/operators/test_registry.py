"""The registry's naming rule, aliases, case-insensitive lookup, did-you-mean and filters."""

import pytest

import operators
from operators.registry import entry, snake_case

#: every name the catalogue answered to before the naming rule, and what it is now
OLD_NAMES = {
    "conv1d": "conv1d", "conv2d": "conv2d", "convnn1d": "conv_nn1d", "convnn2d": "conv_nn2d",
    "convnn2d_euclidean": "conv_nn2d_euclidean", "convnn2d_location": "conv_nn2d_location",
    "convnn2d_hybrid": "conv_nn2d_hybrid", "convnn2d_random": "conv_nn2d_random",
    "convnn2d_spatial": "conv_nn2d_spatial", "branching_conv2d": "branching_conv2d",
    "self_attention": "self_attention", "self_attention2d": "self_attention2d",
    "nonlocal1d": "non_local_block1d", "nonlocal2d": "non_local_block2d",
    "nonlocal2d_gaussian": "non_local_block2d_gaussian", "nonlocal2d_dot_product": "non_local_block2d_dot_product",
    "nonlocal2d_concatenation": "non_local_block2d_concatenation", "n3block1d": "n3_block1d",
    "n3block2d": "n3_block2d", "knnblock2d": "knn_block2d", "nonlocal_stage1d": "non_local_stage1d",
    "nonlocal_stage2d": "non_local_stage2d", "double_attention1d": "double_attention1d",
    "double_attention2d": "double_attention2d", "cgnl1d": "cgnl1d", "cgnl2d": "cgnl2d", "snl1d": "snl1d",
    "snl2d": "snl2d", "gsnl1d": "snl1d_order2", "gsnl2d": "snl2d_order2", "cayley_snl1d": "cayley_snl1d",
    "cayley_snl2d": "cayley_snl2d", "criss_cross_attention2d": "criss_cross_attention2d",
}


@pytest.mark.parametrize("class_name, name", [("Conv2d", "conv2d"), ("ConvNN2d", "conv_nn2d"),
                                              ("N3Block2d", "n3_block2d"), ("KNNBlock2d", "knn_block2d"),
                                              ("NonLocalBlock1d", "non_local_block1d"), ("CGNL2d", "cgnl2d"),
                                              ("CayleySNL1d", "cayley_snl1d"), ("SelfAttention", "self_attention")])
def test_snake_case(class_name, name):
    assert snake_case(class_name) == name


@pytest.mark.parametrize("name", operators.available())
def test_every_name_follows_the_rule(name):
    # <snake_case of the class> or <snake_case of the class>_<variant>
    e = entry(name)
    stem = snake_case(e.target.__name__)
    assert name == stem or (name.startswith(stem + "_") and e.defaults), name


@pytest.mark.parametrize("old, new", sorted(OLD_NAMES.items()))
def test_old_names_are_aliases(old, new):
    assert operators.canonical(old) == new
    assert operators.canonical(old.upper()) == new
    assert operators.example(old) == operators.example(new)
    assert type(operators.create(old, **operators.example(old).kwargs)) is entry(new).target


def test_names_are_case_insensitive():
    layer = operators.create("Conv_NN2D", in_channels=3, k=4)
    assert type(layer) is operators.ConvNN2d and layer.out_channels == 3


@pytest.mark.parametrize("typo, suggestion", [("conv2", "conv2d"), ("nonlocal_block2d", "non_local_block2d"),
                                              ("self_atention2d", "self_attention2d"), ("n3block2", "n3_block2d")])
def test_unknown_name_suggests_and_lists(typo, suggestion):
    with pytest.raises(ValueError, match=f"unknown operator name '{typo}'; did you mean .*'{suggestion}'") as err:
        operators.create(typo)
    assert "available: " in str(err.value) and "snl2d_order2" in str(err.value)
    with pytest.raises(ValueError, match="unknown operator name 'zzz'; available: "):
        operators.info("zzz")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match="name must be a str, got int"):
        operators.create(3)


def test_aliases_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="operator name 'conv2d' is already registered"):
        operators.register(operators.Conv2d, family="convolution", example=operators.example("conv2d"))


@pytest.mark.parametrize("pattern, expected", [
    ("conv*", {"conv1d", "conv2d", "conv_nn1d", "conv_nn2d"}),  # wildcard over the whole name
    ("CONV?D", {"conv1d", "conv2d", "conv3d"}),
    ("attention2d", {"self_attention2d", "double_attention2d", "criss_cross_attention2d", "cordonnier_attention2d",
                     "neighborhood_attention2d"}),  # substring
    ("[cs]nl1d", {"snl1d"}),  # a set: the whole name, so not cgnl1d
])
def test_match_is_substring_or_wildcard_case_insensitive(pattern, expected):
    found = set(operators.match(operators.available(), pattern))
    assert expected <= found
    if "*" not in pattern:
        assert found == expected


def test_match_keeps_order_and_none_keeps_all():
    names = ["b_x", "A_x", "c"]
    assert operators.match(names, "_X") == ["b_x", "A_x"]
    assert operators.match(names, None) == names
    assert operators.match(names, "nothing") == []
    with pytest.raises(TypeError, match="pattern must be a str or None"):
        operators.match(names, 3)


def test_create_rejects_in_channels_twice_and_unknown_out_channels():
    with pytest.raises(TypeError, match="got both in_channels=8 and embed_dim=8"):
        operators.create("self_attention", in_channels=8, embed_dim=8)
