"""What the streaming service keeps per ``anon/`` stream and in all: the owed messages in order
(:class:`_Slot`), a stream's output state (:class:`_StreamOut`) and the counters and samples of
its statistics (:class:`ServiceStats`)."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from pmr_stream.wire.privacy import PersonIds
from pmr_stream.wire.schema import FrameMessage, Message, StreamStart

#: Samples kept for the latency / batch percentiles.
_SAMPLES: Final[int] = 20000


@dataclass
class _Slot:
    """One message owed to ``anon/<stream>``, in input order. It is built when it is sent, under
    the ``anon/`` stream's next sequence number: ``build(seq=...)`` for a control message, from
    ``src`` (only its timing) and ``joints`` (the network's, ``(25, 3)`` metres) for a frame."""

    build: Callable[..., Message] | None = None
    src: FrameMessage | None = None  # the input frame (only its timing is used)
    joints: np.ndarray | None = None  # None when done: failed, nothing goes out
    done: bool = False
    stream: str = ""  # the id on anon/
    person: int = 0  # the fresh person id
    session: str | None = None  # a start's anon/ session (a new one numbers from 0 again)


@dataclass
class _StreamOut:
    slots: deque[_Slot] = field(default_factory=deque)
    last_seen_ns: int = 0
    ended: bool = False
    session: str | None = None  # the raw session
    anon_stream: str = ""  # the id on anon/ (pseudonym or declared public)
    anon_session: str | None = None  # fresh, per raw session
    persons: PersonIds = field(default_factory=PersonIds)  # raw person id -> fresh id, this session
    seq: int = 0  # the next sequence number on anon/
    published_session: str | None = None  # the anon/ session of the last start published
    announced: StreamStart | None = None  # that start, re-sent to new subscriptions (None after the end)


@dataclass
class ServiceStats:
    frames_in: int = 0
    published_frames: int = 0
    published_other: int = 0
    announcements: int = 0  # starts re-sent at once to a new anon/ subscription
    failed: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    windows: int = 0
    batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    engine_ms_per_window: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    engine_ms_per_batch: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    queue_wait_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    service_latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_SAMPLES))
    max_queue: int = 0
    t_start: float = field(default_factory=time.monotonic)


__all__ = ["ServiceStats"]
