"""The wire schema: one versioned msgpack message per skeleton frame, plus stream control.

Every ZeroMQ message pmr-stream sends is **one frame**::

    <topic bytes> 0x00 <msgpack payload>

The topic is ``raw/<stream>`` for captured skeletons and ``anon/<stream>`` for
anonymized ones; the NUL byte ends it, so a subscriber can ask for exactly one
stream (``raw/cam1\\0`` does not match ``raw/cam10``) and single-frame messages
work with ``ZMQ_CONFLATE``. The payload is a msgpack map with string keys; its
``kind`` says which message it is:

======== ================ ============================================================
kind     dataclass        meaning
======== ================ ============================================================
``start`` :class:`StreamStart` the stream exists: fps, source, layout, persons, metadata;
                          sent first and re-announced periodically for late subscribers
``frame`` :class:`FrameMessage` one person's skeleton in one captured frame
``gap``   :class:`FrameGap`     a captured frame without anybody in it (nothing invented)
``end``   :class:`StreamEnd`    the stream is over (end of file, Ctrl-C, error)
======== ================ ============================================================

Every message carries ``v`` (:data:`SCHEMA_VERSION`), ``stream``, ``seq`` (a
per-stream counter over *all* messages of the stream, starting at 0 with the
first ``start``), the capture time twice (``t_mono_ns``: the producer's
``time.monotonic_ns()``, ``t_wall_ns``: ``time.time_ns()``) and ``anonymized``.
Joints travel as raw little-endian float32 bytes ``(25, 3)`` (metres, Kinect
camera convention), confidence as float32 bytes ``(25,)``.

:func:`decode` validates everything (size, msgpack syntax, version, kind, the
exact set of fields, types, sizes, finite numbers, ranges) and raises
:class:`WireError` whose :attr:`WireError.reason` is one of :data:`REASONS`.
Nothing is unpickled or evaluated; msgpack extension types are refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import C, J

#: Version of the message schema written by :func:`encode`; :func:`decode` accepts only this one.
SCHEMA_VERSION: Final[int] = 1
#: Largest payload (bytes) :func:`decode` accepts, and the default ``ZMQ_MAXMSGSIZE``. A frame
#: message is about 560 bytes; the margin is for stream-start metadata.
MAX_MESSAGE_BYTES: Final[int] = 1 << 20
#: Layouts a message may carry (the PMR network works on NTU-25).
WIRE_LAYOUTS: Final[tuple[str, ...]] = ("ntu25",)
#: Topic prefixes: captured skeletons and anonymized ones.
RAW: Final[str] = "raw"
ANON: Final[str] = "anon"
#: Stream ids: 1-64 characters, letters, digits, ``_ . -``, starting with a letter or digit.
STREAM_ID_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: Bytes of one frame's joints (25 x 3 float32) and confidence (25 float32).
JOINTS_BYTES: Final[int] = J * C * 4
CONFIDENCE_BYTES: Final[int] = J * 4
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


def _check_stream(stream: object) -> str:
    if type(stream) is not str:
        raise WireError("type", f"stream must be a string, got {type(stream).__name__}")
    if not STREAM_ID_RE.fullmatch(stream):
        raise WireError("stream_id", f"stream id {stream[:80]!r} is not 1-64 characters of [A-Za-z0-9_.-]")
    return stream


def _check_int(name: str, value: object, lo: int = 0, hi: int = _INT64_MAX) -> int:
    if type(value) is not int:
        raise WireError("type", f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise WireError("range", f"{name} = {value} outside [{lo}, {hi}]")
    return value


def _check_float(
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


def _check_bool(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise WireError("type", f"{name} must be a boolean, got {type(value).__name__}")
    return value


def _check_text(name: str, value: object, *, empty: bool = True) -> str:
    if type(value) is not str:
        raise WireError("type", f"{name} must be a string, got {type(value).__name__}")
    if len(value) > _MAX_TEXT or (not empty and not value):
        raise WireError(
            "range", f"{name} must be {'0' if empty else '1'}-{_MAX_TEXT} characters, got {len(value)}"
        )
    return value


def _check_layout(value: object) -> str:
    if type(value) is not str:
        raise WireError("type", f"layout must be a string, got {type(value).__name__}")
    if value not in WIRE_LAYOUTS:
        raise WireError("layout", f"layout {value[:40]!r} is not one of {WIRE_LAYOUTS}")
    return value


def _check_model(anonymized: bool, model_id: object) -> str | None:
    if anonymized:
        if model_id is None:
            raise WireError("fields", "anonymized messages must name the model (model_id)")
        return _check_text("model_id", model_id, empty=False)
    if model_id is not None:
        raise WireError("fields", "model_id is only allowed on anonymized messages")
    return None


def _check_metadata(value: object, depth: int = 0, path: str = "metadata") -> None:
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
            _check_metadata(item, depth + 1, f"{path}[{i}]")
        return
    if isinstance(value, dict) and t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise WireError("type", f"{path} keys must be strings, got {type(k).__name__}")
            _check_metadata(v, depth + 1, f"{path}.{k}")
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


def _as_f32(
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
    elif all(lo <= v <= hi for v in flat.tolist()):
        return a
    if not np.isfinite(a).all():
        raise WireError("non_finite", f"{name} contains NaN or infinite values")
    mn, mx = float(a.min()), float(a.max())
    if mn < lo or mx > hi:
        raise WireError("range", f"{name} must lie in [{lo:g}, {hi:g}], got values from {mn:g} to {mx:g}")
    return a


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True, eq=False)
class FrameMessage:
    """One person's skeleton in one captured frame.

    Attributes:
        stream: stream id (:data:`STREAM_ID_RE`); the topic is ``raw/<stream>`` or ``anon/<stream>``.
        person: person id within the stream (Kinect body slot, MediaPipe person 0), >= 0.
        seq: the stream's message counter (all kinds), >= 0, +1 per message.
        frame: index of the captured frame in the source; persons of one frame share it.
        pts_s: media time of the frame, seconds from the stream's start (replays keep the
            recording's timestamps here).
        t_mono_ns: capture time, the producer's ``time.monotonic_ns()``.
        t_wall_ns: capture time, ``time.time_ns()`` (for latency across processes and hosts).
        joints: ``(25, 3)`` float32 metres, Kinect camera convention.
        confidence: ``(25,)`` float32 in [0, 1].
        layout: ``"ntu25"``.
        anonymized: ``True`` for the anonymizer's output, then ``model_id`` names the model.
    """

    stream: str
    person: int
    seq: int
    frame: int
    pts_s: float
    t_mono_ns: int
    t_wall_ns: int
    joints: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    layout: str = "ntu25"
    anonymized: bool = False
    model_id: str | None = None
    kind: str = field(default="frame", init=False)

    def __post_init__(self) -> None:
        _check_stream(self.stream)
        _check_int("person", self.person, 0, 1 << 16)
        _check_int("seq", self.seq)
        _check_int("frame", self.frame)
        object.__setattr__(self, "pts_s", _check_float("pts_s", self.pts_s))
        _check_int("t_mono_ns", self.t_mono_ns)
        _check_int("t_wall_ns", self.t_wall_ns)
        _check_layout(self.layout)
        _check_bool("anonymized", self.anonymized)
        _check_model(self.anonymized, self.model_id)
        joints = _as_f32("joints", self.joints, (J, C), -MAX_ABS_METRES, MAX_ABS_METRES)
        conf = _as_f32("confidence", self.confidence, (J,), 0.0, 1.0)
        object.__setattr__(self, "joints", joints)
        object.__setattr__(self, "confidence", conf)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameMessage):
            return NotImplemented
        return (
            _plain_fields(self) == _plain_fields(other)
            and np.array_equal(self.joints, other.joints)
            and np.array_equal(self.confidence, other.confidence)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class FrameGap:
    """A captured frame in which nobody was found (reported, never invented).

    ``frame``, ``pts_s``, ``t_mono_ns``, ``t_wall_ns``: as in :class:`FrameMessage`.
    ``reason``: ``"no_person"`` (the pose estimator or the Kinect saw nobody).
    """

    stream: str
    seq: int
    frame: int
    pts_s: float
    t_mono_ns: int
    t_wall_ns: int
    reason: str = "no_person"
    anonymized: bool = False
    kind: str = field(default="gap", init=False)

    def __post_init__(self) -> None:
        _check_stream(self.stream)
        _check_int("seq", self.seq)
        _check_int("frame", self.frame)
        object.__setattr__(self, "pts_s", _check_float("pts_s", self.pts_s))
        _check_int("t_mono_ns", self.t_mono_ns)
        _check_int("t_wall_ns", self.t_wall_ns)
        _check_text("reason", self.reason, empty=False)
        _check_bool("anonymized", self.anonymized)


@dataclass(frozen=True)
class StreamStart:
    """A stream exists. Sent first (``seq`` 0) and re-announced every ``announce_s`` seconds.

    Attributes:
        stream: stream id.
        seq: as in :class:`FrameMessage`.
        session: random hex id of this run of the producer; a new session resets the
            subscribers' sequence tracking (a restarted producer starts at ``seq`` 0 again).
        t_mono_ns, t_wall_ns: when the message was sent.
        fps: nominal frame rate, frames per second (> 0).
        source: where the frames come from, e.g. ``"kinect:S001C001P001R001A001.skeleton"``.
        max_persons: persons the source can report (person ids are below it), >= 1.
        layout: ``"ntu25"``.
        announce_s: seconds between re-announcements (0: never re-announced).
        metadata: JSON-like map (the recording's metadata, camera settings, ...).
        anonymized, model_id: as in :class:`FrameMessage`.
    """

    stream: str
    seq: int
    session: str
    t_mono_ns: int
    t_wall_ns: int
    fps: float
    source: str
    max_persons: int = 1
    layout: str = "ntu25"
    announce_s: float = 1.0
    metadata: dict[str, Any] = field(default_factory=dict)
    anonymized: bool = False
    model_id: str | None = None
    kind: str = field(default="start", init=False)

    def __post_init__(self) -> None:
        _check_stream(self.stream)
        _check_int("seq", self.seq)
        _check_text("session", self.session, empty=False)
        _check_int("t_mono_ns", self.t_mono_ns)
        _check_int("t_wall_ns", self.t_wall_ns)
        object.__setattr__(self, "fps", _check_float("fps", self.fps, 0.0, 10000.0, open_lo=True))
        _check_text("source", self.source)
        _check_int("max_persons", self.max_persons, 1, 1 << 16)
        _check_layout(self.layout)
        object.__setattr__(self, "announce_s", _check_float("announce_s", self.announce_s, 0.0, 3600.0))
        if type(self.metadata) is not dict:
            raise WireError("type", f"metadata must be a map, got {type(self.metadata).__name__}")
        _check_metadata(self.metadata)
        _check_bool("anonymized", self.anonymized)
        _check_model(self.anonymized, self.model_id)


@dataclass(frozen=True)
class StreamEnd:
    """The stream is over.

    ``reason``: ``"eof"`` (the source ended), ``"interrupted"`` (Ctrl-C), ``"error"``,
    or another short word. ``frames``: captured frames the stream published.
    """

    stream: str
    seq: int
    t_mono_ns: int
    t_wall_ns: int
    reason: str = "eof"
    frames: int = 0
    anonymized: bool = False
    kind: str = field(default="end", init=False)

    def __post_init__(self) -> None:
        _check_stream(self.stream)
        _check_int("seq", self.seq)
        _check_int("t_mono_ns", self.t_mono_ns)
        _check_int("t_wall_ns", self.t_wall_ns)
        _check_text("reason", self.reason, empty=False)
        _check_int("frames", self.frames)
        _check_bool("anonymized", self.anonymized)


Message = FrameMessage | FrameGap | StreamStart | StreamEnd

_PLAIN: Final[dict[str, tuple[str, ...]]] = {
    "frame": ("stream", "person", "seq", "frame", "pts_s", "t_mono_ns", "t_wall_ns", "layout", "anonymized", "model_id"),
    "gap": ("stream", "seq", "frame", "pts_s", "t_mono_ns", "t_wall_ns", "reason", "anonymized"),
    "start": (
        "stream", "seq", "session", "t_mono_ns", "t_wall_ns", "fps", "source", "max_persons", "layout",
        "announce_s", "metadata", "anonymized", "model_id",
    ),
    "end": ("stream", "seq", "t_mono_ns", "t_wall_ns", "reason", "frames", "anonymized"),
}  # fmt: skip
#: Exact payload keys of each kind (besides ``v`` and ``kind``).
FIELDS: Final[dict[str, frozenset[str]]] = {
    "frame": frozenset(_PLAIN["frame"]) | {"joints", "confidence"},
    "gap": frozenset(_PLAIN["gap"]),
    "start": frozenset(_PLAIN["start"]),
    "end": frozenset(_PLAIN["end"]),
}
_CLASSES: Final[dict[str, type]] = {
    "frame": FrameMessage,
    "gap": FrameGap,
    "start": StreamStart,
    "end": StreamEnd,
}


def _plain_fields(msg: Message) -> tuple[Any, ...]:
    return tuple(getattr(msg, k) for k in _PLAIN[msg.kind])


# ----------------------------------------------------------------------------- topics


def topic_for(stream: str, anonymized: bool = False) -> str:
    """``raw/<stream>`` or ``anon/<stream>``."""
    return f"{ANON if anonymized else RAW}/{_check_stream(stream)}"


def topic_of(msg: Message) -> str:
    """The topic ``msg`` is published on."""
    return topic_for(msg.stream, msg.anonymized)


def subscription(prefix: str) -> bytes:
    """ZeroMQ subscription bytes for a topic prefix.

    ``"raw/"`` (every raw stream), ``"anon/"``, ``""`` (everything) are prefixes;
    a complete topic such as ``"raw/cam1"`` becomes ``b"raw/cam1\\0"`` so that it does
    not also match ``raw/cam10``.
    """
    if "\0" in prefix:
        raise ValueError(f"topic prefix {prefix!r} must not contain NUL")
    head, sep, stream = prefix.partition("/")
    if sep and stream and head in (RAW, ANON):
        return topic_for(stream, head == ANON).encode() + b"\0"
    return prefix.encode()


# ----------------------------------------------------------------------------- encode / decode


def to_dict(msg: Message) -> dict[str, Any]:
    """The payload map of ``msg`` (what :func:`encode` packs)."""
    d: dict[str, Any] = {"v": SCHEMA_VERSION, "kind": msg.kind}
    for k in _PLAIN[msg.kind]:
        d[k] = getattr(msg, k)
    if isinstance(msg, FrameMessage):
        d["joints"] = msg.joints.astype("<f4", copy=False).tobytes()
        d["confidence"] = msg.confidence.astype("<f4", copy=False).tobytes()
    return d


def encode(msg: Message, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """msgpack payload of ``msg`` (no topic). Raises :class:`WireError` (``too_large``) past ``max_bytes``."""
    payload: bytes = msgpack.packb(to_dict(msg), use_bin_type=True)
    if len(payload) > max_bytes:
        raise WireError(
            "too_large", f"{msg.kind} message of stream {msg.stream} is {len(payload)} bytes > {max_bytes}"
        )
    return payload


def _refuse_ext(code: int, data: bytes) -> object:
    raise WireError("type", f"msgpack extension type {code} is not allowed")


def from_dict(d: object) -> Message:
    """Validate a decoded payload map and build its message (raises :class:`WireError`)."""
    if type(d) is not dict:
        raise WireError("not_a_map", f"payload is a msgpack {type(d).__name__}, not a map")
    if "v" not in d:
        raise WireError("fields", "no schema version field 'v'")
    v = d["v"]
    if type(v) is not int or v != SCHEMA_VERSION:
        raise WireError(
            "version", f"schema version {v!r} is not supported (this reader knows {SCHEMA_VERSION})"
        )
    kind = d.get("kind")
    if type(kind) is not str or kind not in FIELDS:
        raise WireError("kind", f"message kind {kind!r} is not one of {sorted(FIELDS)}")
    keys = set(d) - {"v", "kind"}
    if keys != FIELDS[kind]:
        missing = sorted(FIELDS[kind] - keys)
        extra = sorted(str(k)[:40] for k in keys - FIELDS[kind])
        raise WireError("fields", f"{kind} message: missing {missing}, unexpected {extra}")
    args = {k: d[k] for k in FIELDS[kind]}
    if kind == "frame":
        for name, nbytes, shape in (("joints", JOINTS_BYTES, (J, C)), ("confidence", CONFIDENCE_BYTES, (J,))):
            raw = args[name]
            if type(raw) is not bytes:
                raise WireError(
                    "type", f"{name} must be bytes (little-endian float32), got {type(raw).__name__}"
                )
            if len(raw) != nbytes:
                raise WireError("size", f"{name} must be {nbytes} bytes ({shape} float32), got {len(raw)}")
            args[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    elif kind == "start" and type(args["metadata"]) is not dict:
        raise WireError("type", f"metadata must be a map, got {type(args['metadata']).__name__}")
    cls = _CLASSES[kind]
    try:
        msg: Message = cls(**args)
        return msg
    except WireError:
        raise
    except (TypeError, ValueError) as exc:  # pragma: no cover - every field is checked above
        raise WireError("type", f"{kind} message: {exc}") from None


def decode(
    payload: bytes, max_bytes: int = MAX_MESSAGE_BYTES, max_metadata_bytes: int | None = None
) -> Message:
    """Validate and decode a msgpack payload (no topic). Raises :class:`WireError`.

    ``max_metadata_bytes``: refuse a start whose metadata encodes to more (``metadata_too_large``,
    checked before the metadata is walked); ``None``: no limit besides ``max_bytes``.
    """
    if len(payload) > max_bytes:
        raise WireError("too_large", f"payload is {len(payload)} bytes > {max_bytes}")
    try:
        d = msgpack.unpackb(
            payload, raw=False, use_list=True, strict_map_key=True, ext_hook=_refuse_ext,
            max_ext_len=0, max_map_len=64, max_array_len=4096,
        )  # fmt: skip
    except WireError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise WireError("not_msgpack", f"{type(exc).__name__}: {str(exc)[:120] or 'malformed'}") from None
    if (
        max_metadata_bytes is not None
        and len(payload) > max_metadata_bytes  # else the metadata, a part of it, cannot be larger
        and type(d) is dict
        and d.get("kind") == "start"
        and type(d.get("metadata")) is dict
    ):
        check_metadata_size(
            d["metadata"], max_metadata_bytes, d.get("stream"), d.get("session"), d.get("seq")
        )
    return from_dict(d)


def pack(msg: Message, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """The complete ZeroMQ frame for ``msg``: ``topic \\0 payload``."""
    return topic_of(msg).encode() + b"\0" + encode(msg, max_bytes)


def split(data: bytes) -> tuple[str, bytes]:
    """Split a ZeroMQ frame into ``(topic, payload)`` (raises :class:`WireError` ``framing``)."""
    end = data.find(b"\0", 0, 80)
    if end <= 0:
        raise WireError("framing", f"no '<topic>\\0' at the start of a {len(data)}-byte message")
    try:
        topic = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise WireError("framing", "topic is not ASCII") from None
    return topic, data[end + 1 :]


def unpack(
    data: bytes, max_bytes: int = MAX_MESSAGE_BYTES, max_metadata_bytes: int | None = None
) -> tuple[str, Message]:
    """Split, decode and check a ZeroMQ frame: ``(topic, message)``; raises :class:`WireError`
    (``max_metadata_bytes``: as in :func:`decode`)."""
    if len(data) > max_bytes + 80:
        raise WireError("too_large", f"message is {len(data)} bytes > {max_bytes}")
    topic, payload = split(data)
    msg = decode(payload, max_bytes, max_metadata_bytes)
    expected = topic_of(msg)
    if topic != expected:
        raise WireError("topic_mismatch", f"{msg.kind} message of {expected!r} arrived on topic {topic!r}")
    return topic, msg


__all__ = [
    "SCHEMA_VERSION", "MAX_MESSAGE_BYTES", "MAX_METADATA_BYTES", "WIRE_LAYOUTS", "RAW", "ANON", "STREAM_ID_RE",
    "REASONS", "FIELDS",
    "WireError", "FrameMessage", "FrameGap", "StreamStart", "StreamEnd", "Message",
    "topic_for", "topic_of", "subscription", "to_dict", "from_dict", "encode", "decode", "pack", "split", "unpack",
    "metadata_bytes", "check_metadata_size", "MetadataTooLarge",
]  # fmt: skip
