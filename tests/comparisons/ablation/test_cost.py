"""Parameters, forward FLOPs per image, and width matching."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from comparisons.ablation.cost import count_parameters, forward_flops, match_width


def test_flops_of_a_conv_and_a_linear_by_hand():
    # conv 3->8, 3x3, on 1x3x10x10 'same': 2 * 8 * 10 * 10 * 3 * 9 FLOPs; linear 800 -> 5: 2 * 800 * 5
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(800, 5))
    assert forward_flops(model, (3, 10, 10)) == 2 * 8 * 10 * 10 * 3 * 9 + 2 * 800 * 5
    assert count_parameters(model) == 8 * 3 * 9 + 8 + 800 * 5 + 5


def test_flops_leave_mode_and_rng_alone():
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 4)).train()
    state = torch.get_rng_state()
    forward_flops(model, (4,))
    assert model.training and torch.equal(state, torch.get_rng_state())


def _mlp_params(width: int) -> int:
    return count_parameters(nn.Sequential(nn.Linear(10, width), nn.Linear(width, 10)))


def test_match_width_finds_the_closest_count():
    target = _mlp_params(37)
    up = match_width(_mlp_params, target, start=8)
    down = match_width(_mlp_params, target, start=80)
    assert up.width == down.width == 37 and up.within and up.parameters == target


def test_match_width_skips_widths_that_do_not_build_and_says_when_it_cannot():
    odd_only = lambda w: _mlp_params(w) if w % 2 else None  # noqa: E731
    m = match_width(odd_only, _mlp_params(20), start=3)
    assert m.width in (19, 21) and m.within
    far = match_width(_mlp_params, 10**9, start=4, max_width=16)
    assert far.width == 16 and not far.within and far.relative_error < -0.9


def test_match_width_checks_its_arguments():
    with pytest.raises(ValueError, match="target"):
        match_width(_mlp_params, 0, start=4)
    with pytest.raises(ValueError, match="start"):
        match_width(_mlp_params, 100, start=0)
