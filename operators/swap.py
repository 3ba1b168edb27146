"""Put a zoo operator into any network: replace its convolutions in place, and say what was done.

``swap(model, "conv_nn2d")`` walks ``model.named_modules()``, and every submodule that
``where(qualified_name, module)`` accepts (default: each ``nn.Conv2d`` with a 3x3 kernel,
groups 1 and dilation 1; ``nn.Conv1d`` with kernel 3 for a 1-D operator, ``nn.Conv3d`` with a
3x3x3 kernel for a 3-D one) is replaced by
``create(name, in_channels=..., out_channels=..., stride=..., **kwargs)``. The returned
:class:`SwapReport` lists every layer replaced and every convolution left alone, each with
its reason, and prints as a table. ``copy_weights=True`` converts exactly instead
(:func:`operators.convert`), for targets that are mathematically the convolution.

A strided convolution passes its stride: ConvNN, self-attention and the non-local block
then place their queries on the convolution's output grid (keys stay the whole input),
so the network's shapes are unchanged. ConvNN also gets the convolution's zero padding as
``candidate_padding`` (unless given): the zeros the convolution read beyond the border may
be chosen too, which also lets a k = 9 ConvNN run on a 2x2 map (4 tokens + 12 zeros), as
the 3x3 convolution it replaces did. A convolution whose padding is not centred (a 3x3
with padding 0) passes its padding too. An operator that cannot do what the convolution
does there (downsample, or a padding that would put token queries outside the image) is
an error naming the layer: ``layer2.0.conv1: ...``.

The operator may also be given as a callable that builds the layer,
``build(in_channels=, out_channels=)`` (plus ``stride=`` and ``padding=`` where the convolution
strides or shifts its grid), with an optional ``label`` and ``layout`` attribute: the
ablation harness puts its resolved operators (a registered name with the backbone's
settings, or a selector + combiner) into its plain backbones this way. A layer whose layout
is a sequence (``(B, C, N)``, or ``(B, N, E)`` as ``SelfAttention``) is wrapped in a
:class:`~operators.layout.LayoutAdapter` that runs it on the map's positions in raster order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .convert import convert
from .convnn import _ConvNNNd, location_padding
from .info import LAYOUTS, info
from .layout import SEQUENCE_LAYOUTS, LayoutAdapter
from .registry import entry

#: ``where(qualified_name, module) -> bool``: which submodules to replace
Where = Callable[[str, nn.Module], bool]
#: what builds a layer from a convolution's place: ``build(in_channels=, out_channels=, **kw) -> nn.Module``
Builder = Callable[..., nn.Module]
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: spatial axes of a layer taking each input layout
_LAYOUT_DIMS = {**{layout: dims for dims, layout in LAYOUTS.items()}, "(B, N, E)": 1}


@dataclass(frozen=True)
class SwapEntry:
    """One convolution of the network: its qualified name, what it was, and what happened to it (or why not)."""

    name: str
    module: str
    detail: str


@dataclass
class SwapReport:
    """What :func:`swap` did: the layers it ``replaced`` (detail: the new layer) and those ``skipped`` (detail: why)."""

    operator: str
    replaced: list[SwapEntry] = field(default_factory=list)
    skipped: list[SwapEntry] = field(default_factory=list)

    def table(self) -> str:
        """A plain-text table, one row per convolution (replaced first), and a count."""
        rows = [("replaced", e.name, e.module, e.detail) for e in self.replaced]
        rows += [("skipped", e.name, e.module, e.detail) for e in self.skipped]
        header = ("", "layer", "was", f"now {self.operator} / why not")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in [header, *rows]]
        lines.append(f"{len(self.replaced)} replaced, {len(self.skipped)} skipped")
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def describe_conv(module: nn.Module) -> str:
    """``Conv2d(64->128, 3x3, s2)``: a convolution in one short cell (the type name for anything else)."""
    if not isinstance(module, _CONVS):
        return type(module).__name__
    s = f"{type(module).__name__}({module.in_channels}->{module.out_channels}, {'x'.join(map(str, module.kernel_size))}"
    if any(v != 1 for v in module.stride):
        s += f", s{module.stride[0] if len(set(module.stride)) == 1 else module.stride}"
    if module.groups != 1:
        s += f", g{module.groups}"
    if any(v != 1 for v in module.dilation):
        s += f", d{module.dilation}"
    return s + ")"


def why_not_default(module: nn.Module, dims: int) -> str | None:
    """``None`` if the default filter replaces ``module`` for a ``dims``-D operator, else the reason it does not."""
    kind = _CONVS[dims - 1]
    if type(module) is not kind:
        return f"not an nn.{kind.__name__} (a {dims}-D operator replaces those)"
    if module.kernel_size != (3,) * dims:
        return f"kernel {'x'.join(map(str, module.kernel_size))} (the default replaces {'x'.join(['3'] * dims)} only)"
    if module.groups != 1:
        return f"groups={module.groups} (depthwise / grouped)"
    if module.dilation != (1,) * dims:
        return f"dilation={module.dilation}"
    return None


def swap(model: nn.Module, name: str | Builder, *, where: Where | None = None, copy_weights: bool = False,
         **kwargs: Any) -> SwapReport:
    """Replace, in place, the submodules of ``model`` that ``where`` accepts by operator ``name``.

    Args:
        model: any ``nn.Module``; it is changed in place (keep a ``copy.deepcopy`` to compare).
        name: a registered operator name (any case or alias), e.g. ``'conv_nn2d'``; or a callable
            ``build(in_channels=, out_channels=, **kw) -> nn.Module`` (module docstring) that is
            called with ``kwargs`` too.
        where: ``where(qualified_name, module) -> bool`` picks the layers; default: every
            ``nn.Conv2d`` with a 3x3 kernel, groups 1, dilation 1 (``nn.Conv1d`` with kernel 3
            when ``name`` is a 1-D operator, ``nn.Conv3d`` 3x3x3 when a 3-D one). It is called
            for every submodule except the model itself; every convolution it rejects is
            reported as skipped.
        copy_weights: build each layer with :func:`operators.convert` (an exact copy of the
            convolution; only for targets that are one); ``kwargs`` must then be empty.
        kwargs: further constructor arguments of the operator (e.g. ``k=9``).

    Returns:
        A :class:`SwapReport` (print it for a table).

    Raises:
        ``ValueError`` / ``TypeError`` prefixed with the layer's qualified name when a layer
        cannot be built there (e.g. ``layer2.0.conv1: ...``); ``model`` is then unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(name, str):
        target: Any = entry(name)
        label, layout = target.name, info(target.name).layout
    elif callable(name):
        if copy_weights:
            raise TypeError("copy_weights=True converts to a registered exact target by name, got a callable")
        target, label = name, str(getattr(name, "label", None) or getattr(name, "__name__", type(name).__name__))
        layout = getattr(name, "layout", None) or LAYOUTS[2]
    else:
        raise TypeError(f"name must be a registered operator name or a callable building the layer, "
                        f"got {type(name).__name__}")
    if layout not in _LAYOUT_DIMS:
        raise ValueError(f"{label}: unknown input layout {layout!r}; known: {', '.join(_LAYOUT_DIMS)}")
    if copy_weights and kwargs:
        raise TypeError(f"copy_weights=True converts each convolution exactly, so it takes no operator arguments, "
                        f"got {sorted(kwargs)}")
    dims = _LAYOUT_DIMS[layout]
    report = SwapReport(label)
    plan: list[tuple[str, nn.Module]] = []
    for qualified, module in model.named_modules():
        if not qualified:
            continue
        if where is not None:
            accepted, reason = bool(where(qualified, module)), "where() returned False"
        else:
            reason = why_not_default(module, dims)
            accepted = reason is None
        if accepted:
            plan.append((qualified, module))
        elif isinstance(module, _CONVS):
            report.skipped.append(SwapEntry(qualified, describe_conv(module), reason))
    built = []
    for qualified, module in plan:  # build everything first: an error leaves the model as it was
        try:
            if copy_weights:
                layer = convert(module, target.name)
            else:
                wrap = _on_positions(layout, module)
                layer = _build(target, module, dims, kwargs) if isinstance(name, str) else _call(target, module, kwargs)
                layer = LayoutAdapter(layer, layout) if wrap else layer
        except (TypeError, ValueError) as err:
            raise type(err)(f"{qualified}: {err}") from err
        built.append((qualified, module, layer))
    for qualified, module, layer in built:
        parent, _, attr = qualified.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, layer)
        report.replaced.append(SwapEntry(qualified, describe_conv(module), _summary(layer, module)))
    return report


