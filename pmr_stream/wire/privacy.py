"""What an anonymized message or file may carry: the one allow-list, and the ids that replace raw ones.

Everything the anonymizer publishes on ``anon/`` and everything ``pmr anonymize`` writes is
built **field by field** by the functions of this module from the items listed in the
tables below; nothing is a copy of what came in minus a deny-list. A raw stream's
free-form ``metadata`` (a replayed recording's source path, NTU name parts such as the
performer, Kinect body ids, whatever else a file holds) is never read, so it cannot leak.

:data:`WIRE_ALLOW` (one entry per wire field of each kind; a test checks it covers the schema):

========= ============== ==================================================================
kind      field          value on ``anon/`` and why it cannot identify
========= ============== ==================================================================
all       stream         keyed pseudonym of the raw id (:class:`StreamIds`), or an id the
                         operator declared public: a labelled id (``S001C001P001...``) never
                         passes
all       seq            the service's own counter of the ``anon/`` stream (0 at the start
                         of each anonymized session, +1 per message *published*), never the
                         raw one: raw numbers would count what never reached ``anon/``
                         (refused persons, failed or out-of-date frames) and match a raw
                         recording message for message
all       t_mono_ns,     capture (or send) times: *when*, not *who*; needed for latency
          t_wall_ns
all       anonymized     constant ``True``
frame     person         fresh id 0, 1, 2.. in order of first appearance in the stream's
                         session (:class:`PersonIds`), never the tracker's or Kinect's slot/id
frame,gap frame, pts_s   frame number and media time: *when*, needed to order and pair frames
frame     joints         the network's output only (bones set to the dummy's by default)
frame     confidence     constant 1.0 per joint (:data:`CONFIDENCE`): a published frame is
                         complete; the raw per-joint confidences (occlusions, tracking states)
                         are never copied
frame,    layout         ``ntu25`` (validated): the skeleton layout
start
frame,    model_id       the service's model id
start
start     session        fresh random hex per raw session (a restart still shows as one),
                         unrelated to the producer's
start     fps            nominal frame rate of the source
start     source         constant :data:`ANON_SOURCE` (the raw one names files and devices)
start     max_persons    the raw declared capacity: fresh person ids are dense, so they stay
                         below it whenever the producer's own ids do; a count, not an id
start     announce_s     re-announcement period (the service also re-sends the stream's last
                         start, under the next ``seq``, to each new subscription at once:
                         :func:`reannounce`)
start     metadata       built by the service from :data:`ANON_METADATA` only
gap       reason         one of :data:`GAP_REASONS`, anything else becomes ``other``
end       reason         one of :data:`END_REASONS`, anything else becomes ``other``
end       frames         a count of published frames
========= ============== ==================================================================

Files written by ``pmr anonymize`` (every format): the anonymized joints, presence (which
person is in which frame: the output's own structure), timestamps (media times), confidence
1.0 where present (0 where absent), persons renumbered by first appearance (never-present
slots dropped, so neither slot numbers nor the source's capacity survive), and only the
metadata of :data:`FILE_METADATA`. The ``.skeleton`` writer fills the rest from that: body
ids ``72057594037927936 + p`` (fresh), tracking state 2, pixel columns projected from the
anonymized joints, hand/lean/clipping/orientation fields 0.

Stream-id pseudonyms: ``s-`` + the first 16 hex digits of HMAC-SHA256(key, raw id) (matches
:data:`~pmr_stream.wire.checks.STREAM_ID_RE`). The key is a per-deployment secret file
(:func:`default_key_path`; created mode 0600 with 32 random bytes when missing), so the same
raw id gets the same pseudonym on every run of a deployment (recorders and dashboards can
follow a camera), while without the key nobody can tell which raw id (or NTU file name) it
stands for, nor test guesses. ``--public-stream-id ID`` (repeatable) declares ids that pass
unchanged (``cam-lobby``, ``demo``): the operator's statement that the id names nothing.

File and folder names of a dataset anonymized with ``pmr anonymize`` (:mod:`pmr_stream.dataset.names`)
are keyed tokens from the same key (:func:`keyed_token`, each kind of name in its own domain).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import J
from pmr_stream.wire.checks import STREAM_ID_RE
from pmr_stream.wire.schema import (
    MAX_MESSAGE_BYTES,
    FrameGap,
    FrameMessage,
    StreamEnd,
    StreamStart,
    pack_frame,
)

log = logging.getLogger(__name__)

#: ``source`` of every anonymized stream start.
ANON_SOURCE: Final[str] = "pmr-anonymizer"
#: Environment variable naming the stream-id key file.
KEY_ENV: Final[str] = "PMR_STREAM_KEY"
#: Bytes of a key made by :func:`load_stream_key`; shorter files than ``MIN_KEY_BYTES`` are refused.
KEY_BYTES: Final[int] = 32
MIN_KEY_BYTES: Final[int] = 16
_MAX_KEY_BYTES: Final[int] = 4096
#: Pseudonyms: ``s-`` and 16 lowercase hex digits (64 bits of HMAC-SHA256).
PSEUDONYM_PREFIX: Final[str] = "s-"
PSEUDONYM_HEX: Final[int] = 16
#: Gap and end reasons that pass (others become ``"other"``: free text never passes).
GAP_REASONS: Final[tuple[str, ...]] = ("no_person",)
END_REASONS: Final[tuple[str, ...]] = ("eof", "limit", "interrupted", "error")
#: Confidence of every joint of a published frame ``(25,)`` float32 (read-only).
CONFIDENCE: Final[npt.NDArray[np.float32]] = np.ones(J, np.float32)
CONFIDENCE.setflags(write=False)

_SERVICE: Final[str] = "set by the service"
_ANON_SEQ: Final[str] = "the service's anon/ counter"
#: Every wire field of each anonymized message kind -> where its value comes from (see the module doc).
WIRE_ALLOW: Final[dict[str, dict[str, str]]] = {
    "frame": {
        "stream": "pseudonym or declared-public id", "person": "fresh id by first appearance",
        "seq": _ANON_SEQ, "frame": "raw frame number", "pts_s": "raw media time",
        "t_mono_ns": "raw capture time", "t_wall_ns": "raw capture time",
        "joints": "network output", "confidence": "constant 1.0", "layout": "validated layout",
        "anonymized": "True", "model_id": _SERVICE,
    },
    "gap": {
        "stream": "pseudonym or declared-public id", "seq": _ANON_SEQ, "frame": "raw frame number",
        "pts_s": "raw media time", "t_mono_ns": "raw capture time", "t_wall_ns": "raw capture time",
        "reason": "allow-listed word", "anonymized": "True",
    },
    "start": {
        "stream": "pseudonym or declared-public id", "seq": _ANON_SEQ, "session": "fresh random",
        "t_mono_ns": "raw send time", "t_wall_ns": "raw send time", "fps": "raw nominal rate",
        "source": "constant", "max_persons": "raw declared capacity", "layout": "validated layout",
        "announce_s": "raw period", "metadata": "ANON_METADATA only", "anonymized": "True", "model_id": _SERVICE,
    },
    "end": {
        "stream": "pseudonym or declared-public id", "seq": _ANON_SEQ, "t_mono_ns": "raw send time",
        "t_wall_ns": "raw send time", "reason": "allow-listed word", "frames": "raw count", "anonymized": "True",
    },
}  # fmt: skip
#: The metadata map of an anonymized stream start: every key, and why it is safe (values come
#: from the service's own settings, never from the input).
ANON_METADATA: Final[dict[str, str]] = {
    "bones": "the service's --bones mode (dummy/model): a setting",
    "policy": "the service's window policy name: a setting",
    "stream_id": "'pseudonym' or 'public': how the stream id was made, not what it was",
}
#: The metadata of an anonymized file: every key, and why it is safe.
FILE_METADATA: Final[dict[str, str]] = {
    "anonymized": "constant True",
    "model_id": "the anonymizing model's id",
    "mode": "the offline window mode (centre/blend): a setting",
    "bones": "dummy (bones set to given lengths) or model: a setting",
}


# ----------------------------------------------------------------------------- stream ids


def default_key_path() -> Path:
    """The stream-id key file: ``$PMR_STREAM_KEY``, else ``$XDG_CONFIG_HOME/pmr-stream/stream_key``
    (``~/.config/pmr-stream/stream_key``)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pmr-stream" / "stream_key"


