"""``neighbor-zoo compare`` and ``report``: operators trained side by side in a backbone on real data.

:mod:`.specs` says which operator goes in (a registered name, a shorthand or selector +
combiner parts, :mod:`.parts`), :mod:`.presets` and :mod:`.config` name whole sweeps,
:mod:`.recipes` how a run trains, :mod:`.sweep` which runs a command makes, :mod:`.tasks` and
:mod:`.backbones` the data and the network, :mod:`.train` trains one run resumably,
:mod:`.results` stores its records (each with its configuration and :mod:`.provenance`'s
environment) and :mod:`.report` draws tables and plots from them: :mod:`.summary` computes a
table's rows with :mod:`.statistics` (intervals, paired verdicts, convergence) and
:mod:`.cost` (parameters, FLOPs, width matching); :mod:`.command` is the ``compare`` and
``report`` subcommands.
"""

from .checkpoints import LoadedRun, load_run
from .command import register
from .record import RunRecord
from .results import collect

__all__ = ["LoadedRun", "RunRecord", "collect", "load_run", "register"]
