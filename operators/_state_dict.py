"""Public state_dict names for layers whose parameters live in a selector and a combiner.

A drop-in layer must save and load the keys of the torch module it replaces
(``weight``/``bias`` for a conv, ``in_proj_weight``/``out_proj.*`` for attention), while
inside a ``NeighborAggregator`` the same tensors are ``combiner.weight`` or
``selector.query.weight``. :func:`alias_state_dict` installs a pair of hooks that rename
(or concatenate along dim 0, for torch's packed ``in_proj_*``) on save and split on load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


def _present(module: nn.Module, names: Sequence[str]) -> list[str]:
    """The internal names that exist on ``module`` (an absent bias is simply skipped)."""
    state = dict(module.named_parameters()) | dict(module.named_buffers())
    return [n for n in names if state.get(n) is not None]


def alias_state_dict(module: nn.Module, aliases: Mapping[str, Sequence[str]]) -> None:
    """Save ``internal`` keys under ``public`` names and accept the public names on load.

    ``aliases`` maps a public key to the internal keys it stands for; several internal
    keys are concatenated along dim 0 in the order given. A public name ending in ``"."``
    renames a whole submodule: ``{"g.": ["combiner.value."]}`` saves ``combiner.value.0.weight``
    as ``g.0.weight``, buffers included.
    """
    prefixes = {public: internal[0] for public, internal in aliases.items() if public.endswith(".")}
    aliases = {public: internal for public, internal in aliases.items() if not public.endswith(".")}

    def rename(state: dict[str, Any], prefix: str, pairs: list[tuple[str, str]]) -> None:
        for old, new in pairs:
            for key in [k for k in state if k.startswith(prefix + old)]:
                state[prefix + new + key[len(prefix + old):]] = state.pop(key)

    def save(mod: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
        rename(state, prefix, [(internal, public) for public, internal in prefixes.items()])
        for public, internal in aliases.items():
            keys = [prefix + n for n in _present(mod, internal)]
            if keys and all(k in state for k in keys):
                tensors = [state.pop(k) for k in keys]
                state[prefix + public] = tensors[0] if len(tensors) == 1 else torch.cat(tensors, 0)

    def load(mod: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
        rename(state, prefix, list(prefixes.items()))
        for public, internal in aliases.items():
            if prefix + public not in state:
                continue
            names = _present(mod, internal)
            if not names:  # e.g. a bias in the file but bias=False here: let strict loading report it
                continue
            value = state.pop(prefix + public)
            sizes = [mod.get_parameter(n).shape[0] if n in dict(mod.named_parameters())
                     else mod.get_buffer(n).shape[0] for n in names]
            if value.shape[0] != sum(sizes):
                raise ValueError(f"state_dict entry {prefix + public!r} has {value.shape[0]} rows, "
                                 f"expected {sum(sizes)} for {names}")
            for name, part in zip(names, torch.split(value, sizes, 0)):
                state[prefix + name] = part

    module.register_state_dict_post_hook(save)
    module.register_load_state_dict_pre_hook(load)
