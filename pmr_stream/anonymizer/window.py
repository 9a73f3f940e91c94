"""Sliding 75-frame windows per (stream, person) for the streaming anonymizer.

Every input frame of a person pushes one frame into that person's ring buffer and
makes one window due: the last 75 frames, normalised like the network was trained
(SpineMid of the window's first frame at the origin). How the output frame is taken
from the anonymized windows is the *window policy* (:class:`WindowPolicy`):

``last`` (default)
    The output for frame ``t`` is the last frame of the window that ends at ``t``.
    No delay is added: frame ``t`` goes out as soon as its window is back from the
    engine.
``delay:N``
    The output for frame ``t`` is published when frame ``t + N`` has arrived: the
    average of frame ``t`` as seen by the ``N + 1`` windows that end at ``t .. t+N``,
    weighted ``1, 2, ..., N+1`` (the window in which ``t`` lies deepest counts most).
    This adds ``N`` frame periods of latency and smooths window-to-window jitter.

Start-up: before 75 frames exist the buffer is padded by repeating the person's
first frame, so the very first output is a real anonymized frame with no jump when
the buffer fills up (the padding slides out one frame at a time).

Gaps: a frame number that jumps by at most ``max_gap`` frames is bridged by linear
interpolation inside the buffer (those frames are not published: nothing came in for
them); a longer jump resets the person's buffer (padding again). A frame number not
above the last one of that person is out of date: dropped and counted. Persons not
seen for ``idle_s`` seconds are evicted (:meth:`WindowStore.idle`, :meth:`WindowStore.drop`).

Limits: at most ``max_persons_per_stream`` persons per stream and ``max_persons`` in all
have a buffer (about 23 KB each); frames of a person beyond them are refused and counted
by reason (:data:`REFUSED_REASONS`) until a track is freed (stream end, eviction).
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import C, J, Joint, T, center_windows, uncenter_windows

log = logging.getLogger(__name__)

#: Why :meth:`WindowStore.admit` refuses a person (counted in :attr:`WindowCounters.refused`).
REFUSED_REASONS: Final[dict[str, str]] = {
    "too_many_persons_in_stream": "a new person id in a stream that already has max_persons_per_stream persons",
    "too_many_persons": "a new person id while the service already holds max_persons persons",
}
#: Policy names accepted by :meth:`WindowPolicy.parse`.
POLICY_HELP: Final[str] = "'last' (no added delay) or 'delay:N' (N frames later, blended over N+1 windows)"
_MAX_DELAY: Final[int] = T - 1


@dataclass(frozen=True)
class WindowPolicy:
    """Which part of the anonymized windows becomes an output frame (``delay`` 0 = ``last``)."""

    delay: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.delay <= _MAX_DELAY:
            raise ValueError(f"window delay must be in 0..{_MAX_DELAY} frames, got {self.delay}")

    @classmethod
    def parse(cls, text: str) -> WindowPolicy:
        """``"last"`` or ``"delay:N"``."""
        t = text.strip().lower()
        if t == "last":
            return cls(0)
        m = re.fullmatch(r"delay:(\d+)", t)
        if not m:
            raise ValueError(f"window policy {text!r} is not {POLICY_HELP}")
        return cls(int(m.group(1)))

    @property
    def name(self) -> str:
        return "last" if self.delay == 0 else f"delay:{self.delay}"

    def weights(self) -> npt.NDArray[np.float32]:
        """Weight of frame ``t`` in the window ending at ``t + k``, ``k = 0..delay`` (sum 1)."""
        w = np.arange(1, self.delay + 2, dtype=np.float32)
        return w / w.sum()


@dataclass
class Due:
    """A window ready for the engine, and what to publish from it.

    ``frames``: ``(75, 25, 3)`` float32 metres, the track's buffer when the window became due
    (never written afterwards: a push makes a new buffer); ``offset``: ``(3,)`` the SpineMid of
    its first frame, what normalisation subtracts; ``tag``: the input frame's identity (opaque to
    this module). :func:`center_batch` normalises many at once; :attr:`window` is one.
    """

    key: tuple[str, int]
    frame: int
    frames: npt.NDArray[np.float32]
    offset: npt.NDArray[np.float32]
    tag: Any
    t_due_ns: int = 0

    @property
    def window(self) -> npt.NDArray[np.float32]:
        """``(75, 25, 3)`` float32, normalised (:func:`~pmr_stream.skeleton.center_windows`)."""
        return center_windows(self.frames)[0]


def center_batch(dues: list[Due]) -> npt.NDArray[np.float32]:
    """The windows of ``dues`` normalised, as one batch ``(B, 75, 25, 3)`` float32: one copy and
    one subtraction for all (the same numbers as :attr:`Due.window` of each)."""
    x = np.stack([d.frames for d in dues])
    origin = np.tile(
        x[:, 0, Joint.SPINE_MID], J
    )  # (B, 75): a frame's 25 x 3 numbers, so the inner loop is long
    rows = x.reshape(len(dues), T, J * C)
    rows -= origin[:, None, :]
    return x


@dataclass
class _Pending:
    """A frame waiting for its later windows (``delay:N``)."""

    frame: int
    tag: Any
    acc: npt.NDArray[np.float64]
    got: int = 0
    failed: bool = False


@dataclass
class PersonTrack:
    """One person's ring buffer and what is still owed to the output."""

    buffer: npt.NDArray[np.float32]  # (75, 25, 3), oldest first
    last_frame: int
    last_seen_ns: int
    frames: int = 0
    pending: deque[_Pending] = field(default_factory=deque)


