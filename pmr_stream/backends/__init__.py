"""Engine backends: one interface to run the streaming graph on torch, ONNX Runtime or TensorRT.

    from pmr_stream.backends import get_backend

    backend = get_backend("auto", model_path="model.pt", dummy="dummy.npz")
    anonymized = backend.anonymize(windows)  # (B, 75, 25, 3) float32 -> (B, 75, 25, 3)

Importing this package imports neither onnxruntime nor TensorRT; each backend
imports its library when it is made.
"""

from __future__ import annotations

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