def _call(build: Builder, module: nn.Module, kwargs: dict[str, Any]) -> nn.Module:
    """``build(in_channels=, out_channels=, **kwargs)`` for one convolution, with its stride and padding where it
    strides or shifts its output grid; the layer is moved to the convolution's device and dtype."""
    if not isinstance(module, _CONVS):
        raise TypeError(f"swap builds an operator from a convolution's channels, stride and padding; "
                        f"{type(module).__name__} is not a torch convolution (narrow `where`)")
    args: dict[str, Any] = dict(in_channels=module.in_channels, out_channels=module.out_channels)
    if any(s != 1 for s in module.stride) or any(_query_offset(module)):
        args.update(stride=module.stride, padding=module.padding)
    layer = build(**args, **kwargs)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"the operator's builder must return an nn.Module, got {type(layer).__name__}")
    return layer.to(device=module.weight.device, dtype=module.weight.dtype).train(module.training)


def _on_positions(layout: str, module: nn.Module) -> bool:
    """Whether a layer taking ``layout`` must run on ``module``'s positions as one sequence (a LayoutAdapter);
    such a layer keeps the positions, so it cannot stand for a strided convolution."""
    if layout not in SEQUENCE_LAYOUTS or (layout == "(B, C, N)" and isinstance(module, nn.Conv1d)):
        return False
    if isinstance(module, _CONVS) and any(s != 1 for s in module.stride):
        raise ValueError(f"a {layout} operator runs on the positions as one sequence and cannot downsample as this "
                         f"convolution does (stride={module.stride})")
    return True