@dataclass(frozen=True)
class WindowOptions:
    """``max_gap``: frames bridged by interpolation; ``idle_s``: eviction after this long unseen;
    ``max_persons_per_stream`` / ``max_persons``: tracks held at once per stream / in all."""

    policy: WindowPolicy = field(default_factory=WindowPolicy)
    max_gap: int = 10
    idle_s: float = 5.0
    max_persons_per_stream: int = 64
    max_persons: int = 4096

    def __post_init__(self) -> None:
        if not 0 <= self.max_gap < T - 1:
            raise ValueError(f"max_gap must be in 0..{T - 2} frames, got {self.max_gap}")
        if self.idle_s <= 0:
            raise ValueError(f"idle_s must be > 0, got {self.idle_s}")
        if self.max_persons_per_stream < 1 or self.max_persons < 1:
            raise ValueError(f"max_persons_per_stream and max_persons must be >= 1, got "
                             f"{self.max_persons_per_stream} and {self.max_persons}")  # fmt: skip


@dataclass
class WindowCounters:
    frames: int = 0
    out_of_date: int = 0
    interpolated: int = 0
    resets: int = 0
    evicted: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # frames refused by a person limit, by reason


class WindowStore:
    """The ring buffers of every (stream, person), and the policy's output bookkeeping."""

    def __init__(self, options: WindowOptions | None = None) -> None:
        self.options = options or WindowOptions()
        self.tracks: dict[tuple[str, int], PersonTrack] = {}
        self.counters = WindowCounters()
        self._persons: dict[str, dict[int, None]] = {}  # stream -> its persons with a track (insertion order)
        self.dropped = 0  # tracks dropped so far (ended, evicted, reset): their buffers were freed

    # ---------------------------------------------------------------- input

    def admit(self, stream: str, person: int) -> bool:
        """Whether a frame of ``(stream, person)`` may be pushed: a person with a track always,
        a new one only within the limits; a refusal is counted (and logged the first times)."""
        if (stream, person) in self.tracks:
            return True
        o = self.options
        if len(self._persons.get(stream, ())) >= o.max_persons_per_stream:
            reason, limit = "too_many_persons_in_stream", f"max_persons_per_stream={o.max_persons_per_stream}"
        elif len(self.tracks) >= o.max_persons:
            reason, limit = "too_many_persons", f"max_persons={o.max_persons}"
        else:
            return True
        self.counters.refused[reason] += 1
        n = self.counters.refused[reason]
        if n & (n - 1) == 0:  # the first time, then at powers of two
            log.warning("refused a frame of new person %d of stream %s (%s, %d so far): %s reached",
                        person, stream, reason, n, limit)  # fmt: skip
        return False

    def push(
        self, stream: str, person: int, frame: int, joints: npt.ArrayLike, tag: Any, now_ns: int
    ) -> tuple[Due | None, list[tuple[Any, npt.NDArray[np.float32] | None]]]:
        """Add one frame: ``(the window now due or None if out of date, frames flushed by a reset)``."""
        x = np.asarray(joints, dtype=np.float32).reshape(J, C)
        key = (stream, person)
        tr = self.tracks.get(key)
        flushed: list[tuple[Any, npt.NDArray[np.float32] | None]] = []
        if tr is not None and frame <= tr.last_frame:
            self.counters.out_of_date += 1
            return None, flushed
        if tr is None and not self.admit(stream, person):
            return None, flushed  # over a person limit: refused (counted), nothing owed
        if tr is not None and frame - tr.last_frame > self.options.max_gap + 1:
            self.counters.resets += 1
            flushed = self.drop(key)
            tr = None
        if tr is None:
            tr = PersonTrack(np.repeat(x[None], T, axis=0), frame, now_ns)
            self.tracks[key] = tr
            self._persons.setdefault(stream, {})[person] = None
        else:
            step = frame - tr.last_frame
            buf = np.empty_like(tr.buffer)  # a new buffer: the one a Due holds is never written
            if step == 1:
                buf[:-1] = tr.buffer[1:]
                buf[-1] = x
            else:
                prev = tr.buffer[-1]
                fill = [prev + (x - prev) * (i / step) for i in range(1, step)]  # bridge a short gap linearly
                self.counters.interpolated += len(fill)
                buf[:] = np.concatenate([tr.buffer, *(f[None] for f in fill), x[None]])[-T:]
            tr.buffer = buf
            tr.last_frame = frame
            tr.last_seen_ns = now_ns
        tr.frames += 1
        self.counters.frames += 1
        b = tr.buffer
        return Due(key, frame, b, b[0, Joint.SPINE_MID], tag, now_ns), flushed

    # ---------------------------------------------------------------- output

    def resolve(
        self, due: Due, anonymized: npt.NDArray[np.float32] | None
    ) -> list[tuple[Any, npt.NDArray[np.float32] | None]]:
        """Feed back one window's result (``None``: it failed); the frames now complete.

        Returns ``(tag, joints)`` pairs in frame order; ``joints`` is ``None`` for a frame
        that cannot be published (one of its windows failed: fail closed).
        """
        d = self.options.policy.delay
        if d == 0:
            if anonymized is None:
                return [(due.tag, None)]
            return [(due.tag, uncenter_windows(anonymized[-1], due.offset).astype(np.float32))]
        tr = self.tracks.get(due.key)
        if tr is None:
            return [(due.tag, None)]
        w = self.options.policy.weights()
        tr.pending.append(_Pending(due.frame, due.tag, np.zeros((J, C), np.float64)))
        # the window ending at due.frame holds pending frame p at position 74 - (due.frame - p.frame)
        for p in tr.pending:
            k = due.frame - p.frame
            if 0 <= k <= d and k < T:
                if anonymized is None:
                    p.failed = True
                else:
                    p.acc += w[k] * uncenter_windows(anonymized[T - 1 - k], due.offset)
                    p.got += 1
        out: list[tuple[Any, npt.NDArray[np.float32] | None]] = []
        while tr.pending and due.frame - tr.pending[0].frame >= d:
            p = tr.pending.popleft()
            out.append((p.tag, None if p.failed else self._finish(p, w)))
        return out

    def resolve_batch(
        self,
        dues: list[Due],
        anonymized: npt.NDArray[np.float32] | None,
        ok: npt.NDArray[np.bool_] | None = None,
    ) -> list[tuple[Any, npt.NDArray[np.float32] | None]]:
        """:meth:`resolve` of every window of a batch: ``anonymized`` ``(B, 75, 25, 3)`` (``None``: the
        batch failed), ``ok`` ``(B,)`` which of its windows may be used (default: all). With the ``last``
        policy the output frames are un-normalised at once (the same numbers as one by one)."""
        if self.options.policy.delay != 0 or anonymized is None:
            return [p for i, d in enumerate(dues)
                    for p in self.resolve(d, None if anonymized is None or (ok is not None and not ok[i])
                                          else anonymized[i])]  # fmt: skip
        last = anonymized[:, -1] + np.stack([d.offset for d in dues])[:, None, :]  # (B, 25, 3)
        if ok is None:
            return [(d.tag, last[i]) for i, d in enumerate(dues)]
        return [(d.tag, last[i] if ok[i] else None) for i, d in enumerate(dues)]

    @staticmethod
    def _finish(p: _Pending, w: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        # frames whose later windows were never made (gaps) are renormalised over what came
        used = float(w[: p.got].sum()) if p.got else 1.0
        return (p.acc / used).astype(np.float32)

    def flush(self, key: tuple[str, int]) -> list[tuple[Any, npt.NDArray[np.float32] | None]]:
        """The frames a track still owes (end of stream, reset, eviction), from what their windows gave."""
        tr = self.tracks.get(key)
        if tr is None or not tr.pending:
            return []
        w = self.options.policy.weights()
        out = []
        while tr.pending:
            p = tr.pending.popleft()
            # weights were assigned by position; renormalise by the ones received
            got_w = float(sum(w[k] for k in range(min(p.got, len(w))))) if p.got else 0.0
            ok = not p.failed and p.got > 0 and got_w > 0
            out.append((p.tag, (p.acc / got_w).astype(np.float32) if ok else None))
        return out

    def drop(self, key: tuple[str, int]) -> list[tuple[Any, npt.NDArray[np.float32] | None]]:
        """Flush and forget a track (and its stream's entry with its last person)."""
        out = self.flush(key)
        if self.tracks.pop(key, None) is not None:
            self.dropped += 1
            persons = self._persons[key[0]]
            del persons[key[1]]
            if not persons:
                del self._persons[key[0]]
        return out

    def keys_of(self, stream: str) -> list[tuple[str, int]]:
        """The tracks of ``stream`` (in order of creation)."""
        return [(stream, p) for p in self._persons.get(stream, ())]

    def streams(self) -> int:
        """Streams with at least one track."""
        return len(self._persons)

    def idle(self, now_ns: int) -> list[tuple[str, int]]:
        """Tracks not seen for ``idle_s``."""
        limit = int(self.options.idle_s * 1e9)
        return [k for k, tr in self.tracks.items() if now_ns - tr.last_seen_ns > limit]


__all__ = [
    "WindowPolicy",
    "WindowOptions",
    "WindowStore",
    "WindowCounters",
    "Due",
    "center_batch",
    "POLICY_HELP",
    "REFUSED_REASONS",
]
