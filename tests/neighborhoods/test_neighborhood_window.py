"""The shifted window of neighbourhood attention equals a brute-force reading of NATTEN's definition.

The brute force transcribes, query by query, how NATTEN's reference mask decides whether key
``j`` is a neighbour of query ``i`` on one axis (``csrc/include/natten/cuda/reference/mask.hpp``,
non-causal, stride 1): both must lie in the same dilation group ``i % d``; within the group
(coordinate ``c = i // d``, group length ``L_g`` = the number of coordinates ``< L`` that are
``= g mod d``), the window starts at ``max(c - left, 0)``, moved back by
``L - right - c - 1`` when ``c + right >= L_g``, with ``left = k // 2`` and
``right = k // 2 + (k % 2) - 1``, and holds ``k`` entries. A key is a neighbour on the grid when
it is one on every axis. The library computes the same window as ``clamp(c - k // 2, 0, L_g - k)``
per axis, vectorised (a different formula for the same set).
"""

import itertools
import math

import pytest
import torch

from neighborhoods.functional import neighborhood_window_index
from neighborhoods.functional.neighborhood_window import axis_window, window_mask


def natten_is_neighbor(i: int, j: int, length: int, k: int, d: int) -> bool:
    """NATTEN's one-axis rule, as its reference mask states it (module docstring)."""
    if i % d != j % d:
        return False
    g = i % d
    group_length = len(range(g, length, d))
    c, cj = i // d, j // d
    left, right = k // 2, k // 2 + (k % 2) - 1
    start = max(c - left, 0) + (group_length - right - c - 1 if c + right >= group_length else 0)
    return start <= cj < start + k


def brute_force_mask(shape, kernel, dilation):
    """(N, N) bool: query q may attend key n, from the per-axis rule on unravelled coordinates."""
    coords = list(itertools.product(*(range(n) for n in shape)))
    mask = torch.zeros(len(coords), len(coords), dtype=torch.bool)
    for q, cq in enumerate(coords):
        for n, cn in enumerate(coords):
            mask[q, n] = all(natten_is_neighbor(a, b, length, k, d)
                             for a, b, length, k, d in zip(cq, cn, shape, kernel, dilation))
    return mask


CASES = [
    ((9,), (3,), (1,)), ((10,), (4,), (1,)), ((10,), (3,), (3,)), ((11,), (2,), (4,)), ((7,), (7,), (1,)),
    ((5, 6), (3, 3), (1, 1)), ((7, 7), (7, 7), (1, 1)), ((8, 9), (3, 2), (2, 3)), ((6, 10), (1, 4), (1, 2)),
    ((9, 5), (4, 5), (2, 1)), ((3, 4, 5), (2, 3, 3), (1, 1, 1)), ((4, 6, 5), (2, 3, 2), (2, 2, 2)),
]


@pytest.mark.parametrize("shape, kernel, dilation", CASES, ids=str)
def test_window_equals_natten_rule(shape, kernel, dilation):
    index = neighborhood_window_index(shape, kernel, dilation)
    n, taps = math.prod(shape), math.prod(kernel)
    assert index.shape == (n, taps)
    # every query has exactly prod(kernel_size) distinct keys, itself among them
    assert all(len(set(row.tolist())) == taps for row in index)
    assert bool((index == torch.arange(n).unsqueeze(1)).any(1).all())
    assert torch.equal(window_mask(index, n), brute_force_mask(shape, kernel, dilation))


def test_taps_follow_the_kernels_row_major_order():
    # 2-D: the window of a query is the outer sum of its row window and its column window
    shape, kernel, dilation = (6, 7), (3, 2), (2, 1)
    rows, cols = axis_window(6, 3, 2), axis_window(7, 2, 1)
    expected = (rows[:, None, :, None] * 7 + cols[None, :, None, :]).reshape(42, 6)
    assert torch.equal(neighborhood_window_index(shape, kernel, dilation), expected)


def test_window_shifts_inward_at_the_border():
    # kernel 3 on 6 positions: 0 and 5 see the same keys as their inner neighbours
    assert axis_window(6, 3).tolist() == [[0, 1, 2], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [3, 4, 5]]
    # dilation 2 on 7 positions: groups {0,2,4,6} and {1,3,5}
    assert axis_window(7, 2, 2).tolist() == [[0, 2], [1, 3], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6]]


@pytest.mark.parametrize("shape, kernel, dilation", [((5,), (6,), (1,)), ((9, 9), (3, 3), (1, 4)),
                                                     ((4, 4), (5, 3), (1, 1))])
def test_a_window_larger_than_the_input_is_a_named_error(shape, kernel, dilation):
    with pytest.raises(ValueError, match=r"kernel_size \* dilation <= the input size.*kernel_size="):
        neighborhood_window_index(shape, kernel, dilation)
