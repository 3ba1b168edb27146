"""Backbones are plain torch networks the operator is swapped into: shapes, fit errors naming both sides,
parameters drawn in construction order, tiny end-to-end runs."""

import json

import pytest
import torch

from torch import nn

import operators
from comparisons.ablation.backbones import BACKBONES, DnCNN, OperatorDoesNotFit, ViT, build_backbone
from comparisons.cli import main
from comparisons.ablation.results import collect
from comparisons.ablation.specs import OperatorSpec, parse_operator_list
from comparisons.ablation.tasks import Digits, PhotoDenoise


@pytest.fixture(scope="module")
def digits():
    return Digits(subset=64)


def test_vgg_puts_the_operator_at_every_3x3_conv_but_the_stem(digits):
    model = build_backbone("vgg", OperatorSpec("convnn", name="convnn").resolve("vgg"), digits, width=2)
    convnn = [m for m in model.modules() if isinstance(m, operators.ConvNN2d)]
    assert len(convnn) == 7  # VGG-11's eight 3x3 convs, the first kept as the stem
    assert [p.size for p in model.places.values()] == [(4, 4)] * 7  # 8x8 digits pool once, then stay >= min_size
    report = model.swap_report
    assert [e.name for e in report.replaced] == list(model.places) and report.operator == "convnn"
    assert [e.name for e in report.skipped] == ["features.0"] and "not an operator place" in report.skipped[0].detail
    assert model(digits.train_x[:3]).shape == (3, 10)
    no_stem = build_backbone("vgg", OperatorSpec("convnn", name="convnn").resolve("vgg"), digits, width=2, stem=False)
    assert sum(isinstance(m, operators.ConvNN2d) for m in no_stem.modules()) == 8
    assert not any(isinstance(m, nn.Conv2d) for m in no_stem.modules())


def test_parts_and_names_build_the_same_network(digits):
    by_name = build_backbone("vgg", OperatorSpec("c", name="conv2d").resolve("vgg"), digits, width=2)
    by_parts = build_backbone("vgg", OperatorSpec("p", selector={"type": "FixedSpatial"},
                                                  combiner={"type": "Conv1D"}).resolve("vgg"), digits, width=2)
    places = tuple(by_name.places)
    by_parts.load_state_dict({k.replace(".weight", ".combiner.weight").replace(".bias", ".combiner.bias")
                              if k.startswith(places) else k: v for k, v in by_name.state_dict().items()})
    x = digits.train_x[:4]
    torch.testing.assert_close(by_parts.eval()(x), by_name.eval()(x))


def test_vit_mixes_tokens_with_1d_and_2d_operators(digits):
    for label in ("convnn", "conv2d"):
        model = build_backbone("vit", OperatorSpec(label, name=label).resolve("vit"), digits, dim=8, depth=1)
        assert model(digits.train_x[:2]).shape == (2, 10)
    convnn = OperatorSpec("convnn", name="convnn").resolve("vit")
    assert build_backbone("vit", convnn, digits, dim=8, depth=1).blocks[0].mixer.layout == "(B, C, N)"
    attention = build_backbone("vit", OperatorSpec("a", name="attention").resolve("vit"), digits, dim=8, depth=2)
    assert [type(m.mixer.layer).__name__ for m in attention.blocks] == ["SelfAttention"] * 2


