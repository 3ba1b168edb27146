"""`neighbor-zoo compare` / `report` end to end on tiny sweeps: results, resume, shards, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from comparisons.ablation import command as compare_command
from comparisons.ablation.results import collect
from comparisons.cli import main

TIMING = ("seconds", "peak_memory_mb")
# two batches of 32 digits per epoch, a VGG of width 2: a sweep runs in seconds
TINY = {"task_options": {"subset": 64, "test_subset": 100}, "backbone_options": {"width": 2}, "recipe_options": {"batch_size": 32}}
# random candidate sampling draws from the global RNG (first) and from a module-owned generator (second):
# a resume must restore both to reproduce the run
OPERATORS = "convnn2d(sampling=random, samples=12),convnn2d(sampling=random, samples=12, seed=3)"


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def compare(config, out, *extra):
    return main(["compare", "--config", str(config), "--operators", OPERATORS, "--epochs", "2", "--seeds", "1",
                 "--out", str(out), *extra])


def numbers(folder):
    return [{k: v for k, v in r.to_json().items() if k not in TIMING} for r in collect([folder])]


@pytest.fixture(scope="module")
def uninterrupted(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    assert compare(tiny_config, out) == 0
    return out


def test_compare_writes_records_report_and_plots(uninterrupted):
    records = collect([uninterrupted])
    assert len(records) == 2 * 2  # one per (operator, seed, epoch)
    assert {(r.operator, r.epoch) for r in records} == {
        (op, e) for op in ("convnn2d(sampling=random, samples=12)", "convnn2d(sampling=random, samples=12, seed=3)")
        for e in (1, 2)}
    for name in ("results.jsonl", "report.md", "metric_vs_epoch.png", "metric_vs_parameters.png",
                 "seconds_per_epoch.png", "sweep.json"):
        assert (uninterrupted / name).stat().st_size > 0, name
    report = (uninterrupted / "report.md").read_text()
    assert "| convnn2d(sampling=random, samples=12) |" in report and "![metric_vs_epoch.png](metric_vs_epoch.png)" in report
    assert not list(uninterrupted.rglob("*.tmp"))


def test_interrupted_run_resumes_to_the_same_numbers(tiny_config, uninterrupted, tmp_path, monkeypatch, capsys):
    real = compare_command.train_run

    def interrupt_after_first_epoch_of_second_run(run, store, device, on_epoch=None, on_start=None, built=None):
        def hook(record):
            on_epoch(record)
            if run.index == 1 and record.epoch == 1:
                raise KeyboardInterrupt  # as if Ctrl-C arrived right after the checkpoint
        return real(run, store, device, on_epoch=hook, on_start=on_start, built=built)

    monkeypatch.setattr(compare_command, "train_run", interrupt_after_first_epoch_of_second_run)
    with pytest.raises(KeyboardInterrupt):
        compare(tiny_config, tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written
    assert len(collect([tmp_path])) == 2 + 1  # the first run whole, the second's first epoch
    monkeypatch.undo()
    capsys.readouterr()
    assert compare(tiny_config, tmp_path) == 0
    out = capsys.readouterr().out
    assert "samples=12) (seed 0): finished earlier, skipped" in out
    assert "seed=3) (seed 0) epoch 1/2" not in out and "seed=3) (seed 0) epoch 2/2" in out  # resumed
    assert numbers(tmp_path) == numbers(uninterrupted)  # exactly: losses and accuracies bit for bit
    assert compare(tiny_config, tmp_path) == 0  # a third time: everything is skipped
    assert "epoch" not in capsys.readouterr().out.split("->")[1].split("neighbor-zoo compare")[0]


def test_shards_merge_to_the_whole_sweep(tiny_config, uninterrupted, tmp_path):
    for i in (0, 1):
        assert compare(tiny_config, tmp_path / f"shard{i}", "--shard", f"{i}/2") == 0
    assert len(collect([tmp_path / "shard0"])) == 2 and len(collect([tmp_path / "shard1"])) == 2
    assert main(["report", str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out", str(tmp_path / "all")]) == 0
    assert numbers(tmp_path / "all") == numbers(uninterrupted)
    assert (tmp_path / "all" / "report.md").exists()


def test_operators_train_interleaved_seed_by_seed(tiny_config, tmp_path, capsys):
    """Seed-major training order, so a drift of the machine's speed falls on every operator alike."""
    assert main(["compare", "--config", str(tiny_config), "--operators", "conv2d,convnn", "--epochs", "1",
                 "--seeds", "2", "--out", str(tmp_path)]) == 0
    started = [line.split(" epoch ")[0] for line in capsys.readouterr().out.splitlines() if " epoch 1/1" in line]
    assert started == ["conv2d (seed 0)", "convnn (seed 0)", "conv2d (seed 1)", "convnn (seed 1)"]
    # the tables keep the sweep's own order: operator-major
    records = collect([tmp_path])
    assert [(r.operator, r.seed) for r in records] == [("conv2d", 0), ("conv2d", 1), ("convnn", 0), ("convnn", 1)]


