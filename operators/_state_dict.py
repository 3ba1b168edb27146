"""Public state_dict names for layers whose parameters live in a selector and a combiner.

A drop-in layer must save and load the keys of the torch module it replaces
(``weight``/``bias`` for a conv, ``in_proj_weight``/``out_proj.*`` for attention), while
inside a ``NeighborAggregator`` the same tensors are ``combiner.weight`` or
``selector.query.weight``. :func:`alias_state_dict` installs hooks that rename (or
concatenate along dim 0, for torch's packed ``in_proj_*``) on save, split on load, and
report load errors (missing and unexpected keys, size mismatches) under the public names.

The hooks are methods of a module-level class, so a layer pickles (``pickle.dumps``,
``torch.save(module)``, ``copy.deepcopy``) like any torch module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

#: torch's wording for a shape mismatch (``nn.Module._load_from_state_dict``); the key is rewritten
_SIZE_MISMATCH = re.compile(r"^size mismatch for ([^:]+):")


def _present(module: nn.Module, names: Sequence[str]) -> list[str]:
    """The internal names that exist on ``module`` (an absent bias is simply skipped)."""
    state = dict(module.named_parameters()) | dict(module.named_buffers())
    return [n for n in names if state.get(n) is not None]


def _tensor(module: nn.Module, name: str) -> torch.Tensor:
    return module.get_parameter(name) if name in dict(module.named_parameters()) else module.get_buffer(name)


class StateDictAliases:
    """The save / load hooks of one layer: public key -> internal keys (see :func:`alias_state_dict`)."""

    def __init__(self, aliases: Mapping[str, Sequence[str]]) -> None:
        #: public submodule prefix -> internal prefix, e.g. ``"g." -> "combiner.value."``
        self.prefixes = {public: internal[0] for public, internal in aliases.items() if public.endswith(".")}
        #: public tensor key -> internal keys concatenated along dim 0
        self.tensors = {public: list(internal) for public, internal in aliases.items() if not public.endswith(".")}
        # during one load_state_dict call: (prefix, error list, internal keys already reported)
        self._loading: tuple[str, list[str], set[str]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loading": None}  # the in-flight load is not part of the layer

    # ---- names --------------------------------------------------------------------------
    def public_name(self, key: str, prefix: str) -> str:
        """The key ``state_dict()`` writes for the internal (full) ``key`` of a layer at ``prefix``."""
        if not key.startswith(prefix):
            return key
        rest = key[len(prefix):]
        for public, internal in self.tensors.items():
            if rest in internal:
                return prefix + public
        for public, internal in self.prefixes.items():
            if rest.startswith(internal):
                return prefix + public + rest[len(internal):]
        return key

    @staticmethod
    def _rename(state: dict[str, Any], prefix: str, pairs: list[tuple[str, str]]) -> None:
        for old, new in pairs:
            for key in [k for k in state if k.startswith(prefix + old)]:
                state[prefix + new + key[len(prefix + old):]] = state.pop(key)

    # ---- hooks --------------------------------------------------------------------------
    def save(self, module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
        """state_dict post-hook: internal keys -> public keys."""
        self._rename(state, prefix, [(internal, public) for public, internal in self.prefixes.items()])
        for public, internal in self.tensors.items():
            keys = [prefix + n for n in _present(module, internal)]
            if keys and all(k in state for k in keys):
                tensors = [state.pop(k) for k in keys]
                state[prefix + public] = tensors[0] if len(tensors) == 1 else torch.cat(tensors, 0)

    def load(self, module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any, strict: bool,
             missing_keys: list[str], unexpected_keys: list[str], error_msgs: list[str]) -> None:
        """load_state_dict pre-hook: public keys -> internal keys; a public tensor of the wrong
        shape is reported once, under its public name, in torch's words."""
        reported: set[str] = set()
        self._loading = (prefix, error_msgs, reported)
        self._rename(state, prefix, list(self.prefixes.items()))
        for public, internal in self.tensors.items():
            if prefix + public not in state:
                continue
            names = _present(module, internal)
            if not names:  # e.g. a bias in the file but bias=False here: strict loading reports it
                continue
            value = state.pop(prefix + public)
            parts = [_tensor(module, n) for n in names]
            expected = (parts[0].shape if len(parts) == 1
                        else torch.Size([sum(p.shape[0] for p in parts), *parts[0].shape[1:]]))
            if not isinstance(value, torch.Tensor) or value.shape != expected:
                shape = value.shape if isinstance(value, torch.Tensor) else type(value).__name__
                error_msgs.append(f"size mismatch for {prefix + public}: copying a param with shape {shape} from "
                                  f"checkpoint, the shape in current model is {expected}.")
                reported.update(prefix + n for n in names)
                continue
            for name, part in zip(names, torch.split(value, [p.shape[0] for p in parts], 0)):
                state[prefix + name] = part

    def loaded(self, module: nn.Module, incompatible: Any) -> None:
        """load_state_dict post-hook: missing / unexpected keys and size mismatches under public names."""
        if self._loading is None:
            return
        prefix, error_msgs, reported = self._loading
        self._loading = None
        for keys in (incompatible.missing_keys, incompatible.unexpected_keys):
            public = [self.public_name(k, prefix) for k in keys if k not in reported]
            keys[:] = list(dict.fromkeys(public))  # a packed key is reported once, in order
        for i, msg in enumerate(error_msgs):
            match = _SIZE_MISMATCH.match(msg)
            if match:
                error_msgs[i] = f"size mismatch for {self.public_name(match[1], prefix)}:" + msg[match.end():]


def alias_state_dict(module: nn.Module, aliases: Mapping[str, Sequence[str]]) -> StateDictAliases:
    """Save ``internal`` keys under ``public`` names and accept the public names on load.

    ``aliases`` maps a public key to the internal keys it stands for; several internal
    keys are concatenated along dim 0 in the order given. A public name ending in ``"."``
    renames a whole submodule: ``{"g.": ["combiner.value."]}`` saves ``combiner.value.0.weight``
    as ``g.0.weight``, buffers included. Load errors name the public keys.
    """
    hooks = StateDictAliases(aliases)
    # partials, not bound methods: torch tags every hook with an attribute, which a method refuses
    module.register_state_dict_post_hook(functools.partial(StateDictAliases.save, hooks))
    module.register_load_state_dict_pre_hook(functools.partial(StateDictAliases.load, hooks))
    module.register_load_state_dict_post_hook(functools.partial(StateDictAliases.loaded, hooks))
    return hooks
