"""The recorder: subscribe and write what arrives as pmr-stream recordings (``.npz``).

The output is checked before the first frame (:func:`~pmr_stream.sinks.segments.check_output`:
not a directory, a folder that exists or can be made and is writable, no existing file
unless ``overwrite``) and the recorder claims ``<output>.parts/``. From then on it writes as
it goes: every ``flush_s`` (1 s) the frames that arrived since the last time become one
small segment file per take (a complete :class:`~pmr_stream.formats.recording.Recording`,
written to a temporary name and renamed, by a writer thread so the receive loop does not
wait). A crash or ``kill -9`` therefore loses at most the last ~second; the take is
rebuilt from its segments by ``pmr record --recover --output FILE``
(:func:`~pmr_stream.sinks.segments.finish_parts`). On a clean stop (Ctrl-C, a duration or
frame count, every stream ended) it first takes whatever is already queued on the socket,
writes the last segment, merges each take into its final file and removes the parts.

One take (one session of one stream) gives exactly ``--output``; several give
``<output stem>.<stream>[~<n>].npz`` (see :func:`~pmr_stream.sinks.segments.take_names`).

Rows of a recording are the captured frames, in frame-number order: a frame message
fills its person's slot (``present`` true), a gap message makes a row with nobody
present, timestamps are the media times (``pts_s``). Columns are the person ids that
occurred, in increasing order (``metadata["wire"]["person_ids"]``), at most
``max_persons`` per take: frames of further ids are refused and counted
(``refused_persons``), so a hostile id (``person=65536``) costs one column, not 65,537.
The stream's start metadata is the recording's metadata, with a ``"wire"`` entry
describing the stream.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.formats.recording import Recording
from pmr_stream.sinks.segments import (
    SEGMENT_VERSION,
    Finished,
    OutputError,
    check_output,
    claim_parts,
    finish_parts,
    fsync_dir,
    segment_path,
    take_dir,
    take_folders,
    write_recording,
)
from pmr_stream.skeleton import J
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)

#: Default cap on distinct person ids per take.
DEFAULT_MAX_PERSONS = 64
#: Seconds between checks of every take for a due segment (takes that receive check themselves).
_POLL_S = 0.25


@dataclass(frozen=True)
class WriteOptions:
    """How the recorder writes.

    Attributes:
        max_persons: distinct person ids kept per take (>= 1); frame messages of further
            ids are refused and counted (``refused_persons``).
        flush_s: seconds between segments (> 0); a crash loses at most about this much.
        overwrite: replace output files that exist (otherwise they are refused: before the
            first frame for ``--output``, at the end for the per-stream names, whose take
            then stays in the parts folder).
    """

    max_persons: int = DEFAULT_MAX_PERSONS
    flush_s: float = 1.0
    overwrite: bool = False

    def __post_init__(self) -> None:
        if type(self.max_persons) is not int or self.max_persons < 1:
            raise ValueError(f"max_persons must be a positive integer, got {self.max_persons!r}")
        if not self.flush_s > 0:
            raise ValueError(f"flush_s must be positive, got {self.flush_s!r}")


def _start_info(s: StreamStart) -> dict[str, Any]:
    return {"source": s.source, "fps": s.fps, "anonymized": s.anonymized, "model_id": s.model_id,
            "max_persons": s.max_persons, "metadata": s.metadata}  # fmt: skip


@dataclass
class StreamTake:
    """One session of one stream: its counters, and what arrived since the last segment.

    ``number`` is the take's place in the recording (from 1); ``person_ids`` the ids
    accepted so far (at most ``max_persons``); ``num_frames`` the distinct frames
    (frame messages and gaps) received.
    """

    topic: str
    stream: str
    session: str | None
    number: int = 1
    start: StreamStart | None = None
    end: StreamEnd | None = None
    person_ids: set[int] = field(default_factory=set)
    duplicates: int = 0
    refused_persons: int = 0
    segments: int = 0
    due: float = 0.0  # monotonic time at which this take's next segment is due
    _frames: set[int] = field(default_factory=set, repr=False)
    _msgs: dict[tuple[int, int], FrameMessage] = field(default_factory=dict, repr=False)  # (frame, person)
    _pts: dict[int, float] = field(default_factory=dict, repr=False)  # frame -> media time, pending
    _end_pending: bool = field(default=False, repr=False)
    _dup_pending: int = field(default=0, repr=False)
    _refused_pending: int = field(default=0, repr=False)
    _start_written: dict[str, Any] | None = field(default=None, repr=False)
    _ts_warned: bool = field(default=False, repr=False)

    def add(self, r: Received, max_persons: int = DEFAULT_MAX_PERSONS) -> None:
        m = r.message
        if r.start is not None:
            self.start = r.start
        if isinstance(m, FrameMessage):
            if m.person not in self.person_ids:
                if len(self.person_ids) >= max_persons:
                    self.refused_persons += 1
                    self._refused_pending += 1
                    if self.refused_persons == 1:
                        log.warning("%s: person %d refused: the take has %d person ids already "
                                    "(max_persons); further ones are counted",
                                    self.topic, m.person, max_persons)  # fmt: skip
                    return
                self.person_ids.add(m.person)
            key = (m.frame, m.person)
            if key in self._msgs:
                self.duplicates += 1
                self._dup_pending += 1
                return
            self._msgs[key] = m
            self._pts.setdefault(m.frame, m.pts_s)
            self._frames.add(m.frame)
        elif isinstance(m, FrameGap):
            self._pts.setdefault(m.frame, m.pts_s)
            self._frames.add(m.frame)
        elif isinstance(m, StreamEnd):
            self.end = m
            self._end_pending = True

    @property
    def num_frames(self) -> int:
        return len(self._frames)

    @property
    def pending(self) -> bool:
        """Something arrived that is not in a segment yet (an end only counts once frames were)."""
        return bool(self._pts) or (bool(self._frames) and (self._end_pending or self._refused_pending > 0))

    def take_segment(self) -> Recording:
        """What arrived since the last segment as a segment :class:`Recording`; resets it.

        Rows are the pending frames in increasing order, columns the person ids among them.
        """
        frames = sorted(self._pts)
        ids = sorted({p for _, p in self._msgs})
        row = {f: i for i, f in enumerate(frames)}
        col = {p: i for i, p in enumerate(ids)}
        n_t, n_p = len(frames), len(ids)
        joints = np.zeros((n_t, n_p, J, 3), np.float32)
        conf = np.zeros((n_t, n_p, J), np.float32)
        present = np.zeros((n_t, n_p), bool)
        for (f, p), m in self._msgs.items():
            joints[row[f], col[p]] = m.joints
            conf[row[f], col[p]] = m.confidence
            present[row[f], col[p]] = True
        ts = np.array([self._pts[f] for f in frames], np.float64)
        if n_t > 1 and np.any(np.diff(ts) < 0):
            if not self._ts_warned:
                log.warning("%s: media times go backwards in places; made non-decreasing", self.topic)
                self._ts_warned = True
            ts = np.maximum.accumulate(ts)
        self.segments += 1
        info = {
            "version": SEGMENT_VERSION, "take": self.number, "index": self.segments, "topic": self.topic,
            "stream": self.stream, "session": self.session, "frames": frames, "person_ids": ids,
            "duplicates": self._dup_pending, "refused_persons": self._refused_pending,
            "ended": self.end.reason if self.end is not None else None,
        }  # fmt: skip
        meta: dict[str, Any] = {"pmr_segment": info}
        if self.start is not None:
            start = _start_info(self.start)
            if start != self._start_written:
                meta["start"] = start
                self._start_written = start
        self._msgs, self._pts = {}, {}
        self._end_pending, self._dup_pending, self._refused_pending = False, 0, 0
        return Recording(joints=joints, confidence=conf, timestamps=ts, present=present, metadata=meta)


class _SegmentWriter:
    """A thread that writes segments in order; failed writes are kept for another try."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Path, Recording] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.failed: list[tuple[Path, Recording]] = []
        self.last_error: str | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._loop, name="pmr-record-writer", daemon=True)
        self._thread.start()

    def submit(self, path: Path, rec: Recording) -> None:
        with self._lock:
            retry, self.failed = self.failed, []
        for job in retry:
            self._jobs.put(job)
        self._jobs.put((path, rec))

    def _write(self, path: Path, rec: Recording) -> bool:
        try:
            if not path.parent.is_dir():
                path.parent.mkdir()
                fsync_dir(path.parent.parent)
            write_recording(rec, path)
        except (OSError, ValueError) as exc:
            with self._lock:
                self.failed.append((path, rec))
                self.last_error = f"{path}: {exc}"
            log.warning("could not write segment %s (%s); will try again", path, exc)
            return False
        self.written += 1
        return True

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._write(*job)

    def close(self) -> None:
        """Write everything submitted (one more try for what failed); then stop the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        with self._lock:
            retry, self.failed = self.failed, []
        for job in retry:
            self._write(*job)


@dataclass(frozen=True)
class RecordOptions:
    """When :meth:`Recorder.run` stops (besides ``stop``): after ``duration_s`` seconds,
    after ``max_frames`` captured frames (all streams), or, with ``until_end``, once
    every stream seen has sent its end."""

    duration_s: float | None = None
    max_frames: int | None = None
    until_end: bool = False


class Recorder:
    """Collect the messages a :class:`~pmr_stream.wire.subscriber.Subscriber` accepts and
    write them as they come (see the module doc).

    Args:
        subscriber: where the messages come from.
        output: the ``.npz`` to write; checked here, before anything is received, and its
            ``<output>.parts/`` folder claimed (:class:`~pmr_stream.sinks.segments.OutputError`,
            a ``ValueError``, says why not). ``None``: segments go to a private temporary
            folder and :meth:`save` must name the output.
        options: the person cap, the segment interval, overwriting.

    Use as a context manager (or call :meth:`save` / :meth:`close`): leaving without
    :meth:`save` writes what is pending as segments and leaves them for recovery.
    """

    def __init__(
        self,
        subscriber: Subscriber,
        output: str | os.PathLike[str] | None = None,
        options: WriteOptions | None = None,
    ) -> None:
        self.subscriber = subscriber
        self.options = options or WriteOptions()
        self.output: Path | None = None
        if output is not None:
            self.output = check_output(output, overwrite=self.options.overwrite)
            self.parts = claim_parts(self.output)
        else:
            self.parts = Path(tempfile.mkdtemp(prefix="pmr-record-"))
        self.takes: list[StreamTake] = []
        self.kept: list[Finished] = []  # takes that save() could not write (still in the parts folder)
        self._current: dict[str, StreamTake] = {}
        self._writer: _SegmentWriter | None = _SegmentWriter()
        self._next_poll = time.monotonic() + _POLL_S

    # ------------------------------------------------------------------ receiving

    def add(self, r: Received) -> None:
        session = r.start.session if r.start is not None else None
        take = self._current.get(r.topic)
        if take is None or take.session != session:
            take = StreamTake(r.topic, r.message.stream, session, number=len(self.takes) + 1)
            # Takes are due at staggered times (golden-ratio offsets within the interval), so
            # 60 streams give a small segment every ~17 ms, not 60 at once every second: a
            # burst would hold up the receive loop and show as latency.
            take.due = time.monotonic() + self.options.flush_s * ((take.number * 0.6180339887) % 1.0)
            self._current[r.topic] = take
            self.takes.append(take)
        take.add(r, self.options.max_persons)
        now = time.monotonic()
        if now >= take.due:
            self._flush_take(take, now)
        if now >= self._next_poll:
            self.poll()

    def poll(self) -> None:
        """Write a segment of every take with news whose ``flush_s`` interval has passed."""
        now = time.monotonic()
        self._next_poll = now + _POLL_S
        for take in self.takes:
            if now >= take.due:
                self._flush_take(take, now)

    def _flush_take(self, take: StreamTake, now: float) -> None:
        take.due = now + self.options.flush_s
        if take.pending:
            if self._writer is None:
                raise RuntimeError("the recorder is closed")
            rec = take.take_segment()  # counts the segment: its path comes after
            self._writer.submit(segment_path(self.parts, take.number, take.segments), rec)

    def flush(self) -> int:
        """Hand a segment of every take with news to the writer now; returns how many."""
        if self._writer is None:
            raise RuntimeError("the recorder is closed")
        now = time.monotonic()
        n = 0
        for take in self.takes:
            n += take.pending
            self._flush_take(take, now)
        return n

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
                self.poll()
                continue
            self.add(r)
            if o.max_frames is not None and self.frames >= o.max_frames:
                break
            if o.until_end and self._current and all(t.end is not None for t in self._current.values()):
                break
        return self.takes

    # ------------------------------------------------------------------ writing

    def close(self) -> None:
        """Write what is pending as segments and stop the writer (idempotent). The parts
        folder stays when it holds a take (for :meth:`save` or recovery), else it goes."""
        if self._writer is None:
            return
        self.flush()
        writer, self._writer = self._writer, None
        writer.close()
        if writer.failed:
            raise OutputError(
                f"cannot write the segments in {self.parts} ({writer.last_error}); "
                f"{len(writer.failed)} segment(s) of the last seconds are lost"
            )
        if self.parts.is_dir() and not take_folders(self.parts):
            shutil.rmtree(self.parts, ignore_errors=True)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, output: str | os.PathLike[str] | None = None) -> list[tuple[Path, StreamTake]]:
        """Stop, merge every take with frames into its final file, remove the parts.

        Returns what was written. A take that cannot be written (its per-stream file exists
        without ``overwrite``, a write error) stays in the parts folder and is listed in
        :attr:`kept`, with the reason and the file it was meant for.
        """
        if output is not None:
            if self.output is None:
                self.output = check_output(output, overwrite=self.options.overwrite)
            elif Path(output) != self.output:
                raise ValueError(f"this recorder writes {self.output}, not {output}")
        if self.output is None:
            raise ValueError("Recorder.save needs the output file (none was given)")
        self.close()
        if not self.parts.is_dir():
            return []
        done = finish_parts(self.output, overwrite=self.options.overwrite, parts=self.parts)
        by_folder = {take_dir(self.parts, t.number).name: t for t in self.takes}
        written: list[tuple[Path, StreamTake]] = []
        for f in done:
            if f.error is not None:
                self.kept.append(f)
                log.error("%s not written: %s", f.path, f.error)
                continue
            take = by_folder.get(f.summary.folder.name)
            if take is not None:
                take.duplicates = f.summary.duplicates
                written.append((f.path, take))
        return written

    def stats(self) -> dict[str, Any]:
        """JSON-able counters: takes, frames, segments written, duplicates, and the frame
        messages refused over the person cap per topic (``refused_persons``)."""
        return {
            "takes": len(self.takes),
            "frames": self.frames,
            "segments": sum(t.segments for t in self.takes),
            "duplicates": sum(t.duplicates for t in self.takes),
            "max_persons": self.options.max_persons,
            "refused_persons": {t.topic: t.refused_persons for t in self.takes if t.refused_persons},
        }


def save_atomic(rec: Recording, path: str | os.PathLike[str]) -> Path:
    """Write ``rec`` to a temporary file beside ``path``, then rename it into place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_recording(rec, p)


__all__ = ["DEFAULT_MAX_PERSONS", "WriteOptions", "StreamTake", "RecordOptions", "Recorder", "save_atomic"]
