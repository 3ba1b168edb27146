"""CIFAR-10 read from a folder the user already has, in the standard python pickle batch format.

The folder is what ``cifar-10-python.tar.gz`` unpacks to (``cifar-10-batches-py``):
``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict with ``b"data"``
(uint8, ``(N, 3072)``, channel-major 32x32 images) and ``b"labels"`` (N ints in 0..9).
Nothing is downloaded.

The batches are pickles, which can run code when loaded; an unpickler that only builds the
plain containers and numpy arrays this format uses refuses anything else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from neighborhoods.checks import check_int

from .base import TensorTask

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
#: per-channel mean and std of the CIFAR-10 training set (0..1 scale)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only "
                                         f"dicts, lists, bytes and numpy arrays")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[Tensor, Tensor]:
    """One batch file -> images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64; a named error if malformed."""
    try:
        with open(path, "rb") as f:
            batch = _DataOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"CIFAR-10 batch {path} is not a python pickle batch: {err}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR-10 batch {path} must hold a dict, got {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"CIFAR-10 batch {path} must have keys b'data' and b'labels', got {sorted(map(str, batch))}")
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"CIFAR-10 batch {path}: 'data' must be uint8 of shape (N, 3072), "
                         f"got {data.dtype} {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) \
            or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"CIFAR-10 batch {path}: 'labels' must be {data.shape[0]} ints in 0..9, "
                         f"got shape {labels.shape}, dtype {labels.dtype}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels.astype(np.int64))


class CIFAR10(TensorTask):
    """CIFAR-10 from ``data_dir`` (the ``cifar-10-batches-py`` folder), normalised per channel.

    Args:
        data_dir: the folder with ``data_batch_1..5`` and ``test_batch``.
        subset: keep only the first ``subset`` training images, ``None`` for all 50,000.
    """

    name = "cifar10"
    num_classes = 10

    def __init__(self, data_dir: str | Path | None, subset: int | None = None) -> None:
        if data_dir is None:
            raise ValueError("task 'cifar10' needs --data-dir: the cifar-10-batches-py folder with data_batch_1..5 "
                             "and test_batch (python pickle format); nothing is downloaded")
        folder = Path(data_dir)
        if not folder.is_dir():
            raise ValueError(f"data_dir {str(folder)!r} is not a folder; expected the cifar-10-batches-py folder")
        missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"data_dir {str(folder)!r} is missing CIFAR-10 batch files {missing}; expected "
                             f"{', '.join((*TRAIN_FILES, TEST_FILE))}")
        train = [read_batch(folder / name) for name in TRAIN_FILES]
        test_x, test_y = read_batch(folder / TEST_FILE)
        train_x, train_y = torch.cat([x for x, _ in train]), torch.cat([y for _, y in train])
        if subset is not None:
            subset = check_int("subset", subset, minimum=1)
            train_x, train_y = train_x[:subset], train_y[:subset]
        super().__init__(_normalise(train_x), train_y, _normalise(test_x), test_y)


def _normalise(x: Tensor) -> Tensor:
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x.float() / 255.0 - mean) / std
