"""What users run on the zoo, in four rooms that each own their commands (:mod:`comparisons.cli` dispatches).

:mod:`.theorems` (``verify``, ``list``), :mod:`.ablation` (``compare``, ``report``),
:mod:`.bench` (``bench``) and :mod:`.figures` (``figures``, ``show``, ``explore``).
"""

from neighborhoods import __version__

__all__ = ["__version__"]
