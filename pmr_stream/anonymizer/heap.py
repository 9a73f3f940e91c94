"""Giving freed heap memory back to the OS after the service evicted persons and streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

_malloc_trim: Callable[[int], int] | None = None
#: Trim the heap once this many person tracks (about 23 KB each; a stream's state counts 16) were freed.
TRIM_AFTER: Final[int] = 64


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``; a no-op where there is none).

    Window buffers (23 KB) and decoded metadata come from the C heap, which otherwise keeps
    the pages of everything freed below its top: the resident size would not come down
    after persons and streams are evicted."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = lambda pad: 0  # noqa: E731 - not glibc
    _malloc_trim(0)


__all__ = ["TRIM_AFTER", "trim_heap"]
