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
:class:`~pmr_stream.wire.checks.WireError` whose ``reason`` is one of
:data:`~pmr_stream.wire.checks.REASONS`. Nothing is unpickled or evaluated; msgpack
extension types are refused. The field rules (limits, checks, the error and its
reasons) are in :mod:`pmr_stream.wire.checks`; this module holds the messages, the
topics and the encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import C, J
from pmr_stream.wire.checks import (
    _INT64_MAX,
    MAX_ABS_METRES,
    WireError,
    as_f32,
    check_bool,
    check_float,
    check_int,
    check_layout,
    check_metadata,
    check_metadata_size,
    check_model,
    check_stream,
    check_text,
)

#: Version of the message schema written by :func:`encode`; :func:`decode` accepts only this one.
SCHEMA_VERSION: Final[int] = 1
#: Largest payload (bytes) :func:`decode` accepts, and the default ``ZMQ_MAXMSGSIZE``. A frame
#: message is about 560 bytes; the margin is for stream-start metadata.
MAX_MESSAGE_BYTES: Final[int] = 1 << 20
#: Topic prefixes: captured skeletons and anonymized ones.
RAW: Final[str] = "raw"
ANON: Final[str] = "anon"
#: Bytes of one frame's joints (25 x 3 float32) and confidence (25 float32).
JOINTS_BYTES: Final[int] = J * C * 4
CONFIDENCE_BYTES: Final[int] = J * 4


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True, eq=False)
class FrameMessage:
    """One person's skeleton in one captured frame.

    Attributes:
        stream: stream id (:data:`~pmr_stream.wire.checks.STREAM_ID_RE`); the topic is ``raw/<stream>``
            or ``anon/<stream>``.
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
        pts_s, joints, conf = _check_frame(self.stream, self.person, self.seq, self.frame, self.pts_s,
                                           self.t_mono_ns, self.t_wall_ns, self.joints, self.confidence,
                                           self.layout, self.anonymized, self.model_id)  # fmt: skip
        object.__setattr__(self, "pts_s", pts_s)
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


def _check_frame(
    stream: object,
    person: object,
    seq: object,
    frame: object,
    pts_s: object,
    t_mono_ns: object,
    t_wall_ns: object,
    joints: npt.ArrayLike,
    confidence: npt.ArrayLike,
    layout: object,
    anonymized: object,
    model_id: object,
) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The checks of a frame's fields (:class:`FrameMessage`, :func:`pack_frame`): ``(pts_s, joints,
    confidence)`` as stored; raises :class:`WireError`."""
    check_stream(stream)
    if not (  # the integers at once (the common case); a failure gets the checks one by one, their errors
        type(person) is int and type(seq) is int and type(frame) is int and type(t_mono_ns) is int
        and type(t_wall_ns) is int and 0 <= person <= 1 << 16 and 0 <= seq <= _INT64_MAX
        and 0 <= frame <= _INT64_MAX and 0 <= t_mono_ns <= _INT64_MAX and 0 <= t_wall_ns <= _INT64_MAX
    ):  # fmt: skip
        check_int("person", person, 0, 1 << 16)
        check_int("seq", seq)
        check_int("frame", frame)
        check_float("pts_s", pts_s)
        check_int("t_mono_ns", t_mono_ns)
        check_int("t_wall_ns", t_wall_ns)
    pts = check_float("pts_s", pts_s)
    check_layout(layout)
    check_bool("anonymized", anonymized)
    check_model(anonymized, model_id)  # type: ignore[arg-type]
    j = as_f32("joints", joints, (J, C), -MAX_ABS_METRES, MAX_ABS_METRES)
    c = as_f32("confidence", confidence, (J,), 0.0, 1.0)
    return pts, j, c


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
        check_stream(self.stream)
        check_int("seq", self.seq)
        check_int("frame", self.frame)
        object.__setattr__(self, "pts_s", check_float("pts_s", self.pts_s))
        check_int("t_mono_ns", self.t_mono_ns)
        check_int("t_wall_ns", self.t_wall_ns)
        check_text("reason", self.reason, empty=False)
        check_bool("anonymized", self.anonymized)


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
        check_stream(self.stream)
        check_int("seq", self.seq)
        check_text("session", self.session, empty=False)
        check_int("t_mono_ns", self.t_mono_ns)
        check_int("t_wall_ns", self.t_wall_ns)
        object.__setattr__(self, "fps", check_float("fps", self.fps, 0.0, 10000.0, open_lo=True))
        check_text("source", self.source)
        check_int("max_persons", self.max_persons, 1, 1 << 16)
        check_layout(self.layout)
        object.__setattr__(self, "announce_s", check_float("announce_s", self.announce_s, 0.0, 3600.0))
        if type(self.metadata) is not dict:
            raise WireError("type", f"metadata must be a map, got {type(self.metadata).__name__}")
        check_metadata(self.metadata)
        check_bool("anonymized", self.anonymized)
        check_model(self.anonymized, self.model_id)


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
        check_stream(self.stream)
        check_int("seq", self.seq)
        check_int("t_mono_ns", self.t_mono_ns)
        check_int("t_wall_ns", self.t_wall_ns)
        check_text("reason", self.reason, empty=False)
        check_int("frames", self.frames)
        check_bool("anonymized", self.anonymized)


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
#: Every key of a frame's payload map.
_FRAME_KEYS: Final[frozenset[str]] = FIELDS["frame"] | {"v", "kind"}
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
    return f"{ANON if anonymized else RAW}/{check_stream(stream)}"


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


