"""The one-way route of an operator: resolved once per sweep, parts checked once, each model built once."""

import json

import pytest
import torch

from comparisons.ablation import parts, specs, train
from comparisons.ablation.recipes import get_recipe
from comparisons.ablation.results import RunStore
from comparisons.ablation.specs import OperatorSpec
from comparisons.ablation.sweep import Sweep
from comparisons.cli import main

TINY = {"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"width": 2},
        "recipe_options": {"batch_size": 32},
        "operators": {"knn": {"selector": {"type": "HardKNN", "k": 4}},  # a part-described one ...
                      "sampled": {"name": "convnn2d", "sampling": "random", "samples": 12}}}  # ... and a named one


def _count(monkeypatch, owner, name):
    calls = []
    real = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_compare_resolves_checks_and_builds_each_thing_once(tmp_path, monkeypatch):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    resolves = _count(monkeypatch, specs.OperatorSpec, "resolve")
    checks = _count(monkeypatch, parts, "check_part")
    builds = _count(monkeypatch, train, "build_backbone")
    assert main(["compare", "--config", str(config), "--epochs", "1", "--seeds", "2", "--out", str(tmp_path / "o")]) == 0
    assert len(resolves) == 2  # per operator, when the sweep is made
    assert len(checks) == 2  # the part-described operator's selector and combiner, when its spec is made
    assert len(builds) == 2 * 2  # per run: the pre-flight check's model is the first seed's
    assert len(list((tmp_path / "o" / "runs").glob("*/records.jsonl"))) == 4


@pytest.mark.parametrize("operator", [OperatorSpec("sampled", name="convnn2d", kwargs={"sampling": "random",
                                                                                         "samples": 12}),
                                      OperatorSpec("n3", name="n3")])
def test_a_run_trained_from_the_checks_model_equals_one_that_builds_its_own(operator, tmp_path):
    sweep = Sweep(task="digits", backbone="vgg", operators=(operator,), recipe=get_recipe("default").replace(batch_size=32),
                  epochs=2, seeds=(5,), task_options={"subset": 64, "test_subset": 100},
                  backbone_options={"width": 2})
    (run,) = sweep.runs()
    own = train.train_run(run, RunStore(tmp_path / "own", run.id), torch.device("cpu"))
    built = train.build_model(run)
    torch.manual_seed(123)  # whatever ran in between (other operators' checks) must not matter
    torch.rand(10)
    reused = train.train_run(run, RunStore(tmp_path / "reused", run.id), torch.device("cpu"), built=built)
    # the same kernels on the same shapes in the same order: bitwise equal
    assert [r.numbers for r in reused] == [r.numbers for r in own]
    assert [r.parameters for r in reused] == [r.parameters for r in own]


def test_backbones_are_plain_networks_and_never_see_a_spec():
    import inspect

    from comparisons.ablation.backbones import DnCNN, VGG, ViT, build_backbone

    assert "factory" in inspect.signature(build_backbone).parameters
    for fn in (build_backbone, VGG.__init__, ViT.__init__, DnCNN.__init__):
        assert "spec" not in inspect.signature(fn).parameters, fn
    for fn in (VGG.__init__, ViT.__init__, DnCNN.__init__):  # the operator is swapped in, not built inside
        assert "factory" not in inspect.signature(fn).parameters, fn