def load_stream_key(path: str | os.PathLike[str] | None = None, create: bool = True) -> bytes:
    """The stream-id key (the file's bytes), from ``path`` or :func:`default_key_path`.

    With ``create``, a missing file is made atomically (mode 0600, ``secrets.token_bytes(32)``,
    parent folders 0700); concurrent creators all end up with the one file that won.

    Raises:
        FileNotFoundError: no file and ``create`` is false (the message says what to pass).
        ValueError: one line naming the file: not a regular file, readable by group/others,
            shorter than 16 bytes.
    """
    p = Path(path).expanduser() if path is not None else default_key_path()
    if not p.exists() and not p.is_symlink():
        if not create:
            raise FileNotFoundError(f"no stream key at {p}: pass the anonymizer's key with --stream-key FILE "
                                    f"(or ${KEY_ENV}), or --public-stream-id ID for ids it passes unchanged")  # fmt: skip
        _create_key(p)
    try:
        st = p.stat()
    except OSError as exc:
        raise ValueError(f"stream key {p}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"stream key {p}: not a regular file")
    if os.name == "posix" and st.st_mode & 0o077:
        raise ValueError(
            f"stream key {p}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
        )
    if st.st_size > _MAX_KEY_BYTES:
        raise ValueError(f"stream key {p}: {st.st_size} bytes, more than {_MAX_KEY_BYTES} (not a key file?)")
    key = p.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"stream key {p}: {len(key)} bytes, at least {MIN_KEY_BYTES} needed (delete it to make a new one)"
        )
    return key


