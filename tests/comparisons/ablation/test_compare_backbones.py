"""Backbones with a pluggable operator: shapes, fit errors naming both sides, tiny end-to-end runs."""

import json

import pytest
import torch

from comparisons.ablation.backbones import DnCNN, OperatorDoesNotFit, build_backbone
from comparisons.cli import main
from comparisons.ablation.results import collect
from comparisons.ablation.specs import OperatorSpec, parse_operator_list
from comparisons.ablation.tasks import Denoise, Digits


@pytest.fixture(scope="module")
def digits():
    return Digits(subset=64)


def test_vgg_puts_the_operator_at_every_3x3_conv_but_the_stem(digits):
    model = build_backbone("vgg", OperatorSpec("convnn", name="convnn").resolve("vgg"), digits, width=2)
    slots = [m for m in model.modules() if type(m).__name__ == "OperatorSlot"]
    assert len(slots) == 7  # VGG-11's eight 3x3 convs, the first kept as the stem
    assert [s.size for s in slots] == [(4, 4)] * 7  # 8x8 digits pool once, then stay >= min_size
    assert model(digits.train_x[:3]).shape == (3, 10)
    no_stem = build_backbone("vgg", OperatorSpec("convnn", name="convnn").resolve("vgg"), digits, width=2, stem=False)
    assert sum(type(m).__name__ == "OperatorSlot" for m in no_stem.modules()) == 8


def test_parts_and_names_build_the_same_network(digits):
    by_name = build_backbone("vgg", OperatorSpec("c", name="conv2d").resolve("vgg"), digits, width=2)
    by_parts = build_backbone("vgg", OperatorSpec("p", selector={"type": "FixedSpatial"},
                                                  combiner={"type": "Conv1D"}).resolve("vgg"), digits, width=2)
    by_parts.load_state_dict({k.replace(".op.weight", ".op.combiner.weight").replace(".op.bias", ".op.combiner.bias"): v
                              for k, v in by_name.state_dict().items()})
    x = digits.train_x[:4]
    torch.testing.assert_close(by_parts.eval()(x), by_name.eval()(x))


def test_vit_mixes_tokens_with_1d_and_2d_operators(digits):
    for label in ("convnn", "conv2d"):
        model = build_backbone("vit", OperatorSpec(label, name=label).resolve("vit"), digits, dim=8, depth=1)
        assert model(digits.train_x[:2]).shape == (2, 10)
    convnn = OperatorSpec("convnn", name="convnn").resolve("vit")
    assert build_backbone("vit", convnn, digits, dim=8, depth=1).blocks[0].mixer.layout == "(B, C, N)"


def test_dncnn_predicts_the_noise_around_one_aggregation_block():
    task = Denoise(crop_size=32, crops_per_epoch=2, test_size=32, test_tiles=1)
    model = build_backbone("dncnn", OperatorSpec("n3", name="n3").resolve("dncnn"), task, width=4)
    assert isinstance(model, DnCNN) and model.aggregate.place == "aggregate"
    x = task.test_noisy
    assert model(x).shape == x.shape


def test_an_operator_that_cannot_fit_names_the_operator_and_the_backbone(digits):
    with pytest.raises(OperatorDoesNotFit, match=r"operator 'convnn\(k=20\)' does not fit backbone 'vgg11' at "
                                                 r"conv2 \(B, 2, 4, 4\) -> \(B, 4, 4, 4\): .*k"):
        build_backbone("vgg", parse_operator_list("convnn(k=20)")[0].resolve("vgg"), digits, width=2)
    with pytest.raises(ValueError, match="backbone 'dncnn' does not suit task 'digits'"):
        build_backbone("dncnn", OperatorSpec("c", name="conv2d").resolve("dncnn"), digits)


def test_tiny_denoise_and_vit_runs_learn(tmp_path):
    config = tmp_path / "denoise.json"
    config.write_text(json.dumps({"task_options": {"crop_size": 16, "crops_per_epoch": 32, "test_size": 16,
                                                   "test_tiles": 1},
                                  "backbone_options": {"width": 4}, "recipe_options": {"batch_size": 16}}))
    assert main(["compare", "--task", "denoise", "--operators", "identity,conv2d", "--epochs", "2", "--seeds", "1",
                 "--config", str(config), "--out", str(tmp_path / "denoise")]) == 0
    records = collect([tmp_path / "denoise"])
    assert {r.metric for r in records} == {"psnr"} and all(r.value > 10 for r in records)
    config = tmp_path / "vit.json"
    config.write_text(json.dumps({"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"dim": 8, "depth": 1},
                                  "recipe_options": {"batch_size": 32}}))
    assert main(["compare", "--backbone", "vit", "--operators", "convnn", "--epochs", "2", "--seeds", "1",
                 "--config", str(config), "--out", str(tmp_path / "vit")]) == 0
    assert [r.backbone for r in collect([tmp_path / "vit"])] == ["vit", "vit"]
