"""The public layers are real classes with their own docstrings, and choice strings are Literal types.

Issue 16 item 3 (operators): a type checker or an IDE sees ``class ConvNN2d(_ConvNNNd)`` in
the source, as torch.nn and NATTEN write their 1-D / 2-D layers, not a ``type(...)`` product,
and completes ``similarity=`` from a ``Literal``.
"""

import inspect
import typing

import pytest

import operators
from operators import registry

CLASSES = sorted({registry.entry(n).target for n in operators.available()}, key=lambda c: c.__name__)
#: constructor arguments that take one of a fixed set of strings
CHOICES = {"similarity", "sampling", "sample_from", "metric", "padding_mode", "path", "mode", "temperature",
           "update", "kernel", "normalize"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_public_class_is_a_class_statement_with_its_own_docstring(cls):
    lines = [line for line in inspect.getsource(cls).splitlines() if not line.startswith(("@", " "))]
    assert lines[0].startswith(f"class {cls.__name__}("), lines[0]  # (after any decorator)
    assert cls.__dict__.get("__doc__"), f"{cls.__name__} has no docstring of its own"
    assert "{" not in cls.__doc__.split("\n")[0], cls.__doc__  # no template placeholders left


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_choice_arguments_are_literal_types(cls):
    hints = typing.get_type_hints(cls.__init__)
    params = inspect.signature(cls.__init__).parameters
    for name in CHOICES & set(params):
        hint = hints[name]
        literals = [a for a in (typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,))
                    if typing.get_origin(a) is typing.Literal]
        assert literals, f"{cls.__name__}.{name}: {hint} is not a Literal"
        default = params[name].default
        if isinstance(default, str):
            assert default in typing.get_args(literals[0]), f"{cls.__name__}.{name}: default {default!r} not a choice"


def test_literals_are_the_checked_choices():
    from operators.convnn import SIMILARITIES, Similarity
    from operators.non_local import MODES, NonLocalMode
    assert typing.get_args(Similarity) == SIMILARITIES
    assert typing.get_args(NonLocalMode) == MODES
