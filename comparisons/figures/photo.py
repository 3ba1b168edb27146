"""The sample photo every docs figure and the explorer draw on.

scikit-learn ships two photographs (``china.jpg``, ``flower.jpg``, 427 x 640 RGB) with the
package, so the figures need no download. A square centre crop is downscaled (area
averaging) to a small grid, small enough that attention's ``N x N`` weights and every
operator's neighbourhood are cheap to compute and to look at pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    img = load_sample_image(name)  # (427, 640, 3) uint8
    side = min(img.shape[:2])
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    crop = torch.from_numpy(np.ascontiguousarray(img[top:top + side, left:left + side])).to(torch.float64) / 255.0
    small = F.interpolate(crop.permute(2, 0, 1)[None], size=(size, size), mode="area")  # (1, 3, s, s)
    mean = small.mean(dim=(2, 3), keepdim=True)
    std = small.std(dim=(2, 3), keepdim=True)  # a photo has no constant channel
    rgb = small[0].permute(1, 2, 0).clamp(0, 1).numpy()
    return Photo(name, rgb, (small - mean) / std)
