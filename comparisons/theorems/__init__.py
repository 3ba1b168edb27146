"""Every theorem the library claims; importing this package registers them all.

The public API for writing one's own (see README, "Add a theorem"): :func:`theorem` registers
a check, :class:`Trial` is what a check yields, :func:`max_error` compares two computations
(forward and gradients), :func:`randn` draws a random input from the seeded generator,
:func:`describe` formats a trial's shapes; :func:`select`, :func:`verify` and :func:`sweep` run
them. ``neighbor-zoo verify --plugin FILE.py`` and the ``neighbor_zoo.theorems`` entry-point
group (:mod:`.plugins`) load theorems that live outside the library. :mod:`.command` holds the
``verify`` and ``list`` subcommands.
"""

from . import (attention, conv, convnn, cordonnier, hybrid, n3,  # noqa: F401  (importing registers them)
               neighborhood_attention, networks, spectral, volumetric)
from .base import (DEFAULT_TOLERANCE, THEOREMS, Theorem, Trial, Verdict, describe, max_error, randn, scaled_error,
                   select, theorem, verify)
from .command import register
from .sweep import Sweep, sweep

__all__ = ["DEFAULT_TOLERANCE", "THEOREMS", "Sweep", "Theorem", "Trial", "Verdict", "describe", "max_error", "randn",
           "register", "scaled_error", "select", "sweep", "theorem", "verify"]
