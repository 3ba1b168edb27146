"""The imagefolder task on tiny PNG and JPEG images the test writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from comparisons.ablation.tasks.imagefolder import ImageFolder


def _write(folder, name, color, fmt="PNG", size=(6, 5)):
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 3), color, dtype=np.uint8)
    Image.fromarray(pixels).save(folder / name, format=fmt)


@pytest.fixture
def folder(tmp_path):
    for i in range(4):
        _write(tmp_path / "bright", f"{i}.png", (250, 240, 230))
        _write(tmp_path / "dark", f"{i}.jpg", (10, 20, 30), fmt="JPEG")
    (tmp_path / "bright" / "notes.txt").write_text("not an image")
    return tmp_path


def test_classes_labels_split_and_normalisation(folder):
    task = ImageFolder(folder, size=4, channels=3, test_fraction=0.5, validation_fraction=0.0)
    assert task.classes == ["bright", "dark"] and task.num_classes == 2
    assert task.train_x.shape == (4, 3, 4, 4) and task.test_x.shape == (4, 3, 4, 4)
    assert sorted(task.train_y.tolist()) == [0, 0, 1, 1]  # stratified: two of each class
    # standardised with the training images' per-channel statistics; bright pixels stay above dark ones
    torch.testing.assert_close(task.train_x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    bright = task.test_x[task.test_y == 0].mean()
    assert bright > task.test_x[task.test_y == 1].mean()


def test_gray_and_a_given_train_test_split(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for c, value in (("a", 200), ("b", 50)):
            for i in range(n):
                _write(tmp_path / split / c, f"{i}.png", (value, value, value))
    task = ImageFolder(tmp_path, size=5, channels=1)  # 10% of the 6 training images: 1 for validation
    assert task.train_x.shape == (5, 1, 5, 5) and task.val_x.shape == (1, 1, 5, 5)
    assert task.test_x.shape == (4, 1, 5, 5)
    assert task.test_y.tolist() == [0, 0, 1, 1]


def test_trains_through_compare_batches(folder):
    task = ImageFolder(folder, size=4, test_fraction=0.5, validation_fraction=0.0)
    batches = list(task.train_batches(seed=0, epoch=1, batch_size=3))
    assert sum(b.x.shape[0] for b in batches) == task.train_size() == 4


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=2), "channels must be 1"),
    (dict(size=0), "size"),
    (dict(test_fraction=1.5), "test_fraction"),
])
def test_bad_options_name_the_argument(folder, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ImageFolder(folder, **kwargs)


def test_bad_folders_say_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="needs --data-dir"):
        ImageFolder(None)
    with pytest.raises(ValueError, match="not a folder"):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolder(tmp_path)
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "full", "0.png", (1, 2, 3))
    with pytest.raises(ValueError, match=r"\['empty'\] hold no"):
        ImageFolder(tmp_path)
    _write(tmp_path / "empty", "0.png", (3, 2, 1))
    with pytest.raises(ValueError, match="cannot split 2 images of 2 classes"):
        ImageFolder(tmp_path, test_fraction=0.5)
    for name in ("1.png", "2.png"):
        _write(tmp_path / "full", name, (1, 2, 3))
        (tmp_path / "empty" / name).write_bytes(b"not a png")
    with pytest.raises(ValueError, match="could not be read"):
        ImageFolder(tmp_path, test_fraction=0.5)