def _build(target: Any, module: nn.Module, dims: int, kwargs: dict[str, Any]) -> nn.Module:
    """``create(name, in_channels, out_channels, stride=..., padding=..., **kwargs)`` for one convolution."""
    if not isinstance(module, _CONVS):
        raise TypeError(f"swap builds an operator from a convolution's channels, stride and padding; "
                        f"{type(module).__name__} is not a torch convolution (narrow `where`)")
    cls = target.target
    params = inspect.signature(cls).parameters
    args: dict[str, Any] = {}
    if target.family == "convolution":  # the zoo's own conv: every argument of the torch conv
        args = dict(kernel_size=module.kernel_size, stride=module.stride, padding=module.padding,
                    dilation=module.dilation, groups=module.groups, bias=module.bias is not None,
                    padding_mode=module.padding_mode)
    else:
        offset = _query_offset(module)
        if any(s != 1 for s in module.stride) or any(offset):
            if not getattr(cls, "strided_queries", False):
                raise ValueError(f"{target.name} cannot place its queries on this convolution's output grid "
                                 f"(stride={module.stride}, padding={module.padding}); operators that can: "
                                 f"ConvNN, self_attention2d, non_local_block")
            args["stride"] = module.stride
            if any(offset):
                radius = location_padding(kwargs.get("k", params["k"].default), dims) \
                    if issubclass(cls, _ConvNNNd) else 0
                args["padding"] = tuple(radius - o for o in offset)
                if min(args["padding"]) < 0:
                    raise ValueError(f"{target.name}'s queries are single tokens, so its padding cannot start the "
                                     f"output grid {max(offset)} tokens inside the image as this convolution's "
                                     f"padding={module.padding} with kernel_size={module.kernel_size} does")
        if issubclass(cls, _ConvNNNd):
            args["bias"] = module.bias is not None
            if "candidate_padding" not in kwargs:
                # the zeros the conv read beyond the border are candidates too (at least ConvNN's own default)
                similarity = {**target.defaults, **kwargs}.get("similarity", "cosine")
                radius = location_padding(kwargs.get("k", params["k"].default), dims)
                default = (radius if similarity == "location" else 0) + max(0, -min(offset))
                args["candidate_padding"] = max(default, *_conv_padding(module))
    if "device" in params and "dtype" in params:  # built where the convolution lives, in its dtype
        args.update(device=module.weight.device, dtype=module.weight.dtype)
    return target.build(module.in_channels, module.out_channels, {**args, **kwargs}).train(module.training)


def _conv_padding(module: nn.Module) -> tuple[int, ...]:
    """The convolution's zero padding per axis (``'same'``: half the kernel, ``'valid'``: 0)."""
    if isinstance(module.padding, str):
        return tuple((k - 1) // 2 if module.padding == "same" else 0 for k in module.kernel_size)
    return tuple(module.padding)


def _query_offset(module: nn.Module) -> tuple[int, ...]:
    """Where the conv's output grid starts relative to a centred one: ``(k - 1) // 2 - padding`` per axis."""
    if isinstance(module.padding, str):
        return (0,) * len(module.kernel_size) if module.padding == "same" else \
            tuple((k - 1) // 2 for k in module.kernel_size)
    return tuple((k - 1) // 2 - p for k, p in zip(module.kernel_size, module.padding))


def _summary(layer: nn.Module, conv: nn.Module) -> str:
    """The new layer in one cell, in the style of :func:`describe_conv`: ``ConvNN2d(64->128, s2)``."""
    inner = layer.layer if isinstance(layer, LayoutAdapter) else layer
    s = f"{type(inner).__name__}({conv.in_channels}->{conv.out_channels}"
    if any(v != 1 for v in conv.stride):
        s += f", s{conv.stride[0] if len(set(conv.stride)) == 1 else conv.stride}"
    return s + (f", on the positions as {layer.layout})" if inner is not layer else ")")
