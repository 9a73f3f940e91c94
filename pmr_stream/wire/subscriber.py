"""A validating subscriber: decodes, checks and counts every message it receives.

:class:`Subscriber` wraps a :class:`~pmr_stream.wire.sockets.SubscriberSocket`. For
each frame that arrives it

1. splits and decodes it (:func:`~pmr_stream.wire.schema.unpack`); a
   :class:`~pmr_stream.wire.schema.WireError` is counted under its reason and dropped;
2. looks up the stream by topic. A stream becomes known through its
   :class:`~pmr_stream.wire.schema.StreamStart`; frames of a stream that has not
   announced itself (or has ended) are dropped as ``unknown_stream``. Producers
   re-announce every second and the moment a new subscription reaches them, so a
   late subscriber loses at most the frames before the next announcement;
3. checks the sequence number: a number not above the last one accepted is dropped as
   ``seq_backwards`` (duplicates included); a jump forward is accepted and the
   missing numbers are counted as ``seq_missing`` (lost on the way). A start with a
   new ``session`` (a restarted producer) resets the tracking.

Everything accepted is handed out as a :class:`Received`; nothing bad stops the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from pmr_stream.wire.schema import (
    REASONS,
    FrameGap,
    FrameMessage,
    Message,
    StreamEnd,
    StreamStart,
    WireError,
    unpack,
)
from pmr_stream.wire.sockets import SocketOptions, SubscriberSocket

log = logging.getLogger(__name__)

#: Drop reasons of the subscriber itself (besides the schema's :data:`REASONS`).
STREAM_REASONS: Final[dict[str, str]] = {
    "unknown_stream": "a message of a stream that has not sent a stream start (or has ended)",
    "seq_backwards": "a sequence number not above the last one accepted (replayed, duplicated or reordered)",
    "connection_cut": "ZeroMQ refused a message over the maximum size (or a protocol error) and cut the "
    "connection; the subscriber reconnected",
}
#: Unknown stream ids remembered (for the probe) before further ones are only counted.
_MAX_UNKNOWN_IDS: Final[int] = 256


@dataclass(frozen=True)
class SubscriberOptions:
    """Options of :class:`Subscriber`.

    Attributes:
        require_start: drop frames of streams that have not announced themselves. Turn it
            off for ``conflate`` viewers, which may never see a start among the newest frames.
        window_s: seconds of history for rates, persons and latency percentiles.
    """

    require_start: bool = True
    window_s: float = 5.0


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

    def latency_percentiles(self, qs: Sequence[float] = (50, 99)) -> list[float]:
        """Capture-to-reception latency percentiles, milliseconds (NaN without samples)."""
        if not self._latency:
            return [float("nan")] * len(qs)
        a = np.fromiter((v for _, v in self._latency), dtype=np.float64)
        return [float(x) for x in np.percentile(a, list(qs))]

    def summary(self) -> dict[str, Any]:
        """JSON-able counters."""
        p50, p99 = self.latency_percentiles()
        return {
            "topic": self.topic, "stream": self.stream, "anonymized": self.anonymized,
            "source": self.start.source if self.start else None, "fps": self.start.fps if self.start else None,
            "frames": self.frames, "gaps": self.gaps, "starts": self.starts, "seq_missing": self.seq_missing,
            "restarts": self.restarts, "ended": self.end.reason if self.end else None,
            "drops": dict(self.drops), "rate_fps": round(self.rate(), 2), "persons": self.persons(),
            "latency_ms_p50": p50, "latency_ms_p99": p99,
        }  # fmt: skip


class Subscriber:
    """Receive, validate and count wire messages from one or more publishers.

    Use as a context manager; :meth:`receive` returns the next accepted message,
    :meth:`iter` loops until a stop event, a duration or a count.

    Attributes:
        drops: messages dropped, by reason (schema reasons and :data:`STREAM_REASONS`).
        streams: per-topic :class:`StreamState`.
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
        self._max_bytes = self.socket.options.max_message_bytes
        self.drops: Counter[str] = Counter()
        self.streams: dict[str, StreamState] = {}
        self.unknown_streams: Counter[str] = Counter()
        self.received = 0
        self.last_error: str = ""

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

    def handle(
        self, data: bytes, t_recv_wall_ns: int | None = None, t_recv_mono_ns: int | None = None
    ) -> Received | None:
        """Check one frame as it came off the socket; the :class:`Received` or ``None`` if dropped."""
        wall = time.time_ns() if t_recv_wall_ns is None else t_recv_wall_ns
        mono = time.monotonic_ns() if t_recv_mono_ns is None else t_recv_mono_ns
        self.received += 1
        try:
            topic, msg = unpack(data, self._max_bytes)
        except WireError as exc:
            self._drop(exc.reason, str(exc))
            return None
        state = self.streams.get(topic)
        if isinstance(msg, StreamStart):
            if (
                state is None
                or state.ended
                or (state.start is not None and state.start.session != msg.session)
            ):
                if state is not None:
                    log.info("stream %s restarted (session %s)", topic, msg.session)
                new = StreamState(topic, msg.stream, msg.anonymized)
                if state is not None:
                    new.restarts = state.restarts + 1
                    new.drops = state.drops
                state = self.streams[topic] = new
            elif state.last_seq is not None and msg.seq <= state.last_seq:
                self._drop("seq_backwards", f"{topic}: start seq {msg.seq} <= {state.last_seq}", state)
                return None
            else:
                self._advance(state, msg.seq)
            state.start = msg
            state.starts += 1
            state.last_seq = msg.seq
        else:
            if state is None or state.ended:
                if self.options.require_start or (state is not None and state.ended):
                    if len(self.unknown_streams) < _MAX_UNKNOWN_IDS or topic in self.unknown_streams:
                        self.unknown_streams[topic] += 1
                    why = "has ended" if state is not None else "has not sent a stream start"
                    self._drop(
                        "unknown_stream", f"{msg.kind} seq {msg.seq} on {topic}: the stream {why}", state
                    )
                    return None
                state = self.streams[topic] = StreamState(topic, msg.stream, msg.anonymized)
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
        r = Received(topic, msg, wall, mono, state.start)
        state._record(r, int(self.options.window_s * 1e9))
        return r

    @staticmethod
    def _advance(state: StreamState, seq: int) -> None:
        if state.last_seq is not None and seq > state.last_seq + 1:
            state.seq_missing += seq - state.last_seq - 1

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


__all__ = ["STREAM_REASONS", "SubscriberOptions", "Received", "StreamState", "Subscriber"]