def test_dncnn_predicts_the_noise_around_one_aggregation_block():
    task = PhotoDenoise(crop_size=32, crops_per_epoch=2, test_size=32, tile=32, validation_crops=1)
    model = build_backbone("dncnn", OperatorSpec("n3", name="n3").resolve("dncnn"), task, width=4)
    assert isinstance(model, DnCNN) and isinstance(model.aggregate, operators.N3Block2d)
    assert [e.name for e in model.swap_report.replaced] == ["aggregate"]
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
    config.write_text(json.dumps({"task_options": {"crop_size": 16, "crops_per_epoch": 32, "test_size": 32,
                                                   "tile": 16, "validation_crops": 4},
                                  "backbone_options": {"width": 4}, "recipe_options": {"batch_size": 16}}))
    assert main(["compare", "--task", "denoise", "--operators", "identity,conv2d", "--epochs", "2", "--seeds", "1",
                 "--config", str(config), "--out", str(tmp_path / "denoise")]) == 0
    records = collect([tmp_path / "denoise"])
    assert {r.metric for r in records} == {"psnr"} and all(r.val_value > 10 for r in records)
    finals = [r for r in records if r.epoch == 2]
    assert len(finals) == 2 and all(r.value > 10 and r.input_value > 20 for r in finals)
    assert all(r.value is None for r in records if r.epoch == 1)  # the test set is scored once
    config = tmp_path / "vit.json"
    config.write_text(json.dumps({"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"dim": 8, "depth": 1},
                                  "recipe_options": {"batch_size": 32}}))
    assert main(["compare", "--backbone", "vit", "--operators", "convnn", "--epochs", "2", "--seeds", "1",
                 "--config", str(config), "--out", str(tmp_path / "vit")]) == 0
    assert [r.backbone for r in collect([tmp_path / "vit"])] == ["vit", "vit"]


def _plain(name, task, **options):
    cls = BACKBONES[name]
    return cls(task.in_channels, task.image_size, **options) if cls is DnCNN else \
        cls(task.in_channels, task.num_classes, task.image_size, **options)


@pytest.mark.parametrize("name, options", [("vgg", dict(width=2)), ("vgg", dict(width=2, stem=False)),
                                           ("vit", dict(dim=8, depth=2)), ("dncnn", dict(width=4))])
@pytest.mark.parametrize("seed", [0, 3])
def test_swapping_in_draws_the_parameters_in_construction_order(digits, name, options, seed):
    """Swapping a conv2d factory in redraws the network exactly as constructing it (conv2d at each place) does:
    the same parameters in the same order, and the global RNG left in the same state."""
    task = digits if name != "dncnn" else PhotoDenoise(crop_size=16, crops_per_epoch=2, test_size=16, tile=16,
                                                       validation_crops=1)
    torch.manual_seed(seed)
    direct = _plain(name, task, **options)
    after_direct = torch.get_rng_state()
    conv = OperatorSpec("c", name="conv2d").resolve(name)
    torch.manual_seed(seed)
    swapped = build_backbone(name, conv, task, **options)
    assert torch.equal(torch.get_rng_state(), after_direct)
    mine, theirs = list(swapped.parameters()), list(direct.parameters())
    assert len(mine) == len(theirs) and all(torch.equal(a, b) for a, b in zip(mine, theirs))
    assert all(isinstance(swapped.get_submodule(q), operators.Conv2d) for q in swapped.places)
    x = task.test_noisy[:1] if name == "dncnn" else digits.train_x[:4]
    torch.testing.assert_close(swapped.eval()(x), direct.eval()(x))


def test_a_layer_that_keeps_its_parameters_unknown_to_reset_is_an_error(digits, monkeypatch):
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x * self.gain

    original = ViT.__init__

    def with_scale(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.extra = Scale()

    monkeypatch.setattr(ViT, "__init__", with_scale)
    with pytest.raises(TypeError, match=r"vit: extra \(Scale\) holds parameters but has no reset_parameters"):
        build_backbone("vit", OperatorSpec("c", name="conv2d").resolve("vit"), digits, dim=8, depth=1)


def test_an_operator_that_changes_the_shape_at_a_place_is_named(digits):
    spec = OperatorSpec("grow", name="conv2d", kwargs={"kernel_size": 3, "padding": 2})
    with pytest.raises(OperatorDoesNotFit, match=r"operator 'grow' does not fit backbone 'vgg11' at conv2 "
                                                 r"\(B, 2, 4, 4\) -> \(B, 4, 4, 4\): it maps \(2, 2, 4, 4\) to "
                                                 r"\(2, 4, 6, 6\)"):
        build_backbone("vgg", spec.resolve("vgg"), digits, width=2)