def pack_frame(
    stream: str,
    person: int,
    seq: int,
    frame: int,
    pts_s: float,
    t_mono_ns: int,
    t_wall_ns: int,
    joints: npt.ArrayLike,
    confidence: npt.ArrayLike,
    layout: str = "ntu25",
    anonymized: bool = False,
    model_id: str | None = None,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> bytes:
    """``pack(FrameMessage(...))`` without the message object: the same checks (:class:`WireError`),
    the same bytes (``topic \\0 payload``). For senders of many frames (the anonymizer's output)."""
    pts, j, c = _check_frame(stream, person, seq, frame, pts_s, t_mono_ns, t_wall_ns, joints, confidence, layout,
                             anonymized, model_id)  # fmt: skip
    payload: bytes = msgpack.packb(  # the key order of to_dict
        {"v": SCHEMA_VERSION, "kind": "frame", "stream": stream, "person": person, "seq": seq, "frame": frame,
         "pts_s": pts, "t_mono_ns": t_mono_ns, "t_wall_ns": t_wall_ns, "layout": layout, "anonymized": anonymized,
         "model_id": model_id, "joints": j.astype("<f4", copy=False).tobytes(),
         "confidence": c.astype("<f4", copy=False).tobytes()},
        use_bin_type=True,
    )  # fmt: skip
    if len(payload) > max_bytes:
        raise WireError(
            "too_large", f"frame message of stream {stream} is {len(payload)} bytes > {max_bytes}"
        )
    return f"{ANON if anonymized else RAW}/{stream}\0".encode() + payload


def _refuse_ext(code: int, data: bytes) -> object:
    raise WireError("type", f"msgpack extension type {code} is not allowed")


def _frame_from_dict(d: dict[str, Any]) -> FrameMessage:
    """A frame whose map has exactly the right keys and byte sizes: the checks of
    :class:`FrameMessage` on its fields, without the dataclass machinery (the decoder's hot path)."""
    joints = np.frombuffer(d["joints"], dtype="<f4").reshape(J, C).astype(np.float32)
    conf = np.frombuffer(d["confidence"], dtype="<f4").astype(np.float32)
    stream, person, seq, frame, t_mono, t_wall, layout, anonymized, model_id = (
        d["stream"], d["person"], d["seq"], d["frame"], d["t_mono_ns"], d["t_wall_ns"], d["layout"],
        d["anonymized"], d["model_id"],
    )  # fmt: skip
    pts, joints, conf = _check_frame(stream, person, seq, frame, d["pts_s"], t_mono, t_wall, joints, conf, layout,
                                     anonymized, model_id)  # fmt: skip
    msg = object.__new__(FrameMessage)
    msg.__dict__.update(
        stream=stream, person=person, seq=seq, frame=frame, pts_s=pts, t_mono_ns=t_mono, t_wall_ns=t_wall,
        joints=joints, confidence=conf, layout=layout, anonymized=anonymized, model_id=model_id,
    )  # fmt: skip
    return msg


def from_dict(d: object) -> Message:
    """Validate a decoded payload map and build its message (raises :class:`WireError`)."""
    if (
        type(d) is dict
        and d.keys() == _FRAME_KEYS
        and d["kind"] == "frame"
        and type(d["v"]) is int
        and d["v"] == SCHEMA_VERSION
        and type(d["joints"]) is bytes
        and len(d["joints"]) == JOINTS_BYTES
        and type(d["confidence"]) is bytes
        and len(d["confidence"]) == CONFIDENCE_BYTES
    ):  # a well-formed frame (the common case); anything else gets the checks one by one below
        return _frame_from_dict(d)
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
    expected = f"{ANON if msg.anonymized else RAW}/{msg.stream}"  # topic_of: the stream id is checked already
    if topic != expected:
        raise WireError("topic_mismatch", f"{msg.kind} message of {expected!r} arrived on topic {topic!r}")
    return topic, msg


__all__ = [
    "SCHEMA_VERSION", "MAX_MESSAGE_BYTES", "RAW", "ANON", "FIELDS", "JOINTS_BYTES", "CONFIDENCE_BYTES",
    "FrameMessage", "FrameGap", "StreamStart", "StreamEnd", "Message",
    "topic_for", "topic_of", "subscription", "to_dict", "from_dict", "encode", "decode", "pack", "pack_frame", "split",
    "unpack",
]  # fmt: skip
