"""The field rules of the wire schema: limits, :class:`WireError` and its reasons, the checks.

Every message field of :mod:`pmr_stream.wire.schema` passes one of these checks when its
dataclass is built (so a message that exists is valid, whether it was made here or
decoded from the wire): stream ids (:data:`STREAM_ID_RE`), integers within a range
(int64 by default), finite numbers within a range, booleans, bounded text, the layout
(:data:`WIRE_LAYOUTS`), ``model_id`` only on anonymized messages, JSON-like metadata
(depth-limited; its size is limited by the receiver, :func:`check_metadata_size`), and
float32 arrays of a fixed shape with every element finite and in range (joints within
:data:`MAX_ABS_METRES`). A failed check raises :class:`WireError`, whose ``reason`` is
one of :data:`REASONS`.
"""

from __future__ import annotations

import math
import re
from typing import Final

import msgpack
import numpy as np
import numpy.typing as npt

#: Layouts a message may carry (the PMR network works on NTU-25).
WIRE_LAYOUTS: Final[tuple[str, ...]] = ("ntu25",)
#: Stream ids: 1-64 characters, letters, digits, ``_ . -``, starting with a letter or digit.
STREAM_ID_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: Coordinates beyond this many metres are refused (no camera sees that far; keeps
#: downstream float arithmetic far from overflow).
MAX_ABS_METRES: Final[float] = 1000.0
_INT64_MAX: Final[int] = 2**63 - 1
_MAX_TEXT: Final[int] = 1024
_MAX_METADATA_DEPTH: Final[int] = 8
#: Default limit on a stream start's ``metadata``, bytes as msgpack-encoded: receivers (the
#: :class:`~pmr_stream.wire.subscriber.Subscriber`) refuse larger ones (``metadata_too_large``).
MAX_METADATA_BYTES: Final[int] = 16 * 1024

#: Reason codes of :class:`WireError`.
REASONS: Final[dict[str, str]] = {
    "too_large": "payload larger than the maximum message size",
    "framing": "not '<topic>\\0<payload>'",
    "not_msgpack": "payload is not (complete) msgpack",
    "not_a_map": "payload is not a msgpack map",
    "version": "unsupported schema version",
    "kind": "unknown message kind",
    "fields": "missing or unexpected fields",
    "type": "a field has the wrong type",
    "size": "joints or confidence have the wrong number of bytes",
    "non_finite": "NaN or infinite number",
    "range": "a value outside its allowed range",
    "stream_id": "malformed stream id",
    "layout": "unsupported skeleton layout",
    "topic_mismatch": "the topic does not match the message",
    "metadata_too_large": "a stream start whose metadata is larger than the receiver's limit",
}


class WireError(ValueError):
    """A message that cannot be accepted.

    ``reason`` is a short code from :data:`REASONS` (for counting drops); the
    message text says what exactly is wrong.
    """

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown wire error reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ----------------------------------------------------------------------------- field checks


def check_stream(stream: object) -> str:
    if type(stream) is not str:
        raise WireError("type", f"stream must be a string, got {type(stream).__name__}")
    if not STREAM_ID_RE.fullmatch(stream):
        raise WireError("stream_id", f"stream id {stream[:80]!r} is not 1-64 characters of [A-Za-z0-9_.-]")
    return stream


def check_int(name: str, value: object, lo: int = 0, hi: int = _INT64_MAX) -> int:
    if type(value) is not int:
        raise WireError("type", f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise WireError("range", f"{name} = {value} outside [{lo}, {hi}]")
    return value


def check_float(
    name: str, value: object, lo: float = 0.0, hi: float = math.inf, open_lo: bool = False
) -> float:
    if type(value) not in (float, int):
        raise WireError("type", f"{name} must be a number, got {type(value).__name__}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise WireError("non_finite", f"{name} is {v}")
    if v < lo or v > hi or (open_lo and v == lo):
        raise WireError("range", f"{name} = {v} outside {'(' if open_lo else '['}{lo}, {hi}]")
    return v


def check_bool(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise WireError("type", f"{name} must be a boolean, got {type(value).__name__}")
    return value


def check_text(name: str, value: object, *, empty: bool = True) -> str:
    if type(value) is not str:
        raise WireError("type", f"{name} must be a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT or (not empty and not value):
        raise WireError(
            "range", f"{name} must be {'0' if empty else '1'}-{_MAX_TEXT} characters, got {len(value)}"
        )
    return value


def check_layout(value: object) -> str:
    if type(value) is not str:
        raise WireError("type", f"layout must be a string, got {type(value).__name__}")
    if value not in WIRE_LAYOUTS:
        raise WireError("layout", f"layout {value[:40]!r} is not one of {WIRE_LAYOUTS}")
    return value


def check_model(anonymized: bool, model_id: object) -> str | None:
    if anonymized:
        if model_id is None:
            raise WireError("fields", "anonymized messages must name the model (model_id)")
        return check_text("model_id", model_id, empty=False)
    if model_id is not None:
        raise WireError("fields", "model_id is only allowed on anonymized messages")
    return None


def check_metadata(value: object, depth: int = 0, path: str = "metadata") -> None:
    """JSON-like values only: None, bool, int64, finite float, str, list, str-keyed map."""
    if depth > _MAX_METADATA_DEPTH:
        raise WireError("range", f"{path} nested deeper than {_MAX_METADATA_DEPTH} levels")
    t = type(value)
    if value is None or t is bool or t is str:
        return
    if isinstance(value, int) and t is int:
        if not -(2**63) <= value <= 2**64 - 1:
            raise WireError("range", f"{path} integer out of 64-bit range")
        return
    if isinstance(value, float) and t is float:
        if not math.isfinite(value):
            raise WireError("non_finite", f"{path} is {value}")
        return
    if isinstance(value, (list, tuple)) and t in (list, tuple):
        for i, item in enumerate(value):
            check_metadata(item, depth + 1, f"{path}[{i}]")
        return
    if isinstance(value, dict) and t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise WireError("type", f"{path} keys must be strings, got {type(k).__name__}")
            check_metadata(v, depth + 1, f"{path}.{k}")
        return
    raise WireError("type", f"{path} holds a {t.__name__}; only JSON-like values are allowed")


def metadata_bytes(metadata: object) -> int:
    """Size of ``metadata`` msgpack-encoded, bytes (what :func:`check_metadata_size` limits)."""
    return len(msgpack.packb(metadata, use_bin_type=True))


class MetadataTooLarge(WireError):
    """``metadata_too_large``: a start refused for its metadata's size. ``stream``, ``session``, ``seq``:
    what the refused start said (``None`` where not a string / an integer), so a receiver can account
    for its sequence number."""

    def __init__(
        self, detail: str, stream: object = None, session: object = None, seq: object = None
    ) -> None:
        super().__init__("metadata_too_large", detail)
        self.stream = stream if type(stream) is str else None
        self.session = session if type(session) is str else None
        self.seq = seq if type(seq) is int else None


def check_metadata_size(
    metadata: object,
    limit: int = MAX_METADATA_BYTES,
    stream: object = None,
    session: object = None,
    seq: object = None,
) -> None:
    """Raise :class:`MetadataTooLarge` when ``metadata`` encodes to more than ``limit`` bytes."""
    n = metadata_bytes(metadata)
    if n > limit:
        raise MetadataTooLarge(f"start of stream {str(stream)[:64]!r}: metadata is {n} bytes > {limit}",
                               stream, session, seq)  # fmt: skip


def as_f32(
    name: str, value: npt.ArrayLike, shape: tuple[int, ...], lo: float, hi: float
) -> npt.NDArray[np.float32]:
    """``value`` as C-contiguous float32 of ``shape`` with every element finite and in [lo, hi]."""
    a = value if type(value) is np.ndarray else np.asarray(value)
    if a.dtype.kind not in "fiu":
        raise WireError("type", f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.shape != shape:
        raise WireError("size", f"{name} must have shape {shape}, got {a.shape}")
    if a.dtype != np.float32 or not a.flags.c_contiguous:
        a = np.ascontiguousarray(a, dtype=np.float32)
    # Fast acceptance (this runs for every message): NaN and inf propagate through a dot
    # product and fail every comparison; anything not accepted gets the exact checks below.
    flat = a.reshape(-1)
    if lo == -hi:
        if float(np.dot(flat, flat)) <= hi * hi:  # every |x| <= hi
            return a
    else:
        v = flat.tolist()  # min and max may step over a NaN; the sum does not (and is finite in range)
        if v and lo <= min(v) and max(v) <= hi and math.isfinite(sum(v)):
            return a
    if not np.isfinite(a).all():
        raise WireError("non_finite", f"{name} contains NaN or infinite values")
    mn, mx = float(a.min()), float(a.max())
    if mn < lo or mx > hi:
        raise WireError("range", f"{name} must lie in [{lo:g}, {hi:g}], got values from {mn:g} to {mx:g}")
    return a


__all__ = [
    "WIRE_LAYOUTS", "STREAM_ID_RE", "MAX_ABS_METRES", "MAX_METADATA_BYTES", "REASONS", "WireError",
    "check_stream", "check_int", "check_float", "check_bool", "check_text", "check_layout", "check_model",
    "check_metadata", "metadata_bytes", "MetadataTooLarge", "check_metadata_size", "as_f32",
]  # fmt: skip
