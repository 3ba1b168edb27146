"""Grayscale Gaussian denoising on the two photos scikit-learn ships (the N3 paper's task in miniature).

Ploetz & Roth 2018 (Sec. 5.2) train on noisy crops and report PSNR; here training crops come
from one photo (``china.jpg``) and the test tiles from the other (``flower.jpg``), so the
score is on an image the network never saw.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from neighborhoods.checks import check_float, check_int

from .base import Batch, Task, epoch_generator

#: ITU-R BT.601 luma weights for RGB -> gray
LUMA = (0.299, 0.587, 0.114)
TRAIN_IMAGE, TEST_IMAGE = "china.jpg", "flower.jpg"


def sample_photo(name: str) -> Tensor:
    """One of scikit-learn's sample photos as a grayscale image ``(H, W)`` in [0, 1]."""
    from sklearn.datasets import load_sample_images  # the experiments extra: imported when a task is made

    photos = load_sample_images()
    names = [str(f).replace("\\", "/").rsplit("/", 1)[-1] for f in photos.filenames]
    rgb = torch.tensor(photos.images[names.index(name)], dtype=torch.float32) / 255.0
    return rgb @ torch.tensor(LUMA)


class Denoise(Task):
    """Remove additive white Gaussian noise of standard deviation ``sigma`` (on the 0..255 scale).

    Training: ``crops_per_epoch`` random ``crop_size`` crops of the training photo per epoch,
    with fresh noise, both drawn from ``(seed, epoch)``. Test: ``test_tiles`` x ``test_tiles``
    non-overlapping ``test_size`` tiles from the centre of the test photo, with noise fixed
    once (seed 0). Inputs and targets are in [0, 1]; the metric is PSNR in dB of the clipped
    output, computed from the mean squared error over all test tiles.

    Args:
        sigma: noise level on the 0..255 scale (25 in the N3 paper's main table).
        crop_size: training crop side in pixels (80 in the N3 paper's recipe).
        crops_per_epoch: training crops per epoch.
        test_size, test_tiles: test tile side and tiles per axis.
    """

    name = "denoise"
    kind = "denoising"
    metric = "psnr"
    in_channels = 1

    def __init__(self, sigma: float = 25.0, crop_size: int = 32, crops_per_epoch: int = 256, test_size: int = 64,
                 test_tiles: int = 2) -> None:
        self.sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        self.crop_size = check_int("crop_size", crop_size, minimum=1)
        self.crops_per_epoch = check_int("crops_per_epoch", crops_per_epoch, minimum=1)
        test_size, test_tiles = check_int("test_size", test_size, minimum=1), check_int("test_tiles", test_tiles,
                                                                                          minimum=1)
        self.train_image = sample_photo(TRAIN_IMAGE)
        test_image = sample_photo(TEST_IMAGE)
        for name, side, image in (("crop_size", self.crop_size, self.train_image),
                                  ("test_size * test_tiles", test_size * test_tiles, test_image)):
            if side > min(image.shape):
                raise ValueError(f"{name} must be <= {min(image.shape)} (the photo is {tuple(image.shape)}), got {side}")
        self.image_size = (self.crop_size, self.crop_size)
        span = test_size * test_tiles
        top, left = (test_image.shape[0] - span) // 2, (test_image.shape[1] - span) // 2
        region = test_image[top:top + span, left:left + span]
        self.test_clean = region.reshape(test_tiles, test_size, test_tiles, test_size).permute(0, 2, 1, 3) \
            .reshape(-1, 1, test_size, test_size).contiguous()
        noise = torch.randn(self.test_clean.shape, generator=torch.Generator().manual_seed(0))
        self.test_noisy = self.test_clean + noise * (self.sigma / 255.0)

    def train_size(self) -> int:
        return self.crops_per_epoch

    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[Batch]:
        g = epoch_generator(seed, epoch)
        h, w, c = self.train_image.shape[0], self.train_image.shape[1], self.crop_size
        for start in range(0, self.crops_per_epoch, batch_size):
            n = min(batch_size, self.crops_per_epoch - start)
            tops = torch.randint(0, h - c + 1, (n,), generator=g)
            lefts = torch.randint(0, w - c + 1, (n,), generator=g)
            clean = torch.stack([self.train_image[t:t + c, l:l + c] for t, l in zip(tops.tolist(), lefts.tolist())])
            clean = clean.unsqueeze(1)
            noisy = clean + torch.randn(clean.shape, generator=g) * (self.sigma / 255.0)
            yield Batch(noisy, clean)

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.test_clean.shape[0], batch_size):
            yield Batch(self.test_noisy[start:start + batch_size], self.test_clean[start:start + batch_size])

    def describe(self) -> str:
        return (f"denoise: sigma {self.sigma:g}, {self.crops_per_epoch} random {self.crop_size}x{self.crop_size} "
                f"crops of {TRAIN_IMAGE} per epoch, tested on {self.test_clean.shape[0]} "
                f"{self.test_clean.shape[-1]}x{self.test_clean.shape[-1]} tiles of {TEST_IMAGE}, PSNR dB")
