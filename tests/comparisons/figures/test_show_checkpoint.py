"""`neighbor-zoo show --checkpoint RUN_DIR`: a trained compare model's layer against the same layer untrained."""

import json

import pytest
import torch

from comparisons.cli import main
from comparisons.figures.checkpoint_view import layers, rebuild

TINY = {"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"width": 2},
        "recipe_options": {"batch_size": 32}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path_factory.mktemp("compare")
    assert main(["compare", "--config", str(config), "--operators", "attention", "--epochs", "2", "--seeds", "1",
                 "--out", str(out)]) == 0
    (folder,) = (out / "runs").iterdir()
    return folder


def test_rebuild_gives_the_saved_weights_and_the_initial_ones(run_dir):
    run, untrained, trained, record, epoch = rebuild(run_dir)
    saved = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert epoch == saved["epoch"] == record.epoch == 2
    for name, value in trained.state_dict().items():
        assert torch.equal(value, saved["model"][name]), name
    changed = [n for n, v in untrained.state_dict().items() if not torch.equal(v, saved["model"][n])]
    assert changed, "training changed no weight: the untrained model is the trained one"
    assert list(layers(trained)) == list(layers(untrained)) and layers(trained)


def test_show_checkpoint_draws_untrained_and_trained(run_dir, tmp_path, capsys):
    out = tmp_path / "ck.png"
    assert main(["show", "--checkpoint", str(run_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "untrained vs trained" in text and "untrained pixel" in text and "picks shared" in text
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "{tmp}"], "--checkpoint: run_dir must be a run folder of `neighbor-zoo compare`"),
    (["no_such_layer", "--checkpoint", "{run}"], "OPERATOR with --checkpoint names one of the model's layers"),
    (["--checkpoint", "{run}", "--pixel", "99,0"], "--pixel must lie inside the layer's"),
])
def test_show_checkpoint_usage_errors(run_dir, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in argv]
    assert main(["show", *argv, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
