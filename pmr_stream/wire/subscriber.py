"""A validating subscriber: decodes, checks and counts every message it receives.

:class:`Subscriber` wraps a :class:`~pmr_stream.wire.sockets.SubscriberSocket`. For
each frame that arrives it

1. splits and decodes it (:func:`~pmr_stream.wire.schema.unpack`); a
   :class:`~pmr_stream.wire.checks.WireError` is counted under its reason and dropped;
2. looks up the stream by topic. A stream becomes known through its
   :class:`~pmr_stream.wire.schema.StreamStart`; frames of a stream that has not
   announced itself (or has ended) are dropped as ``unknown_stream``. Producers
   re-announce every second and the moment a new subscription reaches them (the
   anonymizer does the same on ``anon/``), so a late subscriber loses at most the frames
   before the next announcement;
3. checks the sequence number: a number not above the last one accepted is dropped as
   ``seq_backwards`` (duplicates included); a jump forward is accepted and the
   missing numbers are counted as ``seq_missing`` (lost on the way). A start with a
   new ``session`` (a restarted producer) resets the tracking.

Everything accepted is handed out as a :class:`Received`; nothing bad stops the loop.

Bounded memory (:class:`SubscriberOptions`): a start whose metadata is over
``max_metadata_bytes`` (msgpack-encoded, default 16 KiB) and the start of a new stream
while ``max_streams`` (1024) are tracked are *refused*, counted in :attr:`Subscriber.refused`
by reason (:data:`LIMIT_REASONS`; the stream's frames then drop as ``unknown_stream``). An
ended stream is forgotten ``ended_grace_s`` after its end (at once when room is needed), a
stream silent for ``idle_s`` too (with ``idle_s`` set). Of a forgotten stream only a tombstone
is kept (session, last sequence number, whether it ended; at most ``max_streams`` of them):
a late or replayed start of the ended session never re-opens it, and a forgotten idle stream
that announces itself again resumes its sequence tracking, so its gap is counted as
``seq_missing`` (the subscriber-wide :attr:`Subscriber.seq_missing` is never forgotten).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pmr_stream.stats import percentile_values, percentiles
from pmr_stream.wire.checks import MAX_METADATA_BYTES, REASONS, MetadataTooLarge, WireError
from pmr_stream.wire.schema import FrameGap, FrameMessage, Message, StreamEnd, StreamStart, split, unpack
from pmr_stream.wire.shard import ShardFilter
from pmr_stream.wire.sockets import SocketOptions, SubscriberSocket

log = logging.getLogger(__name__)

#: Drop reasons of the subscriber itself (besides the schema's :data:`~pmr_stream.wire.checks.REASONS`).
STREAM_REASONS: Final[dict[str, str]] = {
    "unknown_stream": "a message of a stream that has not sent a stream start (or has ended)",
    "seq_backwards": "a sequence number not above the last one accepted (replayed, duplicated or reordered)",
    "connection_cut": "ZeroMQ refused a message over the maximum size (or a protocol error) and cut the "
    "connection; the subscriber reconnected",
    "handshake_failed": "a CURVE handshake failed (one side without CURVE, a wrong server key, a client key the "
    "server does not admit): nothing passes that connection; counted per failed attempt, logged by the socket",
}
#: Unknown stream ids remembered (for the probe) before further ones are only counted.
_MAX_UNKNOWN_IDS: Final[int] = 256
#: Why the subscriber refuses a message by a limit (counted in :attr:`Subscriber.refused`, not in ``drops``).
LIMIT_REASONS: Final[dict[str, str]] = {
    "metadata_too_large": "a stream start whose metadata is over max_metadata_bytes (msgpack-encoded)",
    "too_many_streams": "the stream start of a new stream while max_streams streams are tracked",
}
#: How often (at most) :meth:`Subscriber.handle` looks for streams to forget.
_EXPIRE_EVERY_NS: Final[int] = 250_000_000


@dataclass(frozen=True)
class SubscriberOptions:
    """Options of :class:`Subscriber`.

    Attributes:
        require_start: drop frames of streams that have not announced themselves. Turn it
            off for ``conflate`` viewers, which may never see a start among the newest frames.
        window_s: seconds of history for rates, persons and latency percentiles.
        max_streams: streams tracked at once; a new stream beyond them is refused
            (``too_many_streams``) unless an ended one can be forgotten to make room.
        max_metadata_bytes: largest stream-start metadata accepted, bytes msgpack-encoded
            (``metadata_too_large`` beyond).
        ended_grace_s: seconds an ended stream stays in :attr:`Subscriber.streams` (its counters
            visible) before it is forgotten.
        idle_s: forget a stream that sent nothing accepted for this long (``None``: never).
        shard: ``(index, count)``: keep only the streams of that shard
            (:mod:`pmr_stream.wire.shard`); the others' frames are skipped unread, counted in
            :attr:`Subscriber.shard_skipped`, never as drops. ``None``: every stream.
    """

    require_start: bool = True
    window_s: float = 5.0
    max_streams: int = 1024
    max_metadata_bytes: int = MAX_METADATA_BYTES
    ended_grace_s: float = 10.0
    idle_s: float | None = None
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.shard is not None:
            ShardFilter(*self.shard)  # raises on a bad index
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")
        if self.max_metadata_bytes < 0:
            raise ValueError(f"max_metadata_bytes must be >= 0, got {self.max_metadata_bytes}")
        if self.ended_grace_s < 0 or (self.idle_s is not None and self.idle_s <= 0):
            raise ValueError(f"ended_grace_s must be >= 0 and idle_s > 0 (or None), got {self.ended_grace_s} "
                             f"and {self.idle_s}")  # fmt: skip


@dataclass(frozen=True)
class Received:
    """A message that passed every check.

    ``t_recv_wall_ns`` / ``t_recv_mono_ns``: when it was taken off the socket.
    ``start``: the stream's latest :class:`StreamStart` (``None`` only with
    ``require_start=False`` before the stream announced itself).
    """

    topic: str
    message: Message
    t_recv_wall_ns: int
    t_recv_mono_ns: int
    start: StreamStart | None

    @property
    def latency_ms(self) -> float:
        """Milliseconds from capture (the producer's wall clock) to reception."""
        return (self.t_recv_wall_ns - self.message.t_wall_ns) / 1e6


@dataclass
class StreamState:
    """What a subscriber knows about one stream (one topic)."""

    topic: str
    stream: str
    anonymized: bool
    start: StreamStart | None = None
    end: StreamEnd | None = None
    last_seq: int | None = None
    last_frame: int | None = None
    frames: int = 0  # FrameMessages accepted
    gaps: int = 0  # FrameGaps accepted (captured frames without a person)
    starts: int = 0
    seq_missing: int = 0
    restarts: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    first_recv_mono_ns: int = 0
    last_recv_mono_ns: int = 0
    _arrivals: deque[tuple[int, int, int]] = field(
        default_factory=deque, repr=False
    )  # (t_mono, frame, person)
    _latency: deque[tuple[int, float]] = field(default_factory=deque, repr=False)  # (t_mono, ms)

    @property
    def ended(self) -> bool:
        return self.end is not None

    def _record(self, r: Received, window_ns: int) -> None:
        now = r.t_recv_mono_ns
        if not self.first_recv_mono_ns:
            self.first_recv_mono_ns = now
        self.last_recv_mono_ns = now
        m = r.message
        if isinstance(m, FrameMessage):
            self._arrivals.append((now, m.frame, m.person))
        elif isinstance(m, FrameGap):
            self._arrivals.append((now, m.frame, -1))
        if isinstance(m, (FrameMessage, FrameGap)):
            self._latency.append((now, r.latency_ms))
        while self._arrivals and now - self._arrivals[0][0] > window_ns:
            self._arrivals.popleft()
        while self._latency and now - self._latency[0][0] > window_ns:
            self._latency.popleft()

    def rate(self, now_mono_ns: int | None = None, window_s: float = 5.0) -> float:
        """Captured frames per second over the last ``window_s`` (distinct frame indices)."""
        now = time.monotonic_ns() if now_mono_ns is None else now_mono_ns
        recent = [(t, f) for t, f, _ in self._arrivals if now - t <= window_s * 1e9]
        if len(recent) < 2:
            return 0.0
        frames = {f for _, f in recent}
        span = max(now - recent[0][0], 1) / 1e9
        return len(frames) / max(span, 1e-3)

    def persons(self) -> int:
        """Distinct persons in the recent window (frames, not gaps)."""
        return len({p for _, _, p in self._arrivals if p >= 0})

    def latency_percentiles(self, qs: Sequence[float] = (50, 99)) -> list[float | None]:
        """Capture-to-reception latency percentiles ``qs`` (0-100), milliseconds (``None`` without samples)."""
        return percentile_values((v for _, v in self._latency), qs)

    def summary(self) -> dict[str, Any]:
        """JSON-able counters."""
        return {
            "topic": self.topic, "stream": self.stream, "anonymized": self.anonymized,
            "source": self.start.source if self.start else None, "fps": self.start.fps if self.start else None,
            "frames": self.frames, "gaps": self.gaps, "starts": self.starts, "seq_missing": self.seq_missing,
            "restarts": self.restarts, "ended": self.end.reason if self.end else None,
            "drops": dict(self.drops), "rate_fps": round(self.rate(), 2), "persons": self.persons(),
            **percentiles((v for _, v in self._latency), "latency_ms"),
        }  # fmt: skip


@dataclass(slots=True)
class _Gone:
    """What is kept of a forgotten stream: enough to refuse its ended session's late starts and to
    resume the sequence tracking of an idle one."""

    session: str | None
    last_seq: int | None
    ended: bool
    restarts: int


class Subscriber:
    """Receive, validate and count wire messages from one or more publishers.

    Use as a context manager; :meth:`receive` returns the next accepted message,
    :meth:`iter` loops until a stop event, a duration or a count.

    Attributes:
        drops: messages dropped, by reason (schema reasons and :data:`STREAM_REASONS`).
        refused: messages refused by a limit, by reason (:data:`LIMIT_REASONS`).
        streams: per-topic :class:`StreamState` of the streams tracked now (see :meth:`expire`).
        forgotten: streams forgotten so far (ended, idle, or to make room).
        unknown_streams: unknown-stream drops per topic (the first 256 topics).
        received: messages taken off the socket (accepted or not).
    """

    def __init__(
        self,
        endpoints: Sequence[str] | str,
        topics: Sequence[str] = ("raw/",),
        socket_options: SocketOptions | None = None,
        options: SubscriberOptions | None = None,
        *,
        bind: bool = False,
    ) -> None:
        self.options = options or SubscriberOptions()
        self.socket = SubscriberSocket(endpoints, topics, socket_options, bind=bind)
        self.socket.on_cut = lambda ep: self._drop("connection_cut", f"connection to {ep} cut by ZeroMQ")
        self.socket.on_handshake_failed = lambda ep, why: self.drops.update(
            ["handshake_failed"]
        )  # logged there
        self._max_bytes = self.socket.options.max_message_bytes
        self.drops: Counter[str] = Counter()
        self.streams: dict[str, StreamState] = {}
        self.unknown_streams: Counter[str] = Counter()
        self.received = 0
        self.last_error: str = ""
        #: messages lost on the way (sequence numbers skipped), all streams, ever (kept when a stream is forgotten)
        self.seq_missing = 0
        #: called ``(stream id, messages lost)`` each time a tracked stream's sequence number jumps
        self.on_seq_missing: Callable[[str, int], None] | None = None
        self.refused: Counter[str] = Counter()
        self.forgotten = 0
        self._gone: OrderedDict[str, _Gone] = OrderedDict()  # tombstones of forgotten streams, oldest first
        self._ended: dict[str, int] = {}  # topic -> monotonic ns of its end, tracked streams that ended
        self._next_expire_ns = 0
        self._shard: ShardFilter | None = None

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.socket.close(linger_ms=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        return self.socket.endpoint

    # ------------------------------------------------------------------ receiving

    def _drop(self, reason: str, detail: str, state: StreamState | None = None) -> None:
        self.drops[reason] += 1
        if state is not None:
            state.drops[reason] += 1
        self.last_error = f"{reason}: {detail}"
        n = self.drops[reason]
        if n <= 3 or n & (n - 1) == 0:  # log the first few, then at powers of two
            # frames before the first stream start are what a late subscriber expects to see
            level = logging.INFO if reason == "unknown_stream" and state is None else logging.WARNING
            log.log(level, "dropped message (%s, %d so far): %s", reason, n, detail)

    def _refuse(self, reason: str, detail: str) -> None:
        self.refused[reason] += 1
        self.last_error = f"{reason}: {detail}"
        n = self.refused[reason]
        if n & (n - 1) == 0:  # the first time, then at powers of two
            log.warning("refused message (%s, %d so far): %s", reason, n, detail)

    def handle(
        self, data: bytes, t_recv_wall_ns: int | None = None, t_recv_mono_ns: int | None = None
    ) -> Received | None:
        """Check one frame as it came off the socket; the :class:`Received` or ``None`` if dropped."""
        wall = time.time_ns() if t_recv_wall_ns is None else t_recv_wall_ns
        mono = time.monotonic_ns() if t_recv_mono_ns is None else t_recv_mono_ns
        shard = self.options.shard
        if shard is not None:
            if self._shard is None or (self._shard.index, self._shard.count) != shard:
                self._shard = ShardFilter(*shard)
            if not self._shard.accepts(data):
                return None
        self.received += 1
        if mono >= self._next_expire_ns:
            self.expire(mono)
        try:
            topic, msg = unpack(data, self._max_bytes, self.options.max_metadata_bytes)
        except MetadataTooLarge as exc:
            self._refuse(exc.reason, exc.detail)
            self._skip_refused(split(data)[0], exc)
            return None
        except WireError as exc:
            self._drop(exc.reason, str(exc))
            return None
        state = self.streams.get(topic)
        if isinstance(msg, StreamStart):
            state = self._start(topic, msg, state)
            if state is None:
                return None
        else:
            if state is None or state.ended:
                gone = self._gone.get(topic) if state is None else None
                ended = state is not None or (gone is not None and gone.ended)
                if self.options.require_start or ended:
                    if gone is not None and not gone.ended:
                        self._skip(gone, msg.seq)  # received, not lost: the gap is counted up to here
                    if len(self.unknown_streams) < _MAX_UNKNOWN_IDS or topic in self.unknown_streams:
                        self.unknown_streams[topic] += 1
                    why = "has not sent a stream start"
                    if ended:
                        why = "has ended"
                    elif gone is not None:
                        why = "was forgotten (idle) and has not announced itself since"
                    self._drop(
                        "unknown_stream", f"{msg.kind} seq {msg.seq} on {topic}: the stream {why}", state
                    )
                    return None
                if not self._room():
                    self._refuse("too_many_streams", f"{msg.kind} of a new stream {topic}: "
                                 f"max_streams={self.options.max_streams} streams are tracked")  # fmt: skip
                    return None
                state = self.streams[topic] = StreamState(topic, msg.stream, msg.anonymized)
                if gone is not None:  # a forgotten idle stream comes back: resume its tracking
                    del self._gone[topic]
                    state.last_seq, state.restarts = gone.last_seq, gone.restarts
            if state.last_seq is not None and msg.seq <= state.last_seq:
                self._drop("seq_backwards", f"{topic}: {msg.kind} seq {msg.seq} <= {state.last_seq}", state)
                return None
            self._advance(state, msg.seq)
            state.last_seq = msg.seq
            if isinstance(msg, FrameMessage):
                state.frames += 1
                state.last_frame = msg.frame
            elif isinstance(msg, FrameGap):
                state.gaps += 1
                state.last_frame = msg.frame
            elif isinstance(msg, StreamEnd):
                state.end = msg
                self._ended[topic] = mono
        r = Received(topic, msg, wall, mono, state.start)
        state._record(r, int(self.options.window_s * 1e9))
        return r

    def _start(self, topic: str, msg: StreamStart, state: StreamState | None) -> StreamState | None:
        """Account for a stream start; the stream's state, or ``None`` when it is dropped or refused."""
        if (
            state is not None
            and not state.ended
            and (state.start is None or state.start.session == msg.session)
        ):
            # a re-announcement (or the first start of a stream accepted unannounced)
            if state.last_seq is not None and msg.seq <= state.last_seq:
                self._drop("seq_backwards", f"{topic}: start seq {msg.seq} <= {state.last_seq}", state)
                return None
            self._advance(state, msg.seq)
        else:  # a new stream, a restarted one, or one that ended or was forgotten
            gone = self._gone.get(topic) if state is None else None
            if state is not None:
                session, last_seq, ended = (
                    state.start.session if state.start else None,
                    state.last_seq,
                    state.ended,
                )
            elif gone is not None:
                session, last_seq, ended = gone.session, gone.last_seq, gone.ended
            else:
                session, last_seq, ended = None, None, False
            same = session is not None and session == msg.session
            if same and last_seq is not None and msg.seq <= last_seq:
                self._drop("seq_backwards", f"{topic}: start seq {msg.seq} <= {last_seq}", state)
                return None
            if same and ended:  # a late or replayed start of the session that ended: never re-opens it
                self._drop("unknown_stream", f"start seq {msg.seq} on {topic}: session {msg.session} "
                           "has ended", state)  # fmt: skip
                return None
            new = StreamState(topic, msg.stream, msg.anonymized)
            if state is not None:
                log.info("stream %s restarted (session %s)", topic, msg.session)
                new.restarts = state.restarts + 1
                new.drops = state.drops
                self._ended.pop(topic, None)
            elif not self._room():
                self._refuse("too_many_streams", f"start of a new stream {topic}: max_streams="
                             f"{self.options.max_streams} streams are tracked")  # fmt: skip
                return None
            elif gone is not None:
                del self._gone[topic]
                new.restarts = gone.restarts + (0 if same else 1)
                if same:  # a forgotten idle stream announces itself again: its gap is counted
                    new.last_seq = gone.last_seq
                    self._advance(new, msg.seq)
                else:
                    log.info("stream %s restarted (session %s)", topic, msg.session)
            state = self.streams[topic] = new
        state.start = msg
        state.starts += 1
        state.last_seq = msg.seq
        return state

    def _skip(self, gone: _Gone, seq: int) -> None:
        """A message of a forgotten idle stream that was received (not lost) but not accepted."""
        if gone.last_seq is None or seq > gone.last_seq:
            if gone.last_seq is not None:
                self.seq_missing += seq - gone.last_seq - 1
            gone.last_seq = seq

    def _skip_refused(self, topic: str, exc: MetadataTooLarge) -> None:
        """A start refused for its metadata: its sequence number arrived, so it does not count as lost."""
        if exc.seq is None or exc.session is None:
            return
        state = self.streams.get(topic)
        if state is not None:
            live = not state.ended and state.start is not None and state.start.session == exc.session
            if live and state.last_seq is not None and exc.seq > state.last_seq:
                self._advance(state, exc.seq)
                state.last_seq = exc.seq
            return
        gone = self._gone.get(topic)
        if gone is not None and not gone.ended and gone.session == exc.session:
            self._skip(gone, exc.seq)

    # ------------------------------------------------------------------ forgetting

    def _room(self) -> bool:
        """Whether one more stream may be tracked (forgetting the earliest ended one if that makes room)."""
        if len(self.streams) < self.options.max_streams:
            return True
        if self._ended:
            self._forget(next(iter(self._ended)))
            return True
        return False

    def _forget(self, topic: str) -> None:
        st = self.streams.pop(topic)
        self._ended.pop(topic, None)
        self._gone.pop(topic, None)
        # fresh copies of the strings: the decoded ones sit amid the (now freed) objects of the stream's
        # messages, and one small survivor keeps a whole block of the allocator from going back to the OS
        session = st.start.session.encode().decode() if st.start else None
        self._gone[topic.encode().decode()] = _Gone(session, st.last_seq, st.ended, st.restarts)
        while len(self._gone) > self.options.max_streams:
            self._gone.popitem(last=False)
        self.forgotten += 1

    def expire(self, now_mono_ns: int | None = None) -> list[str]:
        """Forget the streams that ended ``ended_grace_s`` ago and (with ``idle_s``) the idle ones.

        Returns their topics. :meth:`handle` calls it at most every 0.25 s; call it to forget
        streams while nothing arrives.
        """
        now = time.monotonic_ns() if now_mono_ns is None else now_mono_ns
        self._next_expire_ns = now + _EXPIRE_EVERY_NS
        o = self.options
        grace = int(o.ended_grace_s * 1e9)
        gone = [t for t, t_end in self._ended.items() if now - t_end >= grace]
        if o.idle_s is not None:
            idle = int(o.idle_s * 1e9)
            gone += [
                t for t, st in self.streams.items() if not st.ended and now - st.last_recv_mono_ns > idle
            ]
        for t in gone:
            self._forget(t)
        return gone

    def _advance(self, state: StreamState, seq: int) -> None:
        if state.last_seq is not None and seq > state.last_seq + 1:
            lost = seq - state.last_seq - 1
            state.seq_missing += lost
            self.seq_missing += lost
            if self.on_seq_missing is not None:
                self.on_seq_missing(state.stream, lost)

    def receive(self, timeout_s: float = 0.1) -> Received | None:
        """The next accepted message, or ``None`` when nothing acceptable arrived within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            data = self.socket.recv(max(0, int(left * 1000)))
            if data is None:
                return None
            r = self.handle(data)
            if r is not None:
                return r
            if left <= 0:
                return None

    def drain(self) -> list[Received]:
        """Everything already queued locally, without waiting (used when stopping)."""
        out: list[Received] = []
        while (data := self.socket.recv(0)) is not None:
            r = self.handle(data)
            if r is not None:
                out.append(r)
        return out

    def iter(
        self,
        stop: threading.Event | None = None,
        duration_s: float | None = None,
        max_messages: int | None = None,
        poll_s: float = 0.1,
    ) -> Iterator[Received]:
        """Accepted messages until ``stop`` is set, ``duration_s`` passed or ``max_messages`` came.

        When ``stop`` is set, messages already queued locally are still handed out.
        """
        t_end = None if duration_s is None else time.monotonic() + duration_s
        n = 0
        while max_messages is None or n < max_messages:
            if stop is not None and stop.is_set():
                yield from self.drain()
                return
            if t_end is not None and time.monotonic() >= t_end:
                return
            got = self.receive(poll_s)
            if got is not None:
                n += 1
                yield got

    # ------------------------------------------------------------------ reporting

    @property
    def shard_skipped(self) -> int:
        """Frames of other shards' streams skipped (``options.shard``)."""
        return 0 if self._shard is None else self._shard.skipped

    @property
    def decode_errors(self) -> int:
        """Messages dropped by the schema (everything but stream-level reasons)."""
        return sum(v for k, v in self.drops.items() if k in REASONS)

    def stats(self) -> dict[str, Any]:
        """JSON-able counters of the subscriber and each stream."""
        t = self.socket.events()
        return {
            "received": self.received,
            "drops": dict(self.drops),
            "decode_errors": self.decode_errors,
            "seq_missing": self.seq_missing,
            "refused": dict(self.refused),
            "forgotten": self.forgotten,
            "unknown_streams": dict(self.unknown_streams),
            "transport": {
                "connects": t.connects,
                "disconnects": t.disconnects,
                "cut": t.cut,
                "reconnects": t.reconnects,
                "handshake_failures": t.handshake_failures,
            },  # fmt: skip
            "streams": {k: s.summary() for k, s in self.streams.items()},
        }


__all__ = ["STREAM_REASONS", "LIMIT_REASONS", "SubscriberOptions", "Received", "StreamState", "Subscriber"]
