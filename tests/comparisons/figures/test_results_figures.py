"""Plots of saved results: drawn from the records only, incomplete runs flagged, bad folders refused."""

import json

import pytest

from comparisons.figures import results_figures

#: the fields of a saved compare record that these tests do not vary
RECORD = dict(task="digits", backbone="vgg", metric="accuracy", train_loss=1.0, test_loss=1.0, parameters=1000,
              seconds=0.5, peak_memory_mb=1.0)


def _write_run(folder, operator, seed, epochs_done, epochs=3):
    run = folder / "runs" / f"{operator}-seed{seed}"
    run.mkdir(parents=True)
    records = [dict(RECORD, operator=operator, seed=seed, epoch=e, epochs=epochs, value=10.0 * e + seed,
                    test_loss=1.0 / e) for e in range(1, epochs_done + 1)]
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_ablation_plot_from_records(tmp_path):
    folder = tmp_path / "results" / "compare-toy"
    for seed in (0, 1):
        _write_run(folder, "conv2d", seed, 3)
    _write_run(folder, "n3", 0, 2)
    runs = results_figures.read_runs(folder)
    assert sorted(runs) == ["conv2d", "n3"] and sorted(runs["conv2d"]) == [0, 1]
    assert [r.epoch for r in runs["conv2d"][1]] == [1, 2, 3]
    assert results_figures._label("conv2d", runs["conv2d"]) == "conv2d"
    assert results_figures._label("n3", runs["n3"]) == "n3 (incomplete: 2/3 epochs)"
    written = results_figures.draw(tmp_path / "out", tmp_path / "results")
    assert [p.name for p in written] == ["ablation-toy.png"] and written[0].stat().st_size > 1000


def test_no_results_no_plots(tmp_path):
    assert results_figures.draw(tmp_path / "out", tmp_path / "nothing-here") == []


def test_folder_without_runs_is_an_error(tmp_path):
    (tmp_path / "compare-empty").mkdir()
    with pytest.raises(ValueError, match="holds no results.jsonl and no runs/\\*/records.jsonl"):
        results_figures.draw(tmp_path / "out", tmp_path)


def test_merged_results_file_keeps_sweep_order(tmp_path):
    folder = tmp_path / "compare-merged"
    folder.mkdir()
    records = [dict(RECORD, operator=op, index=i, seed=seed, epoch=e, epochs=2, value=float(e))
               for i, op in enumerate(["zeta", "alpha"]) for seed in (1, 0) for e in (2, 1)]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    runs = results_figures.read_runs(folder)
    assert list(runs) == ["zeta", "alpha"] and list(runs["zeta"]) == [0, 1]
    assert [r.epoch for r in runs["alpha"][0]] == [1, 2]
    assert [row["label"] for row in results_figures.summary(folder)] == ["zeta", "alpha"]
