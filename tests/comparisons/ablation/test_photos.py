"""The photo denoising task: scikit-image's photos, held-out test photos, the noisy-input PSNR."""

from __future__ import annotations

import math

import pytest
import torch

from comparisons.ablation.tasks.photos import TEST_PHOTOS, TRAIN_PHOTOS, VALIDATION_PHOTOS, PhotoDenoise, photo


@pytest.fixture(scope="module")
def task():
    return PhotoDenoise(sigma=25.0, crop_size=24, crops_per_epoch=20, test_size=64, tile=32, validation_crops=4)


def test_test_photos_are_held_out_and_include_the_cameraman():
    assert "camera" in TEST_PHOTOS
    assert not set(TEST_PHOTOS) & set(TRAIN_PHOTOS) and not set(VALIDATION_PHOTOS) & set(TRAIN_PHOTOS)
    assert not set(TEST_PHOTOS) & set(VALIDATION_PHOTOS)
    assert len(TRAIN_PHOTOS) >= 10


def test_photos_are_gray_in_unit_range():
    for name in ("camera", "astronaut"):
        image = photo(name)
        assert image.ndim == 2 and 0.0 <= image.min() and image.max() <= 1.0
    with pytest.raises(ValueError, match="photo must be one of"):
        photo("lena")


def test_batches_are_fixed_by_seed_and_epoch(task):
    a = list(task.train_batches(3, 2, 8))
    b = list(task.train_batches(3, 2, 8))
    c = list(task.train_batches(4, 2, 8))
    assert [x.x.shape[0] for x in a] == [8, 8, 4]
    assert all(torch.equal(x.x, y.x) and torch.equal(x.y, y.y) for x, y in zip(a, b))
    assert not torch.equal(a[0].y, c[0].y)


def test_noise_has_the_stated_sigma(task):
    noise = torch.cat([b.x - b.y for b in task.train_batches(0, 1, 20)])
    assert noise.std().item() == pytest.approx(25.0 / 255.0, rel=0.05)
    assert (task.test_noisy - task.test_clean).std().item() == pytest.approx(25.0 / 255.0, rel=0.05)


def test_test_set_is_the_centred_squares_of_the_test_photos(task):
    assert task.test_clean.shape == (len(TEST_PHOTOS) * 4, 1, 32, 32)
    camera = photo("camera")
    top, left = (camera.shape[0] - 64) // 2, (camera.shape[1] - 64) // 2
    torch.testing.assert_close(task.test_clean[0, 0], camera[top:top + 32, left:left + 32])
    torch.testing.assert_close(task.test_clean[3, 0], camera[top + 32:top + 64, left + 32:left + 64])


def test_noisy_input_psnr_by_hand(task):
    mse = ((task.test_noisy.clamp(0, 1) - task.test_clean) ** 2).double().mean().item()
    assert task.noisy_input_psnr() == pytest.approx(10 * math.log10(1 / mse), rel=1e-6)  # float32 tile means
    # clipping to [0, 1] helps a little; without it the PSNR of sigma 25 noise is 20.17 dB
    assert 20.0 < task.noisy_input_psnr() < 21.5


@pytest.mark.parametrize("kwargs, match", [
    (dict(sigma=0), "sigma"), (dict(crop_size=4), "crop_size"), (dict(test_size=100, tile=32), "tile must divide"),
    (dict(crop_size=200), "smallest training photo"), (dict(test_size=600, tile=60), "smallest test photo"),
])
def test_bad_options_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhotoDenoise(**kwargs)