def test_report_rerenders_from_saved_results_alone(uninterrupted, tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text((uninterrupted / "results.jsonl").read_text())
    assert main(["report", str(tmp_path)]) == 0
    assert "seed=3)" in capsys.readouterr().out
    assert (tmp_path / "report.md").read_text().count("| convnn2d(") == 4  # two table rows, two spec rows


def test_a_changed_configuration_is_not_resumed_into_old_results(tiny_config, uninterrupted, tmp_path, capsys):
    import shutil

    shutil.copytree(uninterrupted, tmp_path / "out")
    assert compare(tiny_config, tmp_path / "out", "--recipe", "poster") == 2
    assert "configured differently" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--task", "mnist"], "unknown task 'mnist'; choices: digits, cifar10, denoise, imagefolder"),
    (["--operators", "conv2d,convmixer"], "unknown operator 'convmixer'; shorthands: conv2d, convnn"),
    (["--operators", "n3block2d(patch_size=16)"], "operator 'n3block2d(patch_size=16)' does not fit backbone 'vgg11' at conv2"),
    (["--task", "cifar10", "--operators", "conv2d"], "task 'cifar10' needs --data-dir"),
    (["--task", "cifar10", "--data-dir", "/no/such/folder"], "is not a folder"),
    (["--preset", "everything"], "unknown preset 'everything'; choices: default, selection"),
    (["--recipe", "fast"], "unknown recipe 'fast'; choices: default, denoise, poster, n3"),
    (["--backbone", "resnet"], "unknown backbone 'resnet'; choices: vgg, vit, dncnn"),
    (["--operators", "conv2d", "--vary", "selector"], "give one"),
    (["--config", "/no/such.toml"], "config file '/no/such.toml' does not exist"),
])
def test_bad_input_is_a_named_error_and_writes_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compare", "--out", str(out), *argv]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [(["--epochs", "0"], "--epochs must be >= 1, got 0"),
                                           (["--seeds", "-1"], "--seeds must be N (seeds 0..N-1), START:STOP"),
                                           (["--seeds", "0"], "--seeds N must be >= 1, got '0'"),
                                           (["--seeds", "5:3"], "got '5:3'"),
                                           (["--baseline", "x", "--seeds", "1,a"], "got '1,a'"),
                                           (["--shard", "2/2"], "--shard i/n needs 0 <= i < n")])
def test_bad_numbers_are_rejected_by_the_parser(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--out", str(tmp_path / "out"), *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_of_an_empty_folder_is_a_named_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no results.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_one_sweep(tiny_config, tmp_path):
    """torchrun --nproc_per_node 2 (gloo): each rank takes half of every batch; rank 0 alone writes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "comparisons.cli", "compare", "--config", str(tiny_config), "--operators", "conv2d", "--epochs", "2",
           "--seeds", "1", "--out", str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[3])
    assert done.returncode == 0, done.stdout + done.stderr
    records = collect([tmp_path])
    assert [r.epoch for r in records] == [1, 2] and {r.world_size for r in records} == {2}
    assert records[1].train_loss < records[0].train_loss
    assert (tmp_path / "report.md").exists()
