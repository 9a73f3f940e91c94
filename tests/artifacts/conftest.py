"""The engine tests use the backend tests' fixtures (random-weights model, dummy, windows, cache)."""

from __future__ import annotations

from tests.backends.conftest import (  # noqa: F401 - fixtures, found by name
    cache,
    model_files,
    one_torch_thread,
    random_windows,
    real_windows,
    reference,
    source,
)