def _create_key(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, p)  # atomic, and never replaces a key another process made meanwhile
        except FileExistsError:
            pass
        else:
            log.warning("made a new stream-id key %s (keep it: anon/ stream ids are derived from it)", p)
    finally:
        tmp.unlink(missing_ok=True)


def pseudonym(key: bytes, stream: str) -> str:
    """``s-`` + 16 hex digits of HMAC-SHA256(``key``, ``stream``): a valid, stable, unlinkable stream id."""
    digest = hmac.new(key, stream.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX]


def keyed_token(key: bytes, domain: str, value: str, hex_digits: int) -> str:
    """``hex_digits`` lowercase hex digits of HMAC-SHA256(``key``, ``domain`` NUL ``value``): a stable
    token for ``value`` that nobody without the key can invert or test guesses against. The
    ``domain`` (e.g. ``"dataset-performer"``) keeps tokens of different kinds of names apart, and
    apart from the stream pseudonyms made with the same key."""
    if not 1 <= hex_digits <= 64:
        raise ValueError(f"hex_digits must be in 1..64, got {hex_digits}")
    msg = domain.encode("utf-8") + b"\0" + value.encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:hex_digits]


def is_pseudonym(stream: str) -> bool:
    """Whether ``stream`` has the form of a pseudonym (``s-`` + 16 lowercase hex digits)."""
    tail = stream[len(PSEUDONYM_PREFIX) :]
    return (stream.startswith(PSEUDONYM_PREFIX) and len(tail) == PSEUDONYM_HEX
            and all(c in "0123456789abcdef" for c in tail))  # fmt: skip


class StreamIds:
    """Raw stream id -> the id it has on ``anon/``: its keyed pseudonym, or itself if declared public.

    Args:
        key: the deployment's secret (:func:`load_stream_key`), at least 16 bytes.
        public: ids that pass unchanged; each must be a valid stream id and not look like a
            pseudonym (it could collide with one).
        key_path: the file the key came from (for messages and to hand on; not needed).
    """

    def __init__(self, key: bytes, public: Iterable[str] = (), key_path: Path | None = None) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the stream key must be at least {MIN_KEY_BYTES} bytes")
        self.key = key
        self.public = frozenset(check_public_ids(public))
        self.key_path = key_path

    def anon(self, stream: str) -> str:
        """The id ``stream`` has on ``anon/``."""
        return stream if stream in self.public else pseudonym(self.key, stream)

    def __repr__(self) -> str:  # never the key
        return f"StreamIds(key_path={self.key_path}, public={sorted(self.public)})"


