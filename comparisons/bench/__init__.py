"""``neighbor-zoo bench``: every operator's fast path, reference path, torch's native op and the naive all-pairs form, side by side.

:mod:`.workloads` says what runs (and the FLOP counts), :mod:`.naive` the seeds' all-pairs
forms, :mod:`.peer` the public ConvNN layer, :mod:`.memory` how peak memory is measured,
:mod:`.timing` how time is, :mod:`.runner` runs it all into one JSON-ready dict and
:mod:`.report` renders it; :mod:`.command` is the ``bench`` subcommand.
"""

from .command import register
from .report import plot
from .runner import run_bench
from .workloads import WORKLOADS, Settings

__all__ = ["WORKLOADS", "Settings", "plot", "register", "run_bench"]
