"""The streaming anonymizer: ``raw/<stream>`` in, ``anon/<stream>`` out.

One loop (one thread) does everything, so there are no locks and no reordering:

1. take every message already queued on the subscriber socket (validated by
   :class:`~pmr_stream.wire.subscriber.Subscriber`: bad messages, unknown streams and
   out-of-order sequence numbers are dropped and counted there);
2. push each frame into its (stream, person) ring buffer (:mod:`pmr_stream.anonymizer.window`),
   which makes one 75-frame window due per input frame;
3. run the due windows of **all** streams through the backend as one batch (split at
   ``max_batch``) when ``max_batch`` windows are due, or nothing else is queued and the
   next frame is not expected before the oldest due window has waited ``max_wait_ms``
   (the expected gap is ``1 / rate`` from the measured frame arrival rate, so a single
   30 fps stream never waits, while many streams fill their batches);
4. publish, per stream and in input order, one anonymized
   :class:`~pmr_stream.wire.schema.FrameMessage` per input frame (same ``frame``,
   ``pts_s`` and capture timestamps, ``anonymized=True``, ``model_id``), and the stream's
   start / gap / end messages rebuilt from the allow-list of :mod:`pmr_stream.wire.privacy`
   (never a copy: no raw metadata, source or session), all under the stream's keyed
   pseudonym, persons renumbered 0, 1.. by first appearance, confidence 1.0. Internal
   bookkeeping stays keyed by the raw stream id.

Sequence numbers on ``anon/`` are the service's own: each ``anon/`` stream counts what is
*published* on it, 0 at the start of each anonymized session, +1 per message (the number is
given when the message is sent). Raw numbers never reach ``anon/``. So the service can
announce to a late subscriber as producers do: when the ``anon/`` XPUB socket reports a new
subscription, every live stream it covers gets its last start again at once, under the next
number (:func:`~pmr_stream.wire.privacy.reannounce`), and nobody sees a number go backwards.

Fails closed: an output frame is built only from what the backend returned; when a
batch raises, returns the wrong shape or non-finite numbers, the frames it covered are
not published (they use no ``anon/`` sequence number) and counted under ``failed``.
Input joints are never copied into an output message.

The backend (and with it the dummy's privacy code) is made once, before the loop.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np

from pmr_stream.anonymizer.arrivals import ArrivalRate
from pmr_stream.anonymizer.heap import TRIM_AFTER, trim_heap
from pmr_stream.anonymizer.http import QUANTILES, MetricsServer, prometheus_text
from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.records import ServiceStats, _Slot, _StreamOut
from pmr_stream.anonymizer.window import Due, WindowOptions, WindowStore, center_batch
from pmr_stream.skeleton import C, J, T, median_bone_lengths, retarget_bones
from pmr_stream.stats import percentiles
from pmr_stream.wire.checks import WireError
from pmr_stream.wire.privacy import (
    StreamIds,
    anon_end,
    anon_gap,
    anon_start,
    fresh_session,
    pack_anon_frame,
    reannounce,
    service_metadata,
)
from pmr_stream.wire.schema import ANON, FrameGap, FrameMessage, Message, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher, SocketOptions
from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)

#: Streams whose lost-message count (``seq_missing``) is kept, the latest to lose any.
_MAX_LOST_STREAMS: Final[int] = 1024


class AnonymizerService:
    """Subscribe to ``raw/``, anonymize with ``backend``, publish on ``anon/``.

    Args:
        backend: anything with ``anonymize((B, 75, 25, 3)) -> (B, 75, 25, 3)`` (normalised windows).
        model_id: written into every output message.
        subscriber: a :class:`Subscriber` on the raw topics.
        publisher: a :class:`Publisher` for the anonymized topics.
        metrics: an already bound :class:`MetricsServer` to feed (default: one is made when
            ``options.metrics_port`` is set); the service does not close it.
    """

    def __init__(
        self,
        backend: Any,
        model_id: str,
        subscriber: Subscriber,
        publisher: Publisher,
        options: ServiceOptions | None = None,
        report: Callable[[dict[str, Any]], None] | None = None,
        *,
        metrics: MetricsServer | None = None,
    ) -> None:
        self.backend = backend
        self.model_id = model_id
        self.sub = subscriber
        self.pub = publisher
        self.options = options or ServiceOptions()
        self.report = report
        o = self.options
        self.windows = WindowStore(WindowOptions(policy=o.policy, max_gap=o.max_gap, idle_s=o.idle_s,
                                                 max_persons_per_stream=o.max_persons_per_stream,
                                                 max_persons=o.max_persons))  # fmt: skip
        # the subscriber holds every stream's state: it gets the service's limits and idle time
        subscriber.options = replace(subscriber.options, max_streams=o.max_streams, idle_s=o.idle_s,
                                     max_metadata_bytes=o.max_metadata_bytes, ended_grace_s=min(o.idle_s, 1.0),
                                     shard=o.shard)  # fmt: skip
        self.out: dict[str, _StreamOut] = {}
        self.due: list[Due] = []
        self.stats = ServiceStats()
        self.streams_seen = 0  # streams opened (one evicted and heard of again counts again)
        self._quiet: dict[
            str, None
        ] = {}  # streams forgotten as idle without an end, oldest first (max_streams)
        self._untrimmed = 0  # streams forgotten since the heap was last trimmed (x16)
        self._dropped_at_trim = 0  # the window store's tracks dropped then
        self.arrivals = ArrivalRate()
        if o.stream_key is None:
            log.info(
                "no stream key given: anon/ stream ids are pseudonyms under a random key of this service only"
            )
        key = o.stream_key if o.stream_key is not None else secrets.token_bytes(32)
        self.ids = StreamIds(key, o.public_stream_ids)  # raw stream id -> its anon/ id
        self.seq_missing: OrderedDict[str, int] = OrderedDict()  # anon/ id -> raw messages lost, latest last
        self.sub.on_seq_missing = self._count_lost
        self.bone_target = self._bone_target(backend) if o.bones == "dummy" else None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engine") if o.engine_thread else None
        self._inflight: tuple[list[Due], Future[Any]] | None = None
        self.metrics: MetricsServer | None = metrics  # serve() binds it first, before anything else starts
        if self.metrics is None and o.metrics_port is not None:
            self.metrics = MetricsServer(o.metrics_port, o.metrics_host)
        if self.metrics is not None:
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
            s = self.out[stream] = _StreamOut(anon_stream=self.ids.anon(stream))
            self.streams_seen += 1
            self._quiet.pop(stream, None)
        s.last_seen_ns = now
        return s

    def _control(self, s: _StreamOut, build: Callable[..., Message], session: str | None = None) -> None:
        s.slots.append(_Slot(build=build, done=True, session=session))

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
                s.persons.reset()
                s.anon_session = None
            if s.anon_session is None:
                s.anon_session = fresh_session(m.session)
            s.session = m.session
            s.ended = False
            public = s.anon_stream in self.ids.public
            meta = service_metadata(self.options.bones, self.options.policy.name, public)
            self._control(s, partial(anon_start, m, stream=s.anon_stream, session=s.anon_session,
                                     model_id=self.model_id, metadata=meta), s.anon_session)  # fmt: skip
        elif isinstance(m, FrameMessage):
            self.stats.frames_in += 1
            if not self.windows.admit(m.stream, m.person):
                return  # a new person over a person limit: refused (counted), no id, nothing owed
            slot = _Slot(src=m, stream=s.anon_stream, person=s.persons.get(m.person))
            due, flushed = self.windows.push(m.stream, m.person, m.frame, m.joints, slot, now)
            self._resolve(flushed)
            if due is None:
                return  # out of date: counted by the window store, nothing owed
            s.slots.append(slot)
            self.due.append(due)
        elif isinstance(m, FrameGap):
            self._control(s, partial(anon_gap, m, stream=s.anon_stream))
        elif isinstance(m, StreamEnd):
            self._flush_stream(m.stream)
            self._control(s, partial(anon_end, m, stream=s.anon_stream))
            s.ended = True
            s.persons.reset()  # the session is over: its fresh ids are freed
            s.anon_session = None

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
            x = center_batch(batch)
            out = np.asarray(self.backend.anonymize(x), dtype=np.float32)
            if out.shape != (len(batch), T, J, C):
                raise ValueError(f"backend returned shape {out.shape}, expected {(len(batch), T, J, C)}")
            return out, t0, time.monotonic_ns(), None
        except Exception as exc:  # noqa: BLE001 - any backend failure fails closed
            return None, t0, time.monotonic_ns(), f"{type(exc).__name__}: {exc}"

    def _complete(
        self, batch: list[Due], out: np.ndarray | None, t0: int, t1: int, error: str | None
    ) -> None:
        if error is not None:
            self.stats.failed["backend_error"] += len(batch)
            n = self.stats.failed["backend_error"]
            if n <= len(batch) * 3 or n & (n - 1) == 0:
                log.warning(
                    "backend failed on a batch of %d windows (%s): nothing published for them",
                    len(batch),
                    error,
                )
        for d in batch:
            self.stats.queue_wait_ms.append((t0 - d.t_due_ns) / 1e6)
        dt = (t1 - t0) / 1e6
        self.stats.batches += 1
        self.stats.windows += len(batch)
        self.stats.batch_sizes.append(len(batch))
        self.stats.engine_ms_per_batch.append(dt)
        self.stats.engine_ms_per_window.append(dt / len(batch))
        ok = None
        if out is not None:
            ok = np.isfinite(out).reshape(len(batch), -1).all(axis=1)  # (B,) every number of a window
            bad = len(batch) - int(np.count_nonzero(ok))
            if bad:
                self.stats.failed["non_finite"] += bad
        self._resolve(self.windows.resolve_batch(batch, out, ok))

    def _resolve(self, done: list[tuple[Any, np.ndarray | None]]) -> None:
        """Hand the network's joints to the slots of finished frames (``None``: fail closed, nothing published)."""
        if self.bone_target is not None:
            # after the window policy's blending, so what is published has exactly the dummy's bones
            ok = [i for i, (_, j) in enumerate(done) if j is not None]
            if ok:
                fixed = retarget_bones(np.stack([done[i][1] for i in ok]), self.bone_target)  # type: ignore[misc]
                for n, i in enumerate(ok):
                    done[i] = (done[i][0], fixed[n])
        for slot, joints in done:
            slot.done = True
            slot.joints = joints

    # ------------------------------------------------------------------ output

    def _build(self, slot: _Slot, seq: int) -> Message:
        """The control message (start, gap, end) of a finished slot under ``seq``."""
        assert slot.build is not None
        return slot.build(seq=seq)

    def _pack_frame(self, slot: _Slot, seq: int) -> bytes | None:
        """The packed ``anon/`` frame of a finished slot under ``seq``, or ``None`` when nothing goes out."""
        if slot.src is None or slot.joints is None:
            return None  # failed (counted where it failed)
        try:  # the allow-list: network joints, fresh person id, pseudonym, constant confidence, timing
            return pack_anon_frame(slot.src, stream=slot.stream, seq=seq, person=slot.person, joints=slot.joints,
                                   model_id=self.model_id, max_bytes=self.pub.options.max_message_bytes)  # fmt: skip
        except WireError as exc:  # e.g. coordinates out of range: fail closed
            self.stats.failed[f"bad_output_{exc.reason}"] += 1
            return None

    def _send(self, s: _StreamOut, msg: Message) -> None:
        """Publish ``msg`` (numbered ``s.seq``) and count the number as used."""
        self.pub.send(msg)
        s.seq = msg.seq + 1

    def _announce_to_new_subscriptions(self) -> None:
        """Re-send the last start of every live stream a new ``anon/`` subscription covers, at once."""
        subs = self.pub.poll_subscriptions()
        if not subs:
            return
        for s in self.out.values():
            if s.announced is not None:
                topic = f"{ANON}/{s.anon_stream}\0".encode()
                if any(topic.startswith(sub) for sub in subs):
                    self._send(s, reannounce(s.announced, seq=s.seq))
                    self.stats.announcements += 1

    def _publish_ready(self) -> None:
        self._announce_to_new_subscriptions()
        now_wall = time.time_ns()
        for s in self.out.values():
            while s.slots and s.slots[0].done:
                slot = s.slots.popleft()
                if slot.session is not None and slot.session != s.published_session:
                    s.seq = 0  # a new anonymized session numbers from 0
                if slot.build is None:  # a frame: packed straight from the allow-list's fields
                    data = self._pack_frame(slot, s.seq)
                    if data is None:
                        continue  # failed: nothing goes out for it, no number used
                    self.pub.send_raw(data)
                    s.seq += 1
                    self.stats.published_frames += 1
                    self.stats.service_latency_ms.append((now_wall - slot.src.t_wall_ns) / 1e6)  # type: ignore[union-attr]
                    continue
                msg = self._build(slot, s.seq)
                self._send(s, msg)
                self.stats.published_other += 1
                if isinstance(msg, StreamStart):
                    s.published_session, s.announced = msg.session, msg
                elif isinstance(msg, StreamEnd):
                    s.announced = None

    def _evict(self, now: int) -> None:
        """Free idle persons, ended or idle streams (here and in the subscriber), and give the memory back."""
        self._finish_inflight(block=True)
        for key in self.windows.idle(now):
            self._resolve(self.windows.drop(key))
            self.windows.counters.evicted += 1
            s_out = self.out.get(key[0])
            if s_out is not None:  # its fresh id is never handed out again; the id map stays bounded
                s_out.persons.forget(key[1])
        limit = int(self.options.idle_s * 1e9)
        for name, s in list(self.out.items()):
            if (s.ended or now - s.last_seen_ns > limit) and not s.slots and not self.windows.keys_of(name):
                del self.out[name]
                if not s.ended:  # gone quiet, not ended: --until-end waits for it (or for --duration)
                    self._quiet[name] = None
                    while len(self._quiet) > self.options.max_streams:
                        del self._quiet[next(iter(self._quiet))]
        self._untrimmed += 16 * len(self.sub.expire(now))  # a stream's state is worth about 16 person tracks
        # a trim takes milliseconds: only when megabytes were freed (tracks evicted, ended or reset)
        if self._untrimmed + self.windows.dropped - self._dropped_at_trim >= TRIM_AFTER:
            self._untrimmed, self._dropped_at_trim = 0, self.windows.dropped
            trim_heap()

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
            if (
                until_end
                and self.streams_seen
                and not self._quiet
                and all(s.ended for s in self.out.values())
            ):
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

    def _count_lost(self, stream: str, n: int) -> None:
        """The subscriber saw ``n`` raw messages of ``stream`` lost on the way: counted under the
        stream's ``anon/`` id (never the raw id), kept after the stream ends or is forgotten, for
        the :data:`_MAX_LOST_STREAMS` streams that lost messages last."""
        key = self.ids.anon(stream)
        self.seq_missing[key] = self.seq_missing.pop(key, 0) + n
        while len(self.seq_missing) > _MAX_LOST_STREAMS:
            self.seq_missing.popitem(last=False)

    def _seq_missing_by_stream(self) -> dict[str, int]:
        """Raw messages lost on the way per stream (only streams that lost any), by ``anon/`` id."""
        return dict(self.seq_missing)

    def summary(self) -> dict[str, Any]:
        """Live statistics, JSON-able."""
        s = self.stats
        w = self.windows.counters
        elapsed = max(time.monotonic() - s.t_start, 1e-9)

        def pct(name: str, samples: deque[float] | deque[int]) -> dict[str, float | None]:
            """``{name}_p50``, ``{name}_p99`` (:data:`QUANTILES`), 4 decimals, ``None`` when empty."""
            return percentiles(samples, name, QUANTILES[name], ndigits=4)

        return {
            "policy": self.options.policy.name, "max_batch": self.options.max_batch,
            "max_wait_ms": self.options.max_wait_ms, "backend": getattr(self.backend, "name", "?"),
            "model_id": self.model_id, "elapsed_s": round(elapsed, 2),
            "shard": None if self.options.shard is None else "{}/{}".format(*self.options.shard),
            "shard_skipped": self.sub.shard_skipped,
            "streams": len(self.out), "streams_seen": self.streams_seen, "persons": len(self.windows.tracks),
            "streams_tracked": len(self.sub.streams), "streams_forgotten": self.sub.forgotten,
            "refused": {**self.sub.refused, **self.windows.counters.refused},
            "frames_in": s.frames_in, "published_frames": s.published_frames, "published_other": s.published_other,
            "announcements": s.announcements,
            "failed": dict(s.failed), "out_of_date": w.out_of_date, "interpolated": w.interpolated,
            "resets": w.resets, "evicted": w.evicted, "wire_drops": dict(self.sub.drops),
            "seq_missing_total": self.sub.seq_missing, "seq_missing": self._seq_missing_by_stream(),
            "batches": s.batches, "windows": s.windows, "windows_per_s": round(s.windows / elapsed, 1),
            "batch_size_mean": round(float(np.mean(s.batch_sizes)), 2) if s.batch_sizes else None,
            **pct("batch_size", s.batch_sizes), "batch_size_max": max(s.batch_sizes) if s.batch_sizes else None,
            **pct("engine_ms_per_batch", s.engine_ms_per_batch),
            **pct("engine_ms_per_window", s.engine_ms_per_window),
            **pct("queue_wait_ms", s.queue_wait_ms), **pct("capture_to_publish_ms", s.service_latency_ms),
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
    raw_socket_options: SocketOptions | None = None,
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
    URL (when ``options.metrics_port`` is set), before ``ready``: the metrics endpoint is
    bound first, so a taken port fails (:class:`~pmr_stream.anonymizer.http.MetricsBindError`)
    before anything is announced, bound or connected.

    ``socket_options`` are the ``anon/`` publisher's (a CURVE server there admits the
    sinks), ``raw_socket_options`` the ``raw/`` subscriber's (a CURVE client of the
    producers; default: ``socket_options``). The ``anon/`` publisher is declared
    ``carries_raw=False``: it may bind any address in clear and can never send ``raw/``."""
    stop = stop or threading.Event()
    mo = options or ServiceOptions()
    metrics = MetricsServer(mo.metrics_port, mo.metrics_host) if mo.metrics_port is not None else None
    try:
        if metrics is not None and on_metrics is not None:
            on_metrics(metrics.url)
        with Publisher(anon_endpoint, socket_options, carries_raw=False) as pub:
            if ready is not None:
                ready(pub.endpoint)
            if wait_subscribers > 0 and not pub.wait_for_subscribers(wait_subscribers, wait_timeout_s, stop):
                log.warning("only %d of %d anon subscribers after %.0f s; serving anyway",
                            pub.subscribers, wait_subscribers, wait_timeout_s)  # fmt: skip
            raw_opts = socket_options if raw_socket_options is None else raw_socket_options
            with Subscriber(list(raw_endpoints), ["raw/"], raw_opts) as sub:
                svc = AnonymizerService(backend, model_id, sub, pub, options, report, metrics=metrics)
                return svc.run(stop, duration_s, until_end)
    finally:
        if metrics is not None:
            metrics.close()


__all__ = [
    "AnonymizerService",
    "ServiceStats",
    "serve",
    "prometheus_text",
]
