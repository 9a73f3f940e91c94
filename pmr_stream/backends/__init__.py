"""Backends: one interface to run the streaming graph on torch, ONNX Runtime or TensorRT.

    from pmr_stream.backends import get_backend

    backend = get_backend("auto", model_path="model.pt", dummy="dummy.npz")
    anonymized = backend.anonymize(windows)  # (B, 75, 25, 3) float32 -> (B, 75, 25, 3)

Importing this package imports nothing heavy: the names below are loaded on first use (torch
with them), so the flags of :mod:`pmr_stream.backends.options` cost a command's ``--help``
nothing. Neither onnxruntime nor TensorRT is imported until such a backend is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pmr_stream.backends.base import (
        DEFAULT_MAX_BATCH,
        Backend,
        BackendOptions,
        BackendUnavailable,
        ModelCheckError,
        ModelSource,
        cache_dir,
        load_source,
        probe_windows,
    )
    from pmr_stream.backends.registry import (
        Facts,
        auto_candidates,
        get_backend,
        host_facts,
        list_backends,
        register_backend,
        unavailable_reason,
    )

__all__ = [
    "DEFAULT_MAX_BATCH", "Backend", "BackendOptions", "BackendUnavailable", "Facts", "ModelCheckError", "ModelSource",
    "auto_candidates", "cache_dir", "get_backend", "host_facts", "list_backends", "load_source", "probe_windows",
    "register_backend", "unavailable_reason",
]  # fmt: skip
#: The names :mod:`pmr_stream.backends.registry` holds; the others are :mod:`pmr_stream.backends.base`'s.
_REGISTRY = {"Facts", "auto_candidates", "get_backend", "host_facts", "list_backends", "register_backend",
             "unavailable_reason"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _REGISTRY:
        from pmr_stream.backends import registry

        return getattr(registry, name)
    if name in __all__:
        from pmr_stream.backends import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
