"""Where the library keeps what it builds itself (ONNX exports, TensorRT engines, pose bundles).

One definition for every stage: :mod:`pmr_stream.backends` and :mod:`pmr_stream.capture` both
take their cache folder from :func:`cache_dir`, and neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where built artifacts are kept: ``override``, ``$PMR_STREAM_CACHE``, or ``~/.cache/pmr-stream``."""
    if override:
        return Path(override)
    env = os.environ.get("PMR_STREAM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pmr-stream"


__all__ = ["cache_dir"]
