import dataclasses

import pytest

from neighborhoods import fast_paths
from neighborhoods.fast_paths import registry


@pytest.fixture
def spy(monkeypatch):
    """Counts calls of every registered fast path, by pair."""
    calls = {}
    for key, entry in fast_paths.registered().items():
        def run(*args, _run=entry.run, _key=key, **kwargs):
            calls[_key] = calls.get(_key, 0) + 1
            return _run(*args, **kwargs)
        monkeypatch.setitem(registry._PATHS, key, dataclasses.replace(entry, run=run))
    return calls
