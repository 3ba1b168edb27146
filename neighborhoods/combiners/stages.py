"""Several combiners in turn, all with one neighbourhood: the affinity is computed once.

Tao et al. 2018 ("Nonlocal neural networks, nonlocal diffusion and nonlocal modeling", Sec.
4) build a *nonlocal stage* from several nonlocal blocks that share the affinity computed
from the stage's input, so that the stage is a discretised nonlocal diffusion; Zhu et al.
2021 (the spectral non-local paper's NS, their ``Stage(nl_type='ns')``) use the same layout.
With a selector computing ``A`` from ``X_0`` once, ``Stages([F_1, ..., F_R])`` gives

    X_r = F_r(X_{r-1}, A),  r = 1..R,

and each ``F_r`` (e.g. a :class:`~neighborhoods.combiners.GraphFilter` with its residual)
reads the neighbourhood through :meth:`~neighborhoods.Neighborhood.aggregate` as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..neighborhood import Neighborhood
from .base import Combiner


class Stages(Combiner):
    """``X_r = F_r(X_{r-1}, A)`` for ``r = 1..R``: the combiners in turn, all with the same neighbourhood.

    Args:
        stages: the combiners ``F_1..F_R`` (at least one); each one's ``in_channels`` must be
            the previous one's ``out_channels``.

    Shape:
        x: ``(B, C, *spatial)``, a neighbourhood whose queries are the input's tokens (every
        stage's output is the next one's input) -> ``(B, stages[-1].out_channels, *spatial)``.
    """

    def __init__(self, stages: Sequence[Combiner]) -> None:
        super().__init__()
        stages = list(stages) if isinstance(stages, (list, tuple, nn.ModuleList)) else stages
        if not isinstance(stages, list) or not stages:
            raise TypeError(f"stages must be a non-empty list of combiners, got {stages!r}")
        for i, stage in enumerate(stages):
            if not isinstance(stage, Combiner):
                raise TypeError(f"stages[{i}] must be a neighborhoods Combiner, got {type(stage).__name__}")
            if i and stage.in_channels != stages[i - 1].out_channels:
                raise ValueError(f"stages[{i}] takes in_channels={stage.in_channels}, but stages[{i - 1}] gives "
                                 f"out_channels={stages[i - 1].out_channels}")
        self.stages = nn.ModuleList(stages)
        self.in_channels = stages[0].in_channels
        self.out_channels = stages[-1].out_channels

    @property
    def residual(self) -> bool:
        """Whether every stage adds its input back (a fresh residual stage is the identity)."""
        return all(bool(getattr(stage, "residual", False)) for stage in self.stages)

    @property
    def shortcut(self) -> nn.Module | None:
        """The last stage's projection shortcut, if it changes the channels (a fresh residual ``Stages`` is ``P X``)."""
        return getattr(self.stages[-1], "shortcut", None)

    def forward(self, x: Tensor, nbhd: Neighborhood) -> Tensor:
        for stage in self.stages:
            x = stage(x, nbhd)
        return x

    def reset_parameters(self) -> None:
        for stage in self.stages:
            stage.reset_parameters()

    def extra_repr(self) -> str:
        return f"{len(self.stages)} stages sharing one neighbourhood"
