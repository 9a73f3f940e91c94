"""The streaming anonymizer: ``raw/<stream>`` in, ``anon/<stream>`` out.

One loop (one thread) does everything, so there are no locks and no reordering:

1. take every message already queued on the subscriber socket (validated by
   :class:`~pmr_stream.wire.subscriber.Subscriber`: bad messages, unknown streams and
   out-of-order sequence numbers are dropped and counted there);
2. push each frame into its (stream, person) ring buffer (:mod:`pmr_stream.window`),
   which makes one 75-frame window due per input frame;
3. run the due windows of **all** streams through the backend as one batch (split at
   ``max_batch``) when ``max_batch`` windows are due, or nothing else is queued and the
   next frame is not expected before the oldest due window has waited ``max_wait_ms``
   (the expected gap is ``1 / rate`` from the measured frame arrival rate, so a single
   30 fps stream never waits, while many streams fill their batches);
4. publish, per stream and in sequence order, one anonymized
   :class:`~pmr_stream.wire.schema.FrameMessage` per input frame (same ``seq``,
   ``frame``, ``pts_s`` and capture timestamps, ``anonymized=True``, ``model_id``), and
   the stream's start / gap / end messages re-labelled as anonymized.

Fails closed: an output frame is built only from what the backend returned; when a
batch raises, returns the wrong shape or non-finite numbers, the frames it covered are
not published (their sequence numbers are skipped) and counted under ``failed``.
Input joints are never copied into an output message.

The backend (and with it the dummy's privacy code) is made once, before the loop.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np

from pmr_stream.metrics_http import MetricsServer, prometheus_text
from pmr_stream.skeleton import C, J, T, median_bone_lengths, retarget_bones
from pmr_stream.window import Due, WindowOptions, WindowPolicy, WindowStore
from pmr_stream.wire.schema import FrameGap, FrameMessage, Message, StreamEnd, StreamStart, WireError
from pmr_stream.wire.sockets import Publisher, SocketOptions
from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)

#: How output bones are sized: the dummy's lengths, or whatever the network gave.
BONE_MODES: Final[tuple[str, ...]] = ("dummy", "model")
#: Samples kept for the latency / batch percentiles.
_SAMPLES: Final[int] = 20000


@dataclass(frozen=True)
class ServiceOptions:
    """Options of :class:`AnonymizerService`.

    Attributes:
        policy: window policy (``last`` or ``delay:N``, see :mod:`pmr_stream.window`).
        max_batch: most windows per engine call.
        max_wait_ms: longest a due window waits for others to join its batch. The service
            waits only while frames arrive faster than one per ``max_wait_ms`` (measured
            rate), so at low rates nothing waits.
        max_gap: missing frames of a person bridged by interpolation; longer gaps reset it.
        idle_s: persons and streams not heard of for this long are evicted.
        report_s: seconds between stats lines (0: none).
        stats_json: also write the stats to this file at each report and at the end.
        metrics_port: serve ``/metrics`` (Prometheus text) and ``/stats.json`` over HTTP on
            this port (0: a free port; ``None``: no endpoint), refreshed every second.
        metrics_host: the address the endpoint binds (default loopback only).
        bones: ``"dummy"`` (default): every output frame's bones are set to the dummy's
            median lengths by forward kinematics (directions kept), so no residual of the
            person's build survives the network's imperfect retargeting; ``"model"``: the
            network's output as it is.
    """

    policy: WindowPolicy = field(default_factory=WindowPolicy)
    max_batch: int = 128
    max_wait_ms: float = 5.0
    max_gap: int = 10
    idle_s: float = 5.0
    report_s: float = 5.0
    stats_json: Path | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    bones: str = "dummy"
    engine_thread: bool = False

    def __post_init__(self) -> None:
        if self.bones not in BONE_MODES:
            raise ValueError(f"bones must be one of {', '.join(BONE_MODES)}, got {self.bones!r}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


@dataclass
class _Slot:
    """One message owed to ``anon/<stream>``, in input order."""

    msg: Message | None = None
    src: FrameMessage | None = None  # the input frame (only its metadata is used)
    done: bool = False


@dataclass
class _StreamOut:
    slots: deque[_Slot] = field(default_factory=deque)
    last_seen_ns: int = 0
    ended: bool = False
    session: str | None = None


@dataclass
class ServiceStats:
    frames_in: int = 0
    published_frames: int = 0
    published_other: int = 0
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


class ArrivalRate:
    """Frames per second arriving, smoothed (exponential, updated every ``period_s``)."""

    def __init__(self, period_s: float = 0.1, weight: float = 0.3) -> None:
        self.period_ns = int(period_s * 1e9)
        self.weight = weight
        self.rate = 0.0
        self._count = 0
        self._t0: int | None = None

    def add(self, n: int, now_ns: int) -> None:
        """Count ``n`` frames received by monotonic time ``now_ns``."""
        if self._t0 is None:
            self._t0 = now_ns
        self._count += n
        dt = now_ns - self._t0
        if dt >= self.period_ns:
            self.rate += self.weight * (self._count * 1e9 / dt - self.rate)
            self._count, self._t0 = 0, now_ns

    def expected_gap_s(self) -> float:
        """Seconds until the next frame is expected (``inf`` before any rate is known)."""
        return 1.0 / self.rate if self.rate > 0 else float("inf")


def _pct(values: Sequence[float] | deque[float], qs: Sequence[float] = (50, 99)) -> list[float | None]:
    if not values:
        return [None] * len(qs)
    a = np.asarray(values, dtype=np.float64)
    return [round(float(x), 4) for x in np.percentile(a, list(qs))]


class AnonymizerService:
    """Subscribe to ``raw/``, anonymize with ``backend``, publish on ``anon/``.

    Args:
        backend: anything with ``anonymize((B, 75, 25, 3)) -> (B, 75, 25, 3)`` (normalised windows).
        model_id: written into every output message.
        subscriber: a :class:`Subscriber` on the raw topics.
        publisher: a :class:`Publisher` for the anonymized topics.
    """

    def __init__(
        self,
        backend: Any,
        model_id: str,
        subscriber: Subscriber,
        publisher: Publisher,
        options: ServiceOptions | None = None,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.backend = backend
        self.model_id = model_id
        self.sub = subscriber
        self.pub = publisher
        self.options = options or ServiceOptions()
        self.report = report
        o = self.options
        self.windows = WindowStore(WindowOptions(policy=o.policy, max_gap=o.max_gap, idle_s=o.idle_s))
        self.out: dict[str, _StreamOut] = {}
        self.due: list[Due] = []
        self.stats = ServiceStats()
        self.streams_seen: set[str] = set()
        self.arrivals = ArrivalRate()
        self.bone_target = self._bone_target(backend) if o.bones == "dummy" else None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engine") if o.engine_thread else None
        self._inflight: tuple[list[Due], Future[Any]] | None = None
        self.metrics: MetricsServer | None = None
        if o.metrics_port is not None:
            self.metrics = MetricsServer(o.metrics_port, o.metrics_host)
            self.metrics.update(self.summary())

    @staticmethod
    def _bone_target(backend: Any) -> np.ndarray:
        """The dummy's median bone lengths ``(24,)`` metres, from the backend's model source."""
        window = getattr(getattr(backend, "source", None), "dummy_window", None)
        if window is None:
            raise ValueError(f"bones='dummy' needs the dummy: backend {getattr(backend, 'name', backend)!r} has no "
                             "source.dummy_window (use a pmr_stream.backends backend, or bones='model')")  # fmt: skip
        return median_bone_lengths(window)

    # ------------------------------------------------------------------ input

    def _stream(self, stream: str, now: int) -> _StreamOut:
        s = self.out.get(stream)
        if s is None:
            s = self.out[stream] = _StreamOut()
            self.streams_seen.add(stream)
        s.last_seen_ns = now
        return s

    def _control(self, s: _StreamOut, msg: Message) -> None:
        s.slots.append(_Slot(msg=msg, done=True))

    def take(self, r: Received) -> None:
        """Handle one accepted raw message."""
        m = r.message
        if m.anonymized:  # never re-anonymize (or forward) something off an anon topic
            self.stats.failed["not_raw"] += 1
            return
        now = r.t_recv_mono_ns
        s = self._stream(m.stream, now)
        if isinstance(m, StreamStart):
            if s.session is not None and m.session != s.session:  # a restarted producer: start afresh
                self._flush_stream(m.stream)
            s.session = m.session
            s.ended = False
            self._control(s, replace(m, anonymized=True, model_id=self.model_id))
        elif isinstance(m, FrameMessage):
            self.stats.frames_in += 1
            slot = _Slot(src=m)
            due, flushed = self.windows.push(m.stream, m.person, m.frame, m.joints, slot, now)
            self._resolve(flushed)
            if due is None:
                return  # out of date: counted by the window store, nothing owed
            s.slots.append(slot)
            self.due.append(due)
        elif isinstance(m, FrameGap):
            self._control(s, replace(m, anonymized=True))
        elif isinstance(m, StreamEnd):
            self._flush_stream(m.stream)
            self._control(s, replace(m, anonymized=True))
            s.ended = True

    def _flush_stream(self, stream: str) -> None:
        self._run_due()  # windows of this stream already due go first
        for key in self.windows.keys_of(stream):
            self._resolve(self.windows.drop(key))

    # ------------------------------------------------------------------ engine

    def _run_due(self) -> None:
        """Run every due window now (the in-flight batch, if any, is finished first)."""
        self._finish_inflight(block=True)
        while self.due:
            batch, self.due = self.due[: self.options.max_batch], self.due[self.options.max_batch :]
            t0 = time.monotonic_ns()
            self._complete(batch, *self._engine(batch, t0))

    def _dispatch(self) -> None:
        """Engine thread: collect a finished batch, and hand the next due windows to the thread."""
        self._finish_inflight(block=False)
        if self._inflight is None and self.due and self._executor is not None:
            batch, self.due = self.due[: self.options.max_batch], self.due[self.options.max_batch :]
            t0 = time.monotonic_ns()
            self._inflight = (batch, self._executor.submit(self._engine, batch, t0))

    def _finish_inflight(self, block: bool) -> None:
        if self._inflight is None or (not block and not self._inflight[1].done()):
            return
        batch, fut = self._inflight
        self._inflight = None
        self._complete(batch, *fut.result())  # _engine never raises: failures come back as out=None

    def _engine(self, batch: list[Due], t0: int) -> tuple[np.ndarray | None, int, int, str | None]:
        """Run one batch: ``(output or None, t0, t1, error)``. Safe to call from the engine thread."""
        try:
            x = np.stack([d.window for d in batch]).astype(np.float32, copy=False)
            out = np.asarray(self.backend.anonymize(x), dtype=np.float32)
            if out.shape != (len(batch), T, J, C):
                raise ValueError(f"backend returned shape {out.shape}, expected {(len(batch), T, J, C)}")
            return out, t0, time.monotonic_ns(), None
        except Exception as exc:  # noqa: BLE001 - any backend failure fails closed
            return None, t0, time.monotonic_ns(), f"{type(exc).__name__}: {exc}"

    def _complete(self, batch: list[Due], out: np.ndarray | None, t0: int, t1: int, error: str | None) -> None:
        if error is not None:
            self.stats.failed["backend_error"] += len(batch)
            n = self.stats.failed["backend_error"]
            if n <= len(batch) * 3 or n & (n - 1) == 0:
                log.warning("backend failed on a batch of %d windows (%s): nothing published for them", len(batch), error)
        for d in batch:
            self.stats.queue_wait_ms.append((t0 - d.t_due_ns) / 1e6)
        dt = (t1 - t0) / 1e6
        self.stats.batches += 1
        self.stats.windows += len(batch)
        self.stats.batch_sizes.append(len(batch))
        self.stats.engine_ms_per_batch.append(dt)
        self.stats.engine_ms_per_window.append(dt / len(batch))
        done: list[tuple[Any, np.ndarray | None]] = []
        for i, d in enumerate(batch):
            res = None
            if out is not None:
                if np.isfinite(out[i]).all():
                    res = out[i]
                else:
                    self.stats.failed["non_finite"] += 1
            done += self.windows.resolve(d, res)
        self._resolve(done)

    def _resolve(self, done: list[tuple[Any, np.ndarray | None]]) -> None:
        """Build the output messages of finished frames (``None``: fail closed, nothing published)."""
        if self.bone_target is not None:
            # after the window policy's blending, so what is published has exactly the dummy's bones
            ok = [i for i, (_, j) in enumerate(done) if j is not None]
            if ok:
                fixed = retarget_bones(np.stack([done[i][1] for i in ok]), self.bone_target)  # type: ignore[misc]
                for n, i in enumerate(ok):
                    done[i] = (done[i][0], fixed[n])
        for slot, joints in done:
            src = slot.src
            slot.done = True
            if joints is None or src is None:
                continue
            try:
                slot.msg = FrameMessage(
                    stream=src.stream, person=src.person, seq=src.seq, frame=src.frame, pts_s=src.pts_s,
                    t_mono_ns=src.t_mono_ns, t_wall_ns=src.t_wall_ns, joints=joints, confidence=src.confidence,
                    layout=src.layout, anonymized=True, model_id=self.model_id,
                )  # fmt: skip
            except WireError as exc:  # e.g. coordinates out of range: fail closed
                self.stats.failed[f"bad_output_{exc.reason}"] += 1

    # ------------------------------------------------------------------ output

    def _publish_ready(self) -> None:
        now_wall = time.time_ns()
        for s in self.out.values():
            while s.slots and s.slots[0].done:
                slot = s.slots.popleft()
                if slot.msg is None:
                    continue  # failed: nothing goes out for it
                self.pub.send(slot.msg)
                if isinstance(slot.msg, FrameMessage):
                    self.stats.published_frames += 1
                    self.stats.service_latency_ms.append((now_wall - slot.msg.t_wall_ns) / 1e6)
                else:
                    self.stats.published_other += 1

    def _evict(self, now: int) -> None:
        self._finish_inflight(block=True)
        for key in self.windows.idle(now):
            self._resolve(self.windows.drop(key))
            self.windows.counters.evicted += 1
        limit = int(self.options.idle_s * 1e9)
        for name, s in list(self.out.items()):
            if (s.ended or now - s.last_seen_ns > limit) and not s.slots and not self.windows.keys_of(name):
                del self.out[name]

    # ------------------------------------------------------------------ loop

    def step(self, poll_s: float = 0.05) -> int:
        """Receive what is queued (waiting up to ``poll_s`` for the first message), run, publish."""
        got = counted = 0
        run = self._dispatch if self._executor is not None else self._run_due
        if self._inflight is not None:
            poll_s = min(poll_s, 0.0002)  # a batch is in the engine thread: come back for it soon
        r = self.sub.receive(poll_s)
        while r is not None:
            self.take(r)
            got += 1
            if len(self.due) >= self.options.max_batch:
                run()
                self._publish_ready()
            r = self.sub.receive(0) if got < 100000 else None
            if r is None and self.due and self.options.max_wait_ms > 0:
                now = time.monotonic_ns()
                self.arrivals.add(got - counted, now)
                counted = got
                left = self.options.max_wait_ms / 1e3 - (now - self.due[0].t_due_ns) / 1e9
                if left > 0 and self.arrivals.expected_gap_s() < left:  # more is likely to come in time
                    r = self.sub.receive(left)
        self.arrivals.add(got - counted, time.monotonic_ns())
        self.stats.max_queue = max(self.stats.max_queue, len(self.due))
        run()
        self._publish_ready()
        return got

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None,
            until_end: bool = False) -> dict[str, Any]:  # fmt: skip
        """Serve until ``stop``, ``duration_s``, or (``until_end``) every stream seen has ended."""
        stop = stop or threading.Event()
        t_end = None if duration_s is None else time.monotonic() + duration_s
        next_report = time.monotonic() + self.options.report_s if self.options.report_s > 0 else None
        next_evict = time.monotonic() + 1.0
        next_metrics = time.monotonic() + 1.0
        while not stop.is_set():
            if t_end is not None and time.monotonic() >= t_end:
                break
            self.step()
            now = time.monotonic()
            if now >= next_evict:
                self._evict(time.monotonic_ns())
                next_evict = now + 1.0
            if self.metrics is not None and now >= next_metrics:
                self.metrics.update(self.summary())
                next_metrics = now + 1.0
            if next_report is not None and now >= next_report:
                self._emit()
                next_report = now + self.options.report_s
            if until_end and self.streams_seen and all(s.ended for s in self.out.values()):
                break
        self._run_due()
        for name in list(self.out):
            self._flush_stream(name)
        self._publish_ready()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        return self._emit()

    def _emit(self) -> dict[str, Any]:
        d = self.summary()
        if self.metrics is not None:
            self.metrics.update(d)
        if self.report is not None:
            self.report(d)
        if self.options.stats_json is not None:
            p = Path(self.options.stats_json)
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_text(json.dumps(d, indent=1))
            tmp.replace(p)
        return d

    def summary(self) -> dict[str, Any]:
        """Live statistics, JSON-able."""
        s = self.stats
        w = self.windows.counters
        elapsed = max(time.monotonic() - s.t_start, 1e-9)
        return {
            "policy": self.options.policy.name, "max_batch": self.options.max_batch,
            "max_wait_ms": self.options.max_wait_ms, "backend": getattr(self.backend, "name", "?"),
            "model_id": self.model_id, "elapsed_s": round(elapsed, 2),
            "streams": len(self.out), "streams_seen": len(self.streams_seen), "persons": len(self.windows.tracks),
            "frames_in": s.frames_in, "published_frames": s.published_frames, "published_other": s.published_other,
            "failed": dict(s.failed), "out_of_date": w.out_of_date, "interpolated": w.interpolated,
            "resets": w.resets, "evicted": w.evicted, "wire_drops": dict(self.sub.drops),
            "batches": s.batches, "windows": s.windows, "windows_per_s": round(s.windows / elapsed, 1),
            "batch_size_mean": round(float(np.mean(s.batch_sizes)), 2) if s.batch_sizes else None,
            "batch_size_p50_p99_max": [*_pct(s.batch_sizes), max(s.batch_sizes) if s.batch_sizes else None],
            "engine_ms_per_batch_p50_p99": _pct(s.engine_ms_per_batch),
            "engine_ms_per_window_p50_p99": _pct(s.engine_ms_per_window),
            "queue_wait_ms_p50_p99": _pct(s.queue_wait_ms),
            "capture_to_publish_ms_p50_p99": _pct(s.service_latency_ms),
            "max_queue": s.max_queue, "arrival_rate_per_s": round(self.arrivals.rate, 1),
        }  # fmt: skip


def serve(
    raw_endpoints: Sequence[str],
    anon_endpoint: str,
    backend: Any,
    model_id: str,
    options: ServiceOptions | None = None,
    socket_options: SocketOptions | None = None,
    *,
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    until_end: bool = False,
    wait_subscribers: int = 0,
    wait_timeout_s: float = 30.0,
    report: Callable[[dict[str, Any]], None] | None = None,
    ready: Callable[[str], None] | None = None,
    on_metrics: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Bind ``anon_endpoint``, optionally wait for its subscribers, connect to ``raw_endpoints`` and serve.

    ``ready`` gets the bound ``anon/`` endpoint; ``on_metrics`` the metrics endpoint's base
    URL (when ``options.metrics_port`` is set)."""
    stop = stop or threading.Event()
    with Publisher(anon_endpoint, socket_options) as pub:
        if ready is not None:
            ready(pub.endpoint)
        if wait_subscribers > 0 and not pub.wait_for_subscribers(wait_subscribers, wait_timeout_s, stop):
            log.warning("only %d of %d anon subscribers after %.0f s; serving anyway",
                        pub.subscribers, wait_subscribers, wait_timeout_s)  # fmt: skip
        with Subscriber(list(raw_endpoints), ["raw/"], socket_options) as sub:
            svc = AnonymizerService(backend, model_id, sub, pub, options, report)
            try:
                if svc.metrics is not None and on_metrics is not None:
                    on_metrics(svc.metrics.url)
                return svc.run(stop, duration_s, until_end)
            finally:
                if svc.metrics is not None:
                    svc.metrics.close()


__all__ = ["BONE_MODES", "ArrivalRate", "ServiceOptions", "AnonymizerService", "ServiceStats", "serve", "prometheus_text"]
