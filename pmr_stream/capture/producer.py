"""The producer: takes frames from a source and publishes them on the wire.

Sources (:mod:`.replay`, :mod:`.camera`, :mod:`.synthetic`) yield
:class:`~pmr_stream.capture.source.SourceFrame` objects; :class:`Producer` turns them into wire messages on ``raw/<stream>``:

* a :class:`~pmr_stream.wire.schema.StreamStart` first, again every ``announce_s``
  seconds and whenever a new subscription reaches the ``XPUB`` socket (late subscribers);
* one :class:`~pmr_stream.wire.schema.FrameMessage` per person in a frame, or a
  :class:`~pmr_stream.wire.schema.FrameGap` when nobody is in it;
* a :class:`~pmr_stream.wire.schema.StreamEnd` when the source ends, a limit is reached
  or Ctrl-C stops it.

Sources that are files (Kinect recordings, the synthetic generator) are paced here by
their media time: ``speed`` 1 is real time, 2 twice as fast, 0 as fast as possible.
Cameras pace themselves. The producer reports its rate, the source's drops and the
per-frame pose time every ``report_s`` seconds and when it stops.

Source specs are parsed and opened by :mod:`pmr_stream.capture.sources`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pmr_stream.capture.source import Source, SourceFrame
from pmr_stream.stats import percentiles
from pmr_stream.wire.checks import WireError
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProducerOptions:
    """Options of :class:`Producer`.

    Attributes:
        speed: pacing of file sources, multiples of real time; 0 = as fast as possible.
        announce_s: seconds between stream-start re-announcements (0: only at start and
            on new subscriptions).
        max_frames: stop after this many captured frames (all streams together).
        duration_s: stop after this many seconds.
        wait_subscribers: before publishing, wait for this many subscriptions (start-up
            handshake, e.g. so a recorder gets every frame), at most ``wait_timeout_s``.
        report_s: seconds between progress reports (0: only at the end).
    """

    speed: float = 1.0
    announce_s: float = 1.0
    max_frames: int | None = None
    duration_s: float | None = None
    wait_subscribers: int = 0
    wait_timeout_s: float = 10.0
    report_s: float = 5.0

    def __post_init__(self) -> None:
        if not (self.speed >= 0 and np.isfinite(self.speed)):
            raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {self.speed}")
        if self.announce_s < 0 or self.report_s < 0:
            raise ValueError("announce_s and report_s must be >= 0")
        if self.max_frames is not None and self.max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {self.max_frames}")


@dataclass
class ProducerStats:
    """What a producer did. ``pose_ms`` keeps the last 10 000 per-frame pose times."""

    frames: int = 0  # captured frames published (all streams)
    persons: int = 0  # FrameMessages
    gaps: int = 0  # frames without a person
    starts: int = 0
    messages: int = 0
    bytes: int = 0
    drops: int = 0  # frames the source dropped (newest frame wins)
    elapsed_s: float = 0.0
    end_reason: str = ""
    pose_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10000))

    @property
    def rate_fps(self) -> float:
        """Captured frames published per second (all streams)."""
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-able figures; pose times in milliseconds."""
        return {
            "frames": self.frames, "persons": self.persons, "gaps": self.gaps, "drops": self.drops,
            "starts": self.starts, "messages": self.messages, "bytes": self.bytes,
            "elapsed_s": round(self.elapsed_s, 3), "rate_fps": round(self.rate_fps, 2),
            **percentiles(self.pose_ms, "pose_ms", (50,), ndigits=2, mean=True, maximum=True),
            "end": self.end_reason,
        }  # fmt: skip


