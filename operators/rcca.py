"""CCNet's recurrent criss-cross attention head (RCCA): a 3x3 conv in, R criss-cross steps, a 3x3 conv out.

Huang et al. 2019 (Sec. 3.1 and Fig. 3): the backbone's features ``H`` are reduced by a 3x3
convolution, passed ``R`` times (R = 2) through one criss-cross attention module with shared
weights (:class:`~operators.CrissCrossAttention2d`, whose two steps connect every pixel with
every pixel), mapped by a second 3x3 convolution, concatenated with ``H`` and fused by a 3x3
bottleneck. The authors' ``RCCAModule`` (speedinghzl/CCNet, ``networks/ccnet.py``) builds:

======================  ==========================================================  ==============
part                    layers                                                      channels
======================  ==========================================================  ==============
``conva``               Conv2d 3x3 (no bias), BatchNorm, LeakyReLU(0.01)            C -> C / 4
``cca``                 criss-cross attention, ``recurrence`` times                 C / 4
``convb``               Conv2d 3x3 (no bias), BatchNorm, LeakyReLU(0.01)            C / 4
``bottleneck``          concat ``[x, .]``, Conv2d 3x3 (no bias), BatchNorm,          C + C / 4 -> out
                        LeakyReLU(0.01), Dropout2d(0.1)
``classifier``          Conv2d 1x1 with bias (only with ``num_classes``)            out -> classes
======================  ==========================================================  ==============

The authors' BatchNorm is ``InPlaceABNSync``, a BatchNorm followed by its default activation,
a leaky ReLU of slope 0.01; here ``nn.BatchNorm2d`` + ``nn.LeakyReLU(0.01)``. Their bottleneck
ends with a 1x1 classifier from 512 channels; here it is optional (``num_classes``), so the
head drops into a network as a layer of ``out_channels``. The 3x3 convolutions are the zoo's
:class:`~operators.Conv2d` (a fixed-window ``NeighborAggregator``; torch's state_dicts load).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neighborhoods import Neighborhood
from neighborhoods.checks import check_float, check_int, check_tensor

from .conv import Conv2d
from .registry import Example, register
from .spectral import CrissCrossAttention2d

#: the slope of inplace_abn's default activation (InPlaceABN(activation="leaky_relu", activation_param=0.01))
ABN_SLOPE = 0.01


def conv_bn_act(in_channels: int, out_channels: int, factory: dict) -> nn.Sequential:
    """Conv2d 3x3 (padding 1, no bias), BatchNorm2d, LeakyReLU(0.01): the authors' conv + InPlaceABNSync."""
    return nn.Sequential(Conv2d(in_channels, out_channels, 3, padding=1, bias=False, **factory),
                         nn.BatchNorm2d(out_channels, **factory), nn.LeakyReLU(ABN_SLOPE))


@register(family="head", example=Example(dict(in_channels=8), (2, 8, 5, 6)), aliases=["rcca"])
class RCCA2d(nn.Module):
    """CCNet's RCCA head: ``bottleneck([x, convb(CCA^R(conva(x)))])`` (Huang et al. 2019, Sec. 3.1).

    Args:
        in_channels: C, the backbone features' channels.
        out_channels: channels of the bottleneck's output (default C; the authors': 512).
        inter_channels: channels of ``conva``, the attention and ``convb`` (default ``C // 4``).
        recurrence: R, the criss-cross steps with shared weights (default 2, the paper's).
        key_channels: the attention's query/key channels (default ``inter_channels // 8``).
        dropout: the bottleneck's Dropout2d probability (default 0.1).
        num_classes: add the authors' 1x1 classifier (with bias) mapping ``out_channels`` to
            this many channels; ``None`` (default) leaves it out.
        device, dtype: factory kwargs.

    Submodules: ``conva``, ``cca`` (a :class:`CrissCrossAttention2d`), ``convb``,
    ``bottleneck``, ``classifier`` (or ``None``).

    Shape:
        x: ``(B, C, H, W)`` -> ``(B, out_channels or num_classes, H, W)``.
    """

    #: the head is not ``X + ...`` (its attention is, inside): operators.info reads this
    residual = False

    def __init__(self, in_channels: int, out_channels: int | None = None, inter_channels: int | None = None,
                 recurrence: int = 2, key_channels: int | None = None, dropout: float = 0.1,
                 num_classes: int | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        c = check_int("in_channels", in_channels, minimum=1)
        out = check_int("out_channels", c if out_channels is None else out_channels, minimum=1)
        inter = check_int("inter_channels", max(c // 4, 1) if inter_channels is None else inter_channels, minimum=1)
        self.dropout = check_float("dropout", dropout, low=0.0, high=1.0)
        f = {"device": device, "dtype": dtype}
        self.in_channels, self.out_channels, self.inter_channels = c, out, inter
        self.conva = conv_bn_act(c, inter, f)
        self.cca = CrissCrossAttention2d(inter, key_channels, recurrence=recurrence, **f)
        self.convb = conv_bn_act(inter, inter, f)
        self.bottleneck = nn.Sequential(*conv_bn_act(c + inter, out, f), nn.Dropout2d(self.dropout))
        self.classifier = (None if num_classes is None
                           else Conv2d(out, check_int("num_classes", num_classes, minimum=1), 1, **f))

    def attend(self, x: Tensor) -> Tensor:
        """``convb(CCA^R(conva(x)))``: the branch that is concatenated with ``x``."""
        return self.convb(self.cca(self.conva(x)))

    def forward(self, x: Tensor) -> Tensor:
        check_tensor("x", x, ndim=4)
        y = self.bottleneck(torch.cat([x, self.attend(x)], 1))
        return self.classifier(y) if self.classifier is not None else y

    def step_neighborhoods(self, x: Tensor) -> list[Neighborhood]:
        """The criss-cross neighbourhood of each of the R steps on ``x`` (see
        :meth:`CrissCrossAttention2d.step_neighborhoods`): their product reaches every pixel at R = 2."""
        check_tensor("x", x, ndim=4)
        return self.cca.step_neighborhoods(self.conva(x))

    def reset_parameters(self) -> None:
        for part in (*self.conva, self.cca, *self.convb, *self.bottleneck, self.classifier):
            if callable(getattr(part, "reset_parameters", None)):
                part.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, inter_channels={self.inter_channels}"
        return s + (f", dropout={self.dropout:g}" if self.dropout != 0.1 else "")
