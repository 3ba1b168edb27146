"""``neighbor-zoo compare`` and ``report``: operators trained side by side in a backbone on real data.

:mod:`.specs` says which operator goes in (a registered name, a shorthand or selector +
combiner parts, :mod:`.parts`), :mod:`.presets` and :mod:`.config` name whole sweeps,
:mod:`.recipes` how a run trains, :mod:`.sweep` which runs a command makes, :mod:`.tasks` and
:mod:`.backbones` the data and the network, :mod:`.train` trains one run resumably,
:mod:`.results` stores its records and :mod:`.report` draws tables and plots from them;
:mod:`.command` is the ``compare`` and ``report`` subcommands.
"""

from .command import register
from .record import RunRecord
from .results import collect

__all__ = ["RunRecord", "collect", "register"]
