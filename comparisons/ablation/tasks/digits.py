"""The 8x8 handwritten digits that scikit-learn ships inside its wheel (1,797 images, 10 classes)."""

from __future__ import annotations

import torch

from neighborhoods.checks import check_float, check_int

from .base import TensorTask


class Digits(TensorTask):
    """UCI optical digits, ``(N, 1, 8, 8)``, stratified train/test split fixed by ``split_seed``.

    Pixels (0..16) are scaled to [0, 1] and standardised with the training set's mean and
    standard deviation. The split does not depend on a run's seed, so every run of a sweep
    is scored on the same test images.

    Args:
        test_fraction: share of each class held out for testing.
        split_seed: seed of the stratified split.
        subset: keep only the first ``subset`` training images (quick tests), ``None`` for all.
        test_subset: keep only the first ``test_subset`` test images (quick tests), ``None`` for all.
    """

    name = "digits"
    num_classes = 10

    def __init__(self, test_fraction: float = 0.25, split_seed: int = 0, subset: int | None = None,
                 test_subset: int | None = None) -> None:
        test_fraction = check_float("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True)
        split_seed = check_int("split_seed", split_seed, minimum=0)
        from sklearn.datasets import load_digits  # the experiments extra: imported when a task is made
        from sklearn.model_selection import train_test_split

        data = load_digits()
        x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(data.target, dtype=torch.int64)
        train, test = train_test_split(range(len(y)), test_size=test_fraction, stratify=data.target,
                                       random_state=split_seed)
        train, test = torch.tensor(train), torch.tensor(test)
        if subset is not None:
            train = train[:check_int("subset", subset, minimum=1)]
        if test_subset is not None:
            test = test[:check_int("test_subset", test_subset, minimum=1)]
        mean, std = x[train].mean(), x[train].std()
        super().__init__((x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test])
