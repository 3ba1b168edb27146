"""One template for the 1-D / 2-D twins of a dimension-generic layer.

A layer written once as ``_FooNd`` (reading its number of spatial axes from the class
attribute ``spatial_dims``) gets its public ``Foo1d`` and ``Foo2d`` from :func:`nd_pair`,
the way ``torch.nn`` derives ``Conv1d`` / ``Conv2d`` from ``_ConvNd``, without a second
hand-written class body.
"""

from __future__ import annotations

#: the input layout of a layer with that many spatial axes (DESIGN.md's convention)
LAYOUTS = {1: "(B, C, N)", 2: "(B, C, H, W)", 3: "(B, C, T, H, W)"}
_SPATIAL = {1: "N", 2: "H, W", 3: "T, H, W"}


def nd_pair(base: type, module: str) -> tuple[type, type]:
    """The public ``<Name>1d`` and ``<Name>2d`` subclasses of ``_<Name>Nd`` (or ``_<Name>``).

    In the base's docstring ``{d}`` becomes 1 or 2, ``{layout}`` the input layout
    (``(B, C, N)`` / ``(B, C, H, W)``) and ``{spatial}`` the spatial axes (``N`` / ``H, W``).
    ``module`` is the defining module's ``__name__`` (so the classes pickle and document
    as that module's own).
    """
    stem = base.__name__.lstrip("_").removesuffix("Nd")
    classes = []
    for dims in (1, 2):
        public = f"{stem}{dims}d"
        doc = (base.__doc__ or "").replace("{d}", str(dims)).replace("{layout}", LAYOUTS[dims]).replace(
            "{spatial}", _SPATIAL[dims])
        classes.append(type(public, (base,), {"__doc__": doc, "__module__": module, "__qualname__": public,
                                              "spatial_dims": dims}))
    return classes[0], classes[1]