def check_public_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` checked as declared-public stream ids (raises ``ValueError`` naming the bad one)."""
    out = []
    for s in ids:
        if not isinstance(s, str) or not STREAM_ID_RE.fullmatch(s):
            raise ValueError(
                f"--public-stream-id {str(s)[:80]!r} is not a stream id (1-64 of [A-Za-z0-9_.-])"
            )
        if is_pseudonym(s):
            raise ValueError(f"--public-stream-id {s!r} has the form of a pseudonym (s- and 16 hex digits)")
        out.append(s)
    return out


def add_stream_id_arguments(p: argparse.ArgumentParser) -> None:
    """``--stream-key FILE`` and ``--public-stream-id ID`` (anonymizer, ``pmr stream``, ``pmr view``)."""
    g = p.add_argument_group("anon/ stream ids (keyed pseudonyms)")
    g.add_argument(
        "--stream-key",
        default=None,
        metavar="FILE",
        help=f"secret key of the stream-id pseudonyms (default ${KEY_ENV}, else "
        "~/.config/pmr-stream/stream_key; the anonymizer creates it, mode 0600, when missing)",
    )
    g.add_argument("--public-stream-id", action="append", default=None, metavar="ID",
                   help="a raw stream id that names nothing and goes to anon/ unchanged (repeatable)")  # fmt: skip


def stream_ids_from_args(args: argparse.Namespace, create: bool = True) -> StreamIds:
    """The :class:`StreamIds` that ``--stream-key`` / ``--public-stream-id`` ask for (public ids
    checked first, so a bad one fails before any key file is made). Without ``create``, a
    missing key is an error unless public ids are given (then only those can be matched)."""
    public = check_public_ids(args.public_stream_id or ())
    path = Path(args.stream_key).expanduser() if args.stream_key else default_key_path()
    try:
        key = load_stream_key(path, create=create)
    except FileNotFoundError:
        if not public:
            raise
        return StreamIds(secrets.token_bytes(KEY_BYTES), public)
    return StreamIds(key, public, key_path=path)


class PersonIds:
    """Fresh person ids of one stream session: 0, 1, 2.. in order of first appearance.

    A person forgotten (evicted as idle) gets a new id if it comes back; ids are never
    reused within a session, and only live persons are held (memory bounded by them)."""

    def __init__(self) -> None:
        self._ids: dict[int, int] = {}
        self._next = 0

    def get(self, raw: int) -> int:
        """The fresh id of raw person id ``raw`` (a new one on its first appearance)."""
        fresh = self._ids.get(raw)
        if fresh is None:
            fresh = self._ids[raw] = self._next
            self._next += 1
        return fresh

    def forget(self, raw: int) -> None:
        """Drop ``raw``'s mapping (the person was evicted)."""
        self._ids.pop(raw, None)

    def reset(self) -> None:
        """Forget every mapping and start again at 0 (stream end, new session)."""
        self._ids.clear()
        self._next = 0

    def __len__(self) -> int:
        return len(self._ids)


def fresh_session(raw_session: str) -> str:
    """A random session id (16 hex digits), never equal to ``raw_session``."""
    while True:
        s = secrets.token_hex(8)
        if s != raw_session:
            return s


# ----------------------------------------------------------------------------- messages


def service_metadata(bones: str, policy: str, public: bool) -> dict[str, Any]:
    """The metadata of an anonymized stream start (keys of :data:`ANON_METADATA`)."""
    return {"bones": str(bones), "policy": str(policy), "stream_id": "public" if public else "pseudonym"}


def anon_start(
    raw: StreamStart, *, stream: str, seq: int, session: str, model_id: str, metadata: dict[str, Any]
) -> StreamStart:
    """The ``anon/`` start for a raw one (see :data:`WIRE_ALLOW`; ``seq``: the ``anon/`` stream's
    counter; ``metadata`` from :func:`service_metadata`)."""
    return StreamStart(
        stream=stream, seq=seq, session=session, t_mono_ns=raw.t_mono_ns, t_wall_ns=raw.t_wall_ns,
        fps=raw.fps, source=ANON_SOURCE, max_persons=raw.max_persons, layout=raw.layout,
        announce_s=raw.announce_s, metadata=metadata, anonymized=True, model_id=model_id,
    )  # fmt: skip


def reannounce(start: StreamStart, *, seq: int) -> StreamStart:
    """``start`` (an ``anon/`` start, made by :func:`anon_start`) again, under ``seq``: what a new
    subscription is sent at once. Nothing else changes (its times stay the raw send time)."""
    if not start.anonymized:
        raise ValueError(f"reannounce takes an anon/ start, got a raw one of stream {start.stream}")
    return replace(start, seq=seq)


def anon_gap(raw: FrameGap, *, stream: str, seq: int) -> FrameGap:
    """The ``anon/`` gap for a raw one (``seq``: the ``anon/`` stream's counter)."""
    reason = raw.reason if raw.reason in GAP_REASONS else "other"
    return FrameGap(stream=stream, seq=seq, frame=raw.frame, pts_s=raw.pts_s, t_mono_ns=raw.t_mono_ns,
                    t_wall_ns=raw.t_wall_ns, reason=reason, anonymized=True)  # fmt: skip


def anon_end(raw: StreamEnd, *, stream: str, seq: int) -> StreamEnd:
    """The ``anon/`` end for a raw one (``seq``: the ``anon/`` stream's counter)."""
    reason = raw.reason if raw.reason in END_REASONS else "other"
    return StreamEnd(stream=stream, seq=seq, t_mono_ns=raw.t_mono_ns, t_wall_ns=raw.t_wall_ns,
                     reason=reason, frames=raw.frames, anonymized=True)  # fmt: skip


def _anon_frame_fields(
    src: FrameMessage, stream: str, seq: int, person: int, joints: npt.ArrayLike, model_id: str
) -> dict[str, Any]:
    """The fields of an ``anon/`` frame (the allow-list above), for :func:`anon_frame` and :func:`pack_anon_frame`."""
    return dict(
        stream=stream, person=person, seq=seq, frame=src.frame, pts_s=src.pts_s, t_mono_ns=src.t_mono_ns,
        t_wall_ns=src.t_wall_ns, joints=np.asarray(joints), confidence=CONFIDENCE, layout=src.layout,
        anonymized=True, model_id=model_id,
    )  # fmt: skip


def anon_frame(
    src: FrameMessage, *, stream: str, seq: int, person: int, joints: npt.ArrayLike, model_id: str
) -> FrameMessage:
    """The ``anon/`` frame: ``joints`` ``(25, 3)`` metres from the network, timing from ``src``,
    ``person`` fresh, ``seq`` the ``anon/`` stream's counter, confidence :data:`CONFIDENCE`.
    Raises ``WireError`` for out-of-range joints."""
    return FrameMessage(**_anon_frame_fields(src, stream, seq, person, joints, model_id))


def pack_anon_frame(
    src: FrameMessage,
    *,
    stream: str,
    seq: int,
    person: int,
    joints: npt.ArrayLike,
    model_id: str,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> bytes:
    """``pack(anon_frame(...))``: the same bytes and checks without building the message (the
    service's hot path, :func:`~pmr_stream.wire.schema.pack_frame`)."""
    return pack_frame(**_anon_frame_fields(src, stream, seq, person, joints, model_id), max_bytes=max_bytes)


# ----------------------------------------------------------------------------- files


def file_metadata(model_id: str, mode: str, bones: str) -> dict[str, Any]:
    """The metadata of an anonymized file (keys of :data:`FILE_METADATA`)."""
    return {"anonymized": True, "model_id": str(model_id), "mode": str(mode), "bones": str(bones)}


def fresh_person_order(present: npt.ArrayLike) -> list[int]:
    """Person slots of a recording ``present (T, P)`` in order of first appearance (the new
    ids 0, 1, ..); never-present slots are dropped, except that one slot is kept if all are."""
    pres = np.asarray(present, dtype=bool)
    if pres.ndim != 2:
        raise ValueError(f"present must have shape (T, P), got {pres.shape}")
    seen = [p for p in range(pres.shape[1]) if pres[:, p].any()]
    seen.sort(key=lambda p: (int(np.argmax(pres[:, p])), p))
    return seen or list(range(min(1, pres.shape[1])))


__all__ = [
    "ANON_SOURCE", "KEY_ENV", "KEY_BYTES", "MIN_KEY_BYTES", "PSEUDONYM_PREFIX", "PSEUDONYM_HEX", "GAP_REASONS",
    "END_REASONS", "CONFIDENCE", "WIRE_ALLOW", "ANON_METADATA", "FILE_METADATA",
    "default_key_path", "load_stream_key", "pseudonym", "keyed_token", "is_pseudonym", "StreamIds", "check_public_ids",
    "add_stream_id_arguments", "stream_ids_from_args", "PersonIds", "fresh_session", "service_metadata",
    "anon_start", "reannounce", "anon_gap", "anon_end", "anon_frame", "pack_anon_frame", "file_metadata", "fresh_person_order",
]  # fmt: skip
