"""The sample photo every docs figure and the explorer draw on.

scikit-learn ships two photographs (``china.jpg``, ``flower.jpg``, 427 x 640 RGB) with the
package, so the figures need no download. A square centre crop is downscaled (area
averaging) to a small grid, small enough that attention's ``N x N`` weights and every
operator's neighbourhood are cheap to compute and to look at pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: scikit-learn's bundled sample images
IMAGES = ("flower.jpg", "china.jpg")


@dataclass(frozen=True)
class Photo:
    """A downscaled sample photo.

    Attributes:
        name: the scikit-learn sample image it came from.
        rgb: ``(H, W, 3)`` float array in [0, 1], for display.
        features: ``(1, 3, H, W)`` float64 tensor, each channel standardised (zero mean, unit
            variance over the pixels): the input the operators see, so that dot products and
            distances compare colours rather than overall brightness.
    """

    name: str
    rgb: np.ndarray
    features: Tensor

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def load_photo(name: str = "flower.jpg", size: int = 32) -> Photo:
    """A square centre crop of a scikit-learn sample image, downscaled to ``size x size``.

    Args:
        name: one of :data:`IMAGES`.
        size: side of the result in pixels, ``>= 4``.
    """
    from sklearn.datasets import load_sample_image

    if name not in IMAGES:
        raise ValueError(f"image must be one of {', '.join(IMAGES)}, got {name!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    return _photo(name, load_sample_image(name), size)  # (427, 640, 3) uint8


def load_image_file(path: str | Path, size: int = 32) -> Photo:
    """A PNG or JPEG file (read by matplotlib, JPEG through Pillow) as a :class:`Photo`.

    Grey images get three equal channels, an alpha channel is dropped; the square centre crop
    is downscaled to ``size x size`` as :func:`load_photo` does. An unreadable file is a
    ValueError naming it.
    """
    import matplotlib.image

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image must be an existing PNG or JPEG file, got {str(path)!r} (no such file)")
    try:
        img = np.asarray(matplotlib.image.imread(path))
    except Exception as err:  # Pillow's and matplotlib's errors alike: not an image we can read
        raise ValueError(f"image {str(path)!r} could not be read as a PNG or JPEG: {err}") from None
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
        raise ValueError(f"image {str(path)!r} must be an RGB, RGBA or grey picture, got an array of shape {img.shape}")
    img = img[:, :, :3]
    if img.dtype.kind in "ui":  # 8-bit (or 16-bit) integers -> [0, 255]
        img = img.astype(np.float64) * (255.0 / np.iinfo(img.dtype).max)
    else:  # matplotlib reads PNGs as floats in [0, 1]
        img = img.astype(np.float64) * 255.0
    return _photo(path.name, img, size)


def _photo(name: str, img: np.ndarray, size: int) -> Photo:
    """A square centre crop of ``img`` (H, W, 3) with values in [0, 255], downscaled and standardised."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    side = min(img.shape[:2])
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    crop = torch.from_numpy(np.ascontiguousarray(img[top:top + side, left:left + side])).to(torch.float64) / 255.0
    small = F.interpolate(crop.permute(2, 0, 1)[None], size=(size, size), mode="area")  # (1, 3, s, s)
    mean = small.mean(dim=(2, 3), keepdim=True)
    # a photo has no constant channel; a flat one (a blank image) is left at zero, not divided by 0
    std = small.std(dim=(2, 3), keepdim=True).clamp_min(torch.finfo(torch.float64).eps)
    rgb = small[0].permute(1, 2, 0).clamp(0, 1).numpy()
    return Photo(name, rgb, (small - mean) / std)
