"""Gray Gaussian denoising on the photos scikit-image ships (the N3 paper's task in miniature).

Ploetz & Roth 2018 (Sec. 5) train on random noisy crops of natural photos (BSD400) and
report the mean PSNR over a set of test images (Set12, BSD68, Urban100). Here the photos are
the ones inside scikit-image's wheel, so nothing is downloaded:

- training: random ``crop_size`` crops of :data:`TRAIN_PHOTOS`, fresh noise each epoch;
- validation (carved from the training photos, for any choice made while training):
  ``crop_size`` crops of :data:`VALIDATION_PHOTOS` at fixed places, noise fixed once;
- test (the reported figure only): :data:`TEST_PHOTOS`, ``camera`` (the cameraman, a Set12
  image) among them, each a centred ``test_size`` square cut into ``tile`` tiles (so global
  operators fit in memory), noise fixed once. The metric is the PSNR of the clipped output's
  mean squared error over all test pixels.

Inputs and targets are in [0, 1]; ``sigma`` is on the 0..255 scale (the paper: 15, 25, 50).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from neighborhoods.checks import check_float, check_int

from .base import Batch, Task, epoch_generator

#: ITU-R BT.601 luma weights for RGB -> gray
LUMA = (0.299, 0.587, 0.114)
#: the test photos: the cameraman (Set12), coins and the moon surface; never trained on
TEST_PHOTOS = ("camera", "coins", "moon")
#: held out of training as the validation set
VALIDATION_PHOTOS = ("coffee",)
#: natural photos and micrographs from ``skimage.data`` (synthetic images and tiny ones left out)
TRAIN_PHOTOS = ("astronaut", "brick", "cell", "chelsea", "grass", "gravel", "hubble_deep_field",
                "immunohistochemistry", "page", "retina", "rocket", "text")


def photo(name: str) -> Tensor:
    """``skimage.data.<name>()`` as a gray image ``(H, W)`` float32 in [0, 1]."""
    import skimage.data

    if name not in (*TRAIN_PHOTOS, *VALIDATION_PHOTOS, *TEST_PHOTOS):
        raise ValueError(f"photo must be one of {', '.join((*TRAIN_PHOTOS, *VALIDATION_PHOTOS, *TEST_PHOTOS))}, "
                         f"got {name!r}")
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    if image.ndim == 3:
        image = image[..., :3] @ np.asarray(LUMA, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(image))


def _tiles(image: Tensor, size: int, tile: int) -> Tensor:
    """The centred ``size`` square of ``image`` cut into ``(size / tile)^2`` tiles ``(n, 1, tile, tile)``."""
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    square = image[top:top + size, left:left + size]
    n = size // tile
    return square.reshape(n, tile, n, tile).permute(0, 2, 1, 3).reshape(-1, 1, tile, tile).contiguous()


class PhotoDenoise(Task):
    """Remove white Gaussian noise of standard deviation ``sigma`` from gray photos (module docstring).

    Args:
        sigma: noise level on the 0..255 scale.
        crop_size: side of the training and validation crops.
        crops_per_epoch: training crops per epoch (drawn evenly over the photos' pixels).
        test_size: side of the centred square of each test photo that is scored.
        tile: side of the tiles the test square is cut into (divides ``test_size``).
        validation_crops: crops of the validation photos.
    """

    name = "denoise"
    kind = "denoising"
    metric = "psnr"
    in_channels = 1

    def __init__(self, sigma: float = 25.0, crop_size: int = 40, crops_per_epoch: int = 512, test_size: int = 192,
                 tile: int = 64, validation_crops: int = 32) -> None:
        self.sigma = check_float("sigma", sigma, low=0.0, low_open=True)
        self.crop_size = check_int("crop_size", crop_size, minimum=8)
        self.crops_per_epoch = check_int("crops_per_epoch", crops_per_epoch, minimum=1)
        self.test_size = check_int("test_size", test_size, minimum=1)
        self.tile = check_int("tile", tile, minimum=1)
        if self.test_size % self.tile:
            raise ValueError(f"tile must divide test_size, got tile={tile}, test_size={test_size}")
        validation_crops = check_int("validation_crops", validation_crops, minimum=1)
        self.train_photos = [photo(n) for n in TRAIN_PHOTOS]
        smallest = min(min(p.shape) for p in self.train_photos)
        if self.crop_size > smallest:
            raise ValueError(f"crop_size must be <= {smallest} (the smallest training photo), got {crop_size}")
        test = [photo(n) for n in TEST_PHOTOS]
        if self.test_size > min(min(p.shape) for p in test):
            raise ValueError(f"test_size must be <= {min(min(p.shape) for p in test)} (the smallest test photo), "
                             f"got {test_size}")
        self.image_size = (self.crop_size, self.crop_size)
        # sample crops in proportion to each photo's area, so a large photo is not seen as often as a small one
        self.weights = torch.tensor([float(p.numel()) for p in self.train_photos])
        self.test_clean = torch.cat([_tiles(p, self.test_size, self.tile) for p in test])
        self.tiles_per_photo = (self.test_size // self.tile) ** 2
        self.test_noisy = self.test_clean + self._noise(self.test_clean.shape, torch.Generator().manual_seed(0))
        g = torch.Generator().manual_seed(1)
        self.val_clean = torch.cat([self._crops(photo(n), validation_crops, g) for n in VALIDATION_PHOTOS])
        self.val_noisy = self.val_clean + self._noise(self.val_clean.shape, g)

    def _noise(self, shape: torch.Size, g: torch.Generator) -> Tensor:
        return torch.randn(shape, generator=g) * (self.sigma / 255.0)

    def _crops(self, image: Tensor, n: int, g: torch.Generator) -> Tensor:
        c = self.crop_size
        tops = torch.randint(0, image.shape[0] - c + 1, (n,), generator=g).tolist()
        lefts = torch.randint(0, image.shape[1] - c + 1, (n,), generator=g).tolist()
        return torch.stack([image[t:t + c, l:l + c] for t, l in zip(tops, lefts)]).unsqueeze(1)

    def train_size(self) -> int:
        return self.crops_per_epoch

    def train_batches(self, seed: int, epoch: int, batch_size: int) -> Iterator[Batch]:
        g = epoch_generator(seed, epoch)
        which = torch.multinomial(self.weights, self.crops_per_epoch, replacement=True, generator=g)
        for start in range(0, self.crops_per_epoch, batch_size):
            picks = which[start:start + batch_size].tolist()
            clean = torch.cat([self._crops(self.train_photos[i], 1, g) for i in picks])
            # the 8 flips and quarter turns, as the paper augments its crops
            turns, flip = int(torch.randint(0, 4, (), generator=g)), bool(torch.randint(0, 2, (), generator=g))
            clean = torch.rot90(clean, turns, (2, 3))
            clean = clean.flip(3) if flip else clean
            yield Batch(clean + self._noise(clean.shape, g), clean)

    def validation_batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.val_clean.shape[0], batch_size):
            yield Batch(self.val_noisy[start:start + batch_size], self.val_clean[start:start + batch_size])

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.test_clean.shape[0], batch_size):
            yield Batch(self.test_noisy[start:start + batch_size], self.test_clean[start:start + batch_size])

    def noisy_input_psnr(self) -> float:
        """The test metric of doing nothing: the noisy photos' PSNR (the row every denoiser must beat)."""
        return self.finish(float(self.score(self.test_noisy, self.test_clean).mean()))

    def input_metric(self) -> float:
        return self.noisy_input_psnr()

    def describe(self) -> str:
        return (f"denoise: gray, sigma {self.sigma:g}; {self.crops_per_epoch} random {self.crop_size}x{self.crop_size} "
                f"crops per epoch of {len(TRAIN_PHOTOS)} scikit-image photos; validation {', '.join(VALIDATION_PHOTOS)}; "
                f"test {', '.join(TEST_PHOTOS)} (centred {self.test_size}x{self.test_size}); PSNR dB")