class Producer:
    """Publish a :class:`Source` through a :class:`~pmr_stream.wire.sockets.Publisher`.

    ``report`` is called with :meth:`ProducerStats.summary` every ``report_s`` seconds
    (the CLI prints it); progress is also logged at INFO.
    """

    def __init__(
        self,
        source: Source,
        publisher: Publisher,
        options: ProducerOptions | None = None,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.source = source
        self.publisher = publisher
        self.options = options or ProducerOptions()
        self.report = report
        self.session = secrets.token_hex(8)
        self.stats = ProducerStats()
        self._seq: dict[str, int] = {s.stream: 0 for s in source.streams}
        self._info = {s.stream: s for s in source.streams}
        self._frames_of: dict[str, int] = dict.fromkeys(self._seq, 0)
        if len(self._info) != len(source.streams):
            raise ValueError("a source must not produce two streams with the same id")

    def _next_seq(self, stream: str) -> int:
        s = self._seq[stream]
        self._seq[stream] = s + 1
        return s

    def _send(self, msg: FrameMessage | FrameGap | StreamStart | StreamEnd) -> None:
        self.stats.bytes += self.publisher.send(msg)
        self.stats.messages += 1

    def announce(self) -> None:
        """Publish a :class:`StreamStart` for every stream."""
        for info in self.source.streams:
            self._send(
                StreamStart(
                    stream=info.stream, seq=self._next_seq(info.stream), session=self.session,
                    t_mono_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(), fps=info.fps, source=info.source,
                    max_persons=info.max_persons, announce_s=self.options.announce_s, metadata=info.metadata,
                )
            )  # fmt: skip
            self.stats.starts += 1

    def publish(self, f: SourceFrame) -> None:
        """Publish one captured frame (its persons, or a gap)."""
        if f.stream not in self._info:
            raise ValueError(f"source produced a frame of undeclared stream {f.stream!r}")
        mono = f.t_mono_ns if f.t_mono_ns is not None else time.monotonic_ns()
        wall = f.t_wall_ns if f.t_wall_ns is not None else time.time_ns()
        if f.persons:
            for p in f.persons:
                try:
                    msg = FrameMessage(
                        stream=f.stream, person=p.person, seq=self._seq[f.stream], frame=f.frame,
                        pts_s=f.pts_s, t_mono_ns=mono, t_wall_ns=wall, joints=p.joints, confidence=p.confidence,
                    )  # fmt: skip
                except WireError as exc:
                    src = self._info[f.stream].source
                    raise ValueError(
                        f"{src}: frame {f.frame}, person {p.person} cannot be sent: {exc}"
                    ) from None
                self._next_seq(f.stream)
                self._send(msg)
                self.stats.persons += 1
        else:
            self._send(FrameGap(f.stream, self._next_seq(f.stream), f.frame, f.pts_s, mono, wall))
            self.stats.gaps += 1
        self.stats.frames += 1
        self._frames_of[f.stream] += 1
        if f.pose_s is not None:
            self.stats.pose_ms.append(f.pose_s * 1000.0)

    def _emit_report(self) -> None:
        s = self.stats.summary()
        log.info(
            "%d frames, %.1f fps, %d drops, %d gaps, pose %s ms",
            s["frames"], s["rate_fps"], s["drops"], s["gaps"], s["pose_ms_p50"],
        )  # fmt: skip
        if self.report is not None:
            self.report(s)

    def run(self, stop: threading.Event | None = None) -> ProducerStats:
        """Publish until the source ends, a limit is reached or ``stop`` is set."""
        stop = stop or threading.Event()
        o = self.options
        st = self.stats
        if o.wait_subscribers > 0:
            ok = self.publisher.wait_for_subscribers(o.wait_subscribers, o.wait_timeout_s, stop)
            if not ok and not stop.is_set():
                log.warning("only %d of %d subscribers after %.1f s; publishing anyway",
                            self.publisher.subscribers, o.wait_subscribers, o.wait_timeout_s)  # fmt: skip
        self.publisher.poll_subscriptions()
        t0 = time.monotonic()
        self.announce()
        last_announce = last_report = t0
        pts0: float | None = None
        reason = "eof"
        frames = self.source.frames(stop)
        try:
            for f in frames:
                if stop.is_set():
                    reason = "interrupted"
                    break
                if not self.source.live and o.speed > 0:
                    if pts0 is None:
                        pts0 = f.pts_s
                    due = t0 + (f.pts_s - pts0) / o.speed
                    delay = due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        reason = "interrupted"
                        break
                self.publish(f)
                now = time.monotonic()
                new_subs = self.publisher.poll_subscriptions()
                if new_subs or (o.announce_s > 0 and now - last_announce >= o.announce_s):
                    self.announce()
                    last_announce = now
                st.drops = self.source.drops
                st.elapsed_s = now - t0
                if o.report_s > 0 and now - last_report >= o.report_s:
                    self._emit_report()
                    last_report = now
                if o.max_frames is not None and st.frames >= o.max_frames:
                    reason = "limit"
                    break
                if o.duration_s is not None and now - t0 >= o.duration_s:
                    reason = "limit"
                    break
            else:
                if stop.is_set():
                    reason = "interrupted"
        except BaseException:
            reason = "error"
            raise
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # a generator: run its clean-up now
            st.end_reason = reason
            st.drops = self.source.drops
            st.elapsed_s = time.monotonic() - t0
            try:
                for info in self.source.streams:
                    self._send(StreamEnd(info.stream, self._next_seq(info.stream), time.monotonic_ns(),
                                         time.time_ns(), reason, self._frames_of[info.stream]))  # fmt: skip
            finally:
                self.source.close()
            self._emit_report()
        return st


__all__ = ["ProducerOptions", "ProducerStats", "Producer"]
