"""Figures the library draws itself, and the commands that make them.

``neighbor-zoo figures`` regenerates every docs figure (:mod:`.jobs`), ``neighbor-zoo show``
draws one operator's neighbourhood, ``neighbor-zoo explore`` writes the interactive explorer.
"""

from __future__ import annotations

import argparse

from . import explore_command, figures_command, show_command


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``figures``, ``show`` and ``explore`` subcommands."""
    figures_command.register(sub)
    show_command.register(sub)
    explore_command.register(sub)
