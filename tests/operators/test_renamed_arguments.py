"""No argument silently changes meaning (issue 18 item 4).

ConvNN's ring of zero candidate tokens is ``candidate_padding`` (``padding`` is now a
convolution's), N3's step between patches is ``patch_stride``; the old spellings warn with a
``DeprecationWarning`` for one release.
"""

import warnings

import pytest
import torch

import operators


def test_convnn_padding_alone_at_stride_one_warns_that_it_is_now_the_convs():
    with pytest.warns(DeprecationWarning, match="candidate_padding"):
        layer = operators.ConvNN2d(3, 4, padding=1)
    assert layer.candidate_padding == 0  # padding=1 is the 3x3 conv's 'same': no candidate ring
    x = torch.randn(2, 3, 6, 7)
    assert layer(x).shape == (2, 4, 6, 7)


@pytest.mark.parametrize("kwargs", [dict(padding=1, candidate_padding=0), dict(padding=1, stride=2),
                                    dict(padding="same"), dict(candidate_padding=2), dict(stride=2)])
def test_convnn_new_spellings_do_not_warn(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        operators.ConvNN2d(3, 4, **kwargs)


def test_convnn_candidate_padding_is_the_old_padding():
    torch.manual_seed(0)
    layer = operators.ConvNN2d(3, 2, k=9, similarity="euclidean", candidate_padding=1)
    assert layer.selector.padding == 1 and "candidate_padding=1" in repr(layer)


@pytest.mark.parametrize("cls", [operators.N3Block2d, operators.KNNBlock2d])
def test_n3_stride_is_read_as_patch_stride_with_a_warning(cls):
    kw = dict(k=2, patch_size=4, window=8)
    torch.manual_seed(0)
    new = cls(3, patch_stride=2, **kw).eval()
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="patch_stride"):
        old = cls(3, stride=2, **kw).eval()
    x = torch.randn(1, 3, 12, 12)
    torch.testing.assert_close(old(x), new(x), rtol=0, atol=0)  # same block, same kernels, same shapes
    assert old(x).shape == x.shape  # the block never downsamples
    with pytest.raises(TypeError, match="patch_stride"):
        cls(3, stride=2, patch_stride=3, **kw)


def test_branching_padding_is_read_as_candidate_padding_with_a_warning():
    with pytest.warns(DeprecationWarning, match="candidate_padding"):
        layer = operators.BranchingConv2d(4, 6, padding=1)
    assert layer.convnn.candidate_padding == 1
    with pytest.raises(TypeError, match="candidate_padding"):
        operators.BranchingConv2d(4, 6, padding=1, candidate_padding=2)
