"""Hard k-NN never allocates an N x N score matrix, forward or backward (issue 10, item 2).

A ``TorchDispatchMode`` sees every op that runs (the autograd engine's backward ops on CPU
included) and records the largest storage any op's output owns; views are measured by the
storage they share, not by their (possibly broadcast) number of elements. The blocked
selection must stay below N*N/4 elements at a size where the whole matrix would be far above
that; a control run of the naive all-pairs form shows the recorder would catch it.
"""

import importlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from neighborhoods.functional import auto_block_size, knn, similarity
from neighborhoods.functional.native import scan_selects
from operators import ConvNN2d

# the module, not the function of the same name that neighborhoods.functional exports
knn_module = importlib.import_module("neighborhoods.functional.knn")


class LargestAllocation(TorchDispatchMode):
    """Records the largest storage (in elements of its dtype) created by any op."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0
        self.op = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                elements = t.untyped_storage().nbytes() // max(t.element_size(), 1)
                if elements > self.largest:
                    self.largest, self.op = elements, str(func)
        return out


SIDE = 64
N = SIDE * SIDE


@pytest.fixture
def small_budget(monkeypatch):
    # 4 MiB of score temporaries per block: 128 queries of 4096 keys (cosine, float32, B = 1)
    monkeypatch.setattr(knn_module, "BLOCK_BYTES", 4 * 2 ** 20)
    monkeypatch.setattr(knn_module, "SCAN_BLOCK_BYTES", 2 * 2 ** 20)  # one temporary where the C scan selects
    assert auto_block_size(1, N, N, 4, "cosine", torch.float32, torch.device("cpu")) == 128


def test_convnn_forward_and_backward_stay_below_a_quarter_of_n_squared(small_budget):
    layer = ConvNN2d(4, 4, k=9)
    x = torch.randn(1, 4, SIDE, SIDE, requires_grad=True)
    with LargestAllocation() as forward:
        y = layer(x)
    with LargestAllocation() as backward:
        y.square().sum().backward()
    limit = N * N // 4
    assert forward.largest < limit, (forward.largest, forward.op)
    assert backward.largest < limit, (backward.largest, backward.op)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_the_recorder_catches_the_naive_all_pairs_form():
    x = torch.randn(1, N, 4)
    with LargestAllocation() as naive:
        similarity(x, x, "cosine").topk(9, dim=-1)
    assert naive.largest >= N * N
    with LargestAllocation() as blocked:
        knn(x, x, 9, "cosine", block_size=128)
    assert blocked.largest < N * N // 4


def test_default_budget_fits_128x128_batches_in_blocks():
    # B = 8 at 128 x 128 (the size the public ConvNN code cannot hold in 16 GB): a block of
    # queries is at most BLOCK_BYTES of score temporaries, whatever memory is free
    n = 128 * 128
    block = auto_block_size(8, n, n, 64, "cosine", torch.float32, torch.device("cpu"))
    if scan_selects(torch.device("cpu"), torch.float32):  # the score block alone, in the scan's budget
        assert 1 <= block and 8 * block * n * 4 <= knn_module.SCAN_BLOCK_BYTES
    else:
        assert 1 <= block <= knn_module.BLOCK_BYTES // (8 * n * 4 * 2)
        assert 8 * block * n * 4 <= knn_module.BLOCK_BYTES


def test_the_scan_budget_caps_queries_per_block(monkeypatch):
    monkeypatch.setattr(knn_module, "available_memory", lambda device: 2 ** 40)
    block = auto_block_size(8, 4096, 4096, 64, "cosine", torch.float32, torch.device("cpu"))
    if scan_selects(torch.device("cpu"), torch.float32):
        assert block == knn_module.SCAN_BLOCK_QUERIES  # 512 x 8 x 4096 float32 scores: 64 MiB, the budget
    else:
        assert block == knn_module.BLOCK_BYTES // (8 * 4096 * 4 * 2)
