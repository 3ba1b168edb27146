"""Tasks of `neighbor-zoo compare`: real loaders, fixed splits, named errors for missing or malformed data."""

import pickle

import numpy as np
import pytest
import torch

from comparisons.ablation.tasks import CIFAR10, Denoise, Digits, make_task


def test_digits_split_is_stratified_fixed_and_disjoint():
    a, b = Digits(), Digits()
    assert a.train_x.shape == (1347, 1, 8, 8) and a.test_x.shape == (450, 1, 8, 8)
    torch.testing.assert_close(a.test_x, b.test_x)  # the split does not move between constructions
    per_class = torch.bincount(torch.cat([a.train_y, a.test_y]), minlength=10)
    held_out = torch.bincount(a.test_y, minlength=10)
    assert ((held_out - per_class * 0.25).abs() <= 1).all()  # stratified: a quarter of every class
    assert not torch.equal(Digits(split_seed=1).test_y, a.test_y)
    assert abs(a.train_x.mean().item()) < 1e-5 and abs(a.train_x.std().item() - 1) < 1e-5


def test_epoch_order_depends_on_seed_and_epoch_only():
    task = Digits(subset=100)
    first = [b.y for b in task.train_batches(seed=3, epoch=2, batch_size=32)]
    again = [b.y for b in task.train_batches(seed=3, epoch=2, batch_size=32)]
    other = [b.y for b in task.train_batches(seed=3, epoch=3, batch_size=32)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not torch.equal(torch.cat(first), torch.cat(other))
    assert sorted(torch.cat(first).tolist()) == sorted(task.train_y.tolist())  # a permutation of the data


def write_fake_cifar(folder, n=6, corrupt=None):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n)], b"batch_label": name.encode()}
        if corrupt == name:
            batch = {b"data": np.zeros((n, 100), dtype=np.uint8), b"labels": [0] * n}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return folder


def test_cifar10_reads_the_python_pickle_batches(tmp_path):
    task = CIFAR10(write_fake_cifar(tmp_path / "cifar-10-batches-py"))
    assert task.train_x.shape == (30, 3, 32, 32) and task.test_x.shape == (6, 3, 32, 32)
    assert task.train_y.dtype == torch.int64 and 0 <= task.train_y.min() and task.train_y.max() <= 9
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb"))[b"data"]
    pixel = raw[0, 0] / 255.0  # channel-major: the first value is red at (0, 0)
    assert task.train_x[0, 0, 0, 0].item() == pytest.approx((pixel - 0.4914) / 0.2470, abs=1e-5)


def test_cifar10_missing_or_malformed_folder_is_a_named_error(tmp_path):
    with pytest.raises(ValueError, match="needs --data-dir"):
        CIFAR10(None)
    with pytest.raises(ValueError, match="is not a folder"):
        CIFAR10(tmp_path / "nowhere")
    folder = write_fake_cifar(tmp_path / "partial")
    (folder / "data_batch_3").unlink()
    with pytest.raises(ValueError, match=r"missing CIFAR-10 batch files \['data_batch_3'\]"):
        CIFAR10(folder)
    with pytest.raises(ValueError, match=r"test_batch: 'data' must be uint8 of shape \(N, 3072\)"):
        CIFAR10(write_fake_cifar(tmp_path / "bad", corrupt="test_batch"))
    folder = write_fake_cifar(tmp_path / "garbage")
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_1 is not a python pickle batch"):
        CIFAR10(folder)


def test_cifar10_refuses_pickles_that_would_run_code(tmp_path):
    folder = write_fake_cifar(tmp_path / "evil")

    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Boom(), b"labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        CIFAR10(folder)


def test_denoise_trains_on_one_photo_and_tests_on_the_other():
    task = Denoise(sigma=25, crop_size=16, crops_per_epoch=10, test_size=32, test_tiles=2)
    batches = list(task.train_batches(seed=0, epoch=1, batch_size=4))
    assert [b.x.shape[0] for b in batches] == [4, 4, 2]
    noise = torch.cat([b.x - b.y for b in batches])
    assert noise.std().item() == pytest.approx(25 / 255, rel=0.1)
    assert task.test_clean.shape == (4, 1, 32, 32)
    noisy_psnr = task.finish(((task.test_noisy - task.test_clean) ** 2).mean().item())
    assert noisy_psnr == pytest.approx(20.17, abs=0.2)  # 20 log10(255 / 25)
    clean = torch.cat([b.y for b in batches])
    assert not any(torch.equal(clean[0], t) for t in task.test_clean)


def test_unknown_task_lists_the_choices():
    with pytest.raises(ValueError, match="unknown task 'mnist'; choices: digits, cifar10, denoise"):
        make_task("mnist")
