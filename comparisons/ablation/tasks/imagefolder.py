"""A user's own images, one folder per class (torchvision's ``ImageFolder`` layout), read with Pillow.

::

    root/cat/0001.png        root/train/cat/...   (or a train/ and test/ split of the same
    root/cat/0002.jpg        root/train/dog/...    classes, used as given)
    root/dog/0001.jpeg       root/test/cat/...

Classes are the sub-folder names in sorted order (label 0 is the first). PNG and JPEG files
are read with Pillow (a dependency of matplotlib), converted to gray (``channels=1``) or RGB
(``channels=3``) and resized to ``size`` x ``size``. Without a ``train``/``test`` split the
images are split per class by ``test_fraction`` and ``split_seed``. Pixels are standardised
per channel with the training images' mean and standard deviation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neighborhoods.checks import check_float, check_int

from .base import TensorTask

EXTENSIONS = (".png", ".jpg", ".jpeg")


def find_images(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """``(classes, [(path, label), ...])`` of an ImageFolder-style ``folder``; a named error if there are none."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"data_dir {str(folder)!r} has no class sub-folders; expected one folder per class "
                         f"holding {', '.join(EXTENSIONS)} images")
    items = [(f, label) for label, c in enumerate(classes) for f in sorted((folder / c).iterdir())
             if f.is_file() and f.suffix.lower() in EXTENSIONS]
    empty = [c for label, c in enumerate(classes) if not any(y == label for _, y in items)]
    if empty:
        raise ValueError(f"data_dir {str(folder)!r}: class folder(s) {empty} hold no {', '.join(EXTENSIONS)} images")
    return classes, items


def load_images(items: list[tuple[Path, int]], size: int, channels: int) -> tuple[Tensor, Tensor]:
    """Images ``(N, channels, size, size)`` float in [0, 1] and labels ``(N,)`` int64."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if channels == 1 else "RGB"
    pixels = []
    for path, _ in items:
        try:
            with Image.open(path) as image:
                image = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                pixels.append(np.asarray(image, dtype=np.float32).reshape(size, size, channels) / 255.0)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"image {path} could not be read as PNG or JPEG: {err}") from None
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([label for _, label in items], dtype=torch.int64)


class ImageFolder(TensorTask):
    """Classify a user's images (module docstring for the layout).

    Args:
        data_dir: the root folder.
        size: side the images are resized to.
        channels: 1 (gray) or 3 (RGB).
        test_fraction, split_seed: the per-class split when the root has no ``train``/``test``.
        validation_fraction: share of the training images held out for validation.
    """

    name = "imagefolder"

    def __init__(self, data_dir: str | Path | None, size: int = 32, channels: int = 3, test_fraction: float = 0.25,
                 split_seed: int = 0, validation_fraction: float = 0.1) -> None:
        if data_dir is None:
            raise ValueError("task 'imagefolder' needs --data-dir: a folder with one sub-folder of images per class")
        root = Path(data_dir)
        if not root.is_dir():
            raise ValueError(f"data_dir {str(root)!r} is not a folder")
        size = check_int("size", size, minimum=1)
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ValueError(f"channels must be 1 (gray) or 3 (RGB), got channels={channels!r}")
        test_fraction = check_float("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True)
        split_seed = check_int("split_seed", split_seed, minimum=0)
        from sklearn.model_selection import train_test_split  # the experiments extra: imported when a task is made

        if (root / "train").is_dir() and (root / "test").is_dir():
            self.classes, train_items = find_images(root / "train")
            test_classes, test_items = find_images(root / "test")
            if test_classes != self.classes:
                raise ValueError(f"data_dir {str(root)!r}: train/ and test/ must hold the same classes, got "
                                 f"{self.classes} and {test_classes}")
        else:
            self.classes, items = find_images(root)
            labels = [y for _, y in items]
            try:
                train, test = train_test_split(range(len(items)), test_size=test_fraction, stratify=labels,
                                               random_state=split_seed)
            except ValueError as err:
                raise ValueError(f"data_dir {str(root)!r}: cannot split {len(items)} images of "
                                 f"{len(self.classes)} classes by test_fraction={test_fraction}: {err}") from None
            train_items, test_items = [items[i] for i in train], [items[i] for i in test]
        self.num_classes = len(self.classes)
        train_x, train_y = load_images(train_items, size, channels)
        test_x, test_y = load_images(test_items, size, channels)
        mean = train_x.mean((0, 2, 3), keepdim=True)
        std = train_x.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
        super().__init__((train_x - mean) / std, train_y, (test_x - mean) / std, test_y,
                         validation_fraction=validation_fraction, split_seed=split_seed)

    def describe(self) -> str:
        return (f"imagefolder: {self.num_classes} classes ({', '.join(self.classes[:5])}"
                f"{', ...' if self.num_classes > 5 else ''}), {self.train_size()} training and "
                f"{self.test_x.shape[0]} test images of {self.in_channels}x{self.image_size[0]}x{self.image_size[1]}")
