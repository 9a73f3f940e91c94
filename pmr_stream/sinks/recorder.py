"""The recorder: subscribe and write what arrives as pmr-stream recordings (``.npz``).

Every accepted message is kept in memory (a frame is about 400 bytes) and written
when the recorder stops: at Ctrl-C, after a duration or frame count, or when every
stream it saw has ended. Stopping first takes whatever is already queued on the
socket, so nothing the recorder received is lost; the file is written to a temporary
name and renamed, so a half-written file never takes the output's place.

One stream gives one file, exactly ``--output``. Several streams (or a producer that
restarted, i.e. a new session) give ``<output stem>.<stream>[.<n>].npz`` each.

Rows of a recording are the captured frames, in frame-number order: a frame message
fills its person's slot (``present`` true), a gap message makes a row with nobody
present, timestamps are the media times (``pts_s``). The stream's start metadata is
the recording's metadata, with a ``"wire"`` entry describing the stream.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import J
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)


@dataclass
class StreamTake:
    """Everything received of one session of one stream."""

    topic: str
    stream: str
    session: str | None
    start: StreamStart | None = None
    end: StreamEnd | None = None
    persons: dict[tuple[int, int], FrameMessage] = field(default_factory=dict)  # (frame, person) -> message
    pts: dict[int, float] = field(default_factory=dict)  # frame -> media time
    duplicates: int = 0

    def add(self, r: Received) -> None:
        m = r.message
        if r.start is not None:
            self.start = r.start
        if isinstance(m, FrameMessage):
            key = (m.frame, m.person)
            if key in self.persons:
                self.duplicates += 1
                return
            self.persons[key] = m
            self.pts.setdefault(m.frame, m.pts_s)
        elif isinstance(m, FrameGap):
            self.pts.setdefault(m.frame, m.pts_s)
        elif isinstance(m, StreamEnd):
            self.end = m

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    def to_recording(self) -> Recording:
        """The take as a :class:`~pmr_stream.formats.recording.Recording` ``(T, P, 25, 3)``."""
        frames = sorted(self.pts)
        row = {f: i for i, f in enumerate(frames)}
        declared = self.start.max_persons if self.start is not None else 1
        n_p = max([declared] + [p + 1 for _, p in self.persons])
        n_t = len(frames)
        joints = np.zeros((n_t, n_p, J, 3), np.float32)
        conf = np.zeros((n_t, n_p, J), np.float32)
        present = np.zeros((n_t, n_p), bool)
        for (f, p), m in self.persons.items():
            joints[row[f], p] = m.joints
            conf[row[f], p] = m.confidence
            present[row[f], p] = True
        ts = np.array([self.pts[f] for f in frames], np.float64)
        if n_t > 1 and np.any(np.diff(ts) < 0):
            log.warning("%s: media times go backwards in places; made non-decreasing", self.topic)
            ts = np.maximum.accumulate(ts)
        meta: dict[str, Any] = {}
        wire: dict[str, Any] = {"topic": self.topic, "stream": self.stream, "session": self.session}
        if self.start is not None:
            meta.update(self.start.metadata)
            if "pts_origin_s" in meta and isinstance(meta["pts_origin_s"], (int, float)):
                ts = ts + float(meta.pop("pts_origin_s"))
            wire.update(source=self.start.source, fps=self.start.fps, anonymized=self.start.anonymized,
                        model_id=self.start.model_id)  # fmt: skip
        wire["ended"] = self.end.reason if self.end is not None else None
        wire["duplicates"] = self.duplicates
        meta["wire"] = wire
        return Recording(joints=joints, confidence=conf, timestamps=ts, present=present, metadata=meta)


@dataclass(frozen=True)
class RecordOptions:
    """When :meth:`Recorder.run` stops (besides ``stop``): after ``duration_s`` seconds,
    after ``max_frames`` captured frames (all streams), or, with ``until_end``, once
    every stream seen has sent its end."""

    duration_s: float | None = None
    max_frames: int | None = None
    until_end: bool = False


class Recorder:
    """Collect the messages a :class:`~pmr_stream.wire.subscriber.Subscriber` accepts."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.takes: list[StreamTake] = []
        self._current: dict[str, StreamTake] = {}

    def add(self, r: Received) -> None:
        session = r.start.session if r.start is not None else None
        take = self._current.get(r.topic)
        if take is None or take.session != session:
            take = StreamTake(r.topic, r.message.stream, session)
            self._current[r.topic] = take
            self.takes.append(take)
        take.add(r)

    @property
    def frames(self) -> int:
        return sum(t.num_frames for t in self.takes)

    def run(
        self, stop: threading.Event | None = None, options: RecordOptions | None = None
    ) -> list[StreamTake]:
        """Record until ``stop`` is set or a limit of ``options`` is reached.

        Whatever was already queued on the socket when ``stop`` was set is still recorded.
        """
        o = options or RecordOptions()
        stop = stop or threading.Event()
        t_end = None if o.duration_s is None else time.monotonic() + o.duration_s
        while True:
            if stop.is_set():
                for queued in self.subscriber.drain():
                    self.add(queued)
                break
            if t_end is not None and time.monotonic() >= t_end:
                break
            r = self.subscriber.receive(0.1)
            if r is None:
                continue
            self.add(r)
            if o.max_frames is not None and self.frames >= o.max_frames:
                break
            if o.until_end and self._current and all(t.end is not None for t in self._current.values()):
                break
        return self.takes

    def save(self, output: str | os.PathLike[str]) -> list[tuple[Path, StreamTake]]:
        """Write every take with frames (see the module doc for file names); returns what was written."""
        out = Path(output)
        takes = [t for t in self.takes if t.num_frames > 0]
        written: list[tuple[Path, StreamTake]] = []
        seen: dict[str, int] = {}
        for t in takes:
            if len(takes) == 1:
                path = out
            else:
                seen[t.stream] = seen.get(t.stream, 0) + 1
                n = seen[t.stream]
                suffix = f".{t.stream}" + (f".{n}" if n > 1 else "")
                path = out.with_name(out.stem + suffix + ".npz")
            save_atomic(t.to_recording(), path)
            written.append((path, t))
            log.info("wrote %s: %d frames of %s", path, t.num_frames, t.topic)
        return written


def save_atomic(rec: Recording, path: str | os.PathLike[str]) -> Path:
    """Write ``rec`` to a temporary file beside ``path``, then rename it into place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        rec.save(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


__all__ = ["StreamTake", "RecordOptions", "Recorder", "save_atomic"]
