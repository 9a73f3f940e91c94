"""The anonymizer service with real ZeroMQ sockets on loopback (service in a thread)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.arrivals import ArrivalRate
from pmr_stream.anonymizer.http import prometheus_text
from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.service import AnonymizerService
from pmr_stream.anonymizer.window import WindowPolicy
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.skeleton import bone_lengths
from pmr_stream.wire.privacy import StreamIds
from pmr_stream.wire.schema import FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.service.conftest import (
    announce,
    collect,
    end_msg,
    frame_msg,
    running_service,
    start_msg,
    wait_connected,
)
from tests.waiting import wait_until

N = 120


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    rec = load_recording(DEMO_CLIP)
    return rec.joints[:N, 0].astype(np.float32)


def replay(pub: Publisher, stream: str, joints: np.ndarray, seq0: int = 0, session: str = "s1",
           person: int = 0, pace_s: float = 0.0, announced: bool = False) -> dict[int, FrameMessage]:  # fmt: skip
    """Send a start (unless ``announced`` already), the frames of ``joints`` and an end; returns
    the frames sent by frame number."""
    sent = {}
    if not announced:
        pub.send(start_msg(stream, seq0, session))
    seq = seq0 + 1
    for i, j in enumerate(joints):
        m = frame_msg(stream, seq, i, j, person)
        pub.send(m)
        sent[i] = m
        seq += 1
        if pace_s:
            time.sleep(pace_s)  # a live source's pace: what the service's batching reacts to
    pub.send(end_msg(stream, seq, len(joints)))
    return sent


def median_bones(x: np.ndarray) -> np.ndarray:
    return np.median(bone_lengths(x), axis=0)


@pytest.mark.parametrize(
    ("policy", "engine_thread"), [("last", False), ("delay:4", False), ("delay:4", True)]
)
def test_one_anonymized_frame_per_input_frame(
    backend: Any, clip: np.ndarray, policy: str, engine_thread: bool
) -> None:
    with Publisher("tcp://127.0.0.1:*") as raw:
        opts = ServiceOptions(policy=WindowPolicy.parse(policy), report_s=0, engine_thread=engine_thread)
        with running_service(raw.endpoint, backend, opts) as svc, \
                Subscriber(svc.anon_endpoint, ["anon/", "raw/"]) as sub:  # fmt: skip
            wait_connected(raw)
            got = announce(raw, sub, "cam1")
            sent = replay(raw, "cam1", clip, pace_s=0.001, announced=True)
            got += collect(sub)
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert all(r.topic.startswith("anon/") and r.message.anonymized for r in got)  # nothing raw on anon/
    assert isinstance(got[0].message, StreamStart) and got[0].message.model_id == "test-model"
    assert isinstance(got[-1].message, StreamEnd)
    assert [m.frame for m in frames] == sorted(sent)  # one per input frame, in order
    # the anon/ stream's own numbers: 0 at its start, +1 per message published, through the end
    assert [r.message.seq for r in got] == list(range(len(got)))
    for m in frames:
        src = sent[m.frame]
        assert (m.frame, m.t_wall_ns, m.t_mono_ns, m.pts_s) == (
            src.frame,
            src.t_wall_ns,
            src.t_mono_ns,
            src.pts_s,
        )
        assert m.model_id == "test-model"
        assert not np.allclose(m.joints, src.joints, atol=1e-3)
    out = np.stack([m.joints for m in frames])
    # every frame has the dummy's bone lengths (bones="dummy", the default), not the performer's
    dummy = backend.source.dummy_window
    want = np.median(bone_lengths(dummy), axis=0)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(want, (len(out), 24)), atol=2e-4)
    assert np.abs(median_bones(clip) - want).mean() > 0.01  # and the performer's differ
    # no visible jump: frame-to-frame motion of the output stays in the range of the input's
    step_out = np.linalg.norm(np.diff(out, axis=0), axis=-1).mean(axis=1)
    step_in = np.linalg.norm(np.diff(clip, axis=0), axis=-1).mean(axis=1)
    assert step_out.max() < 3 * step_in.max() + 0.02


class FlakyBackend:
    """Raises on every other call and returns NaN on some; otherwise a real backend."""

    name = "flaky"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.source = inner.source  # the dummy, for bones="dummy"
        self.calls = 0

    def anonymize(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls % 2 == 0:
            raise RuntimeError("injected backend failure")
        out = self.inner.anonymize(x)
        if self.calls % 5 == 0:
            out = out.copy()
            out[0, -1, 3, 0] = np.nan
        return out


@pytest.mark.parametrize("engine_thread", [False, True])
def test_backend_failures_fail_closed(backend: Any, clip: np.ndarray, engine_thread: bool) -> None:
    flaky = FlakyBackend(backend)
    with Publisher("tcp://127.0.0.1:*") as raw:
        opts = ServiceOptions(max_batch=1, report_s=0, engine_thread=engine_thread)
        with running_service(raw.endpoint, flaky, opts) as svc, \
                Subscriber(svc.anon_endpoint, [""]) as sub:  # fmt: skip
            wait_connected(raw)
            got = announce(raw, sub, "cam1")
            sent = replay(raw, "cam1", clip[:40], pace_s=0.002, announced=True)
            got += collect(sub)
        stats = svc.result
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert 0 < len(frames) < 40
    assert stats["failed"]["backend_error"] + stats["failed"].get("non_finite", 0) + len(frames) == 40
    raw_joints = [m.joints for m in sent.values()]
    for m in frames:
        assert m.anonymized and np.isfinite(m.joints).all()
        assert not any(np.allclose(m.joints, rj, atol=1e-4) for rj in raw_joints)
    assert all(r.topic.startswith("anon/") for r in got)
    # what failed used no anon/ number: a subscriber sees no loss on the wire (the frame numbers jump)
    assert [r.message.seq for r in got] == list(range(len(got))) and sub.seq_missing == 0


@pytest.mark.parametrize("engine_thread", [False, True])
def test_many_streams_batched_persons_apart(backend: Any, clip: np.ndarray, engine_thread: bool) -> None:
    with Publisher("tcp://127.0.0.1:*") as raw:
        opts = ServiceOptions(max_batch=64, max_wait_ms=5, report_s=0, engine_thread=engine_thread)
        with (
            running_service(raw.endpoint, backend, opts) as svc,
            Subscriber(svc.anon_endpoint, ["anon/"]) as sub,
        ):
            wait_connected(raw)  # the service subscribed to raw/ after it saw this anon/ subscriber
            streams = [f"s{i}" for i in range(8)]
            seqs = {s: 1 for s in streams}
            for s in streams:
                raw.send(start_msg(s, 0))
            for t in range(30):
                for s in streams:
                    for p in (0, 1):  # two persons, far apart
                        raw.send(frame_msg(s, seqs[s], t, clip[t] + np.float32(3 * p), person=p))
                        seqs[s] += 1
            for s in streams:
                raw.send(end_msg(s, seqs[s], 30))
            got = collect(sub, until_ends=8)
        stats = svc.result
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert len(frames) == 8 * 30 * 2
    assert stats["batch_size_max"] > 1  # windows of several streams went as one batch
    for m in frames:  # person 1 stays 3 m away from person 0
        assert (m.joints[:, 0].mean() > 1.5) == (m.person == 1)


def test_bad_messages_restart_and_late_subscriber(backend: Any, clip: np.ndarray) -> None:
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0.05), wait_subscribers=0) as svc:
            wait_connected(raw)
            raw.send_raw(b"raw/cam1\0garbage")
            raw.send_raw(b"raw/cam1 without a NUL")
            replay(raw, "cam1", clip[:20])  # nobody listens on anon/ yet: fine
            wait_until(lambda: svc.summary.get("published_frames") == 20 and svc.summary["published_other"] == 2,
                       what="the first session to be served (start, 20 frames, end)")  # fmt: skip
            with Subscriber(svc.anon_endpoint, ["anon/"]) as sub:  # a late subscriber
                probe = itertools.count(1)

                def served() -> bool:  # starts of another stream (no frames, no end) until one comes
                    raw.send(start_msg("probe", next(probe)))
                    return sub.receive(0.1) is not None

                wait_until(
                    served, interval_s=0, what="the late subscriber's subscription to reach the service"
                )
                # the producer restarts: a new session, seq and frame numbers from 0 again
                sent = replay(raw, "cam1", clip[:30], session="s2", pace_s=0.001)
                got = collect(sub)
        stats = svc.result
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert [m.frame for m in frames] == sorted(sent)
    # the restart is a new anon/ session numbered from 0 (the late subscriber's start included)
    cam = [r.message for r in got if r.message.stream == frames[0].stream]
    assert isinstance(cam[0], StreamStart) and [m.seq for m in cam] == list(range(len(cam)))
    assert not sub.drops.get("seq_backwards")
    assert stats["wire_drops"].get("not_msgpack", 0) + stats["wire_drops"].get("framing", 0) == 2


def test_gaps_out_of_date_and_summary(backend: Any, clip: np.ndarray) -> None:
    """Drive the service's loop directly with a duplicate frame number and a short gap."""
    with Publisher("tcp://127.0.0.1:*") as raw, Publisher("tcp://127.0.0.1:*") as anon, \
            Subscriber(raw.endpoint, ["raw/"]) as sub_raw, Subscriber(anon.endpoint, ["anon/"]) as sub_anon:  # fmt: skip
        wait_connected(raw)
        assert anon.wait_for_subscribers(1, 10)
        svc = AnonymizerService(backend, "m", sub_raw, anon, ServiceOptions(report_s=0))
        raw.send(start_msg("c", 0))
        order = [0, 1, 2, 2, 6, 7, 1]  # frame 2 twice, 3-5 missing, 1 late
        for seq, f in enumerate(order, 1):
            raw.send(frame_msg("c", seq, f, clip[f]))
        raw.send(end_msg("c", len(order) + 1, 5))

        def ended() -> bool:
            svc.step(0.05)
            return any(s.ended for s in svc.out.values())

        wait_until(ended, interval_s=0, what="the stream end to be served")
        got = collect(sub_anon)
        summary = svc.summary()
    frames = [r.message.frame for r in got if isinstance(r.message, FrameMessage)]
    assert frames == [0, 1, 2, 6, 7]
    assert summary["out_of_date"] == 2 and summary["interpolated"] == 3
    text = prometheus_text(summary)
    assert "pmr_anonymizer_published_frames 5" in text


def test_bones_model_leaves_the_network_output(clip: np.ndarray) -> None:
    """``bones="model"`` publishes the network's frames unchanged: their bones are not the dummy's.

    The paper-faithful model is used here: the default model's retarget head already emits the
    dummy's bones, so only a model whose decoder drifts from them can show the step was skipped.
    """
    from pmr_stream.assets import PAPER_MODEL
    from pmr_stream.backends import get_backend

    backend = get_backend("torch", device="cpu", model_path=str(PAPER_MODEL))
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0, bones="model")) as svc, \
                Subscriber(svc.anon_endpoint, ["anon/"]) as sub:  # fmt: skip
            wait_connected(raw)
            got = announce(raw, sub, "cam1")
            sent = replay(raw, "cam1", clip[:60], pace_s=0.001, announced=True)
            got += collect(sub)
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert len(frames) == len(sent)
    want = np.median(bone_lengths(backend.source.dummy_window), axis=0)
    assert np.abs(bone_lengths(np.stack([m.joints for m in frames])) - want).max() > 0.005
    with pytest.raises(ValueError, match="bones must be one of"):
        ServiceOptions(bones="mine")


def test_metrics_endpoint_over_http(backend: Any, clip: np.ndarray) -> None:
    """``/metrics`` (Prometheus text) and ``/stats.json`` over real HTTP while the service runs."""
    import json
    import threading
    import urllib.error
    import urllib.request

    with Publisher("tcp://127.0.0.1:*") as raw, Publisher("tcp://127.0.0.1:*") as anon, \
            Subscriber(raw.endpoint, ["raw/"]) as sub_raw:  # fmt: skip
        wait_connected(raw)
        svc = AnonymizerService(backend, "m", sub_raw, anon, ServiceOptions(report_s=0, metrics_port=0))
        assert svc.metrics is not None
        stop = threading.Event()
        th = threading.Thread(target=svc.run, args=(stop,), daemon=True)
        th.start()
        try:
            replay(raw, "cam1", clip[:40])
            url = svc.metrics.url

            def metrics_text() -> str:
                text: str = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
                return text if "pmr_anonymizer_published_frames 40" in text else ""

            text = wait_until(metrics_text, interval_s=0.3, what="/metrics to count the 40 frames")
            assert "# TYPE pmr_anonymizer_frames_in gauge" in text
            assert 'pmr_anonymizer_engine_ms_per_window{quantile="0.99"}' in text
            stats = json.loads(urllib.request.urlopen(f"{url}/stats.json", timeout=5).read())
            assert stats["frames_in"] == 40 and stats["streams_seen"] == 1
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"{url}/nothing", timeout=5)
        finally:
            stop.set()
            th.join(10)
            svc.metrics.close()


def test_arrival_rate() -> None:
    r = ArrivalRate(period_s=0.1, weight=0.5)
    assert r.expected_gap_s() == float("inf")  # nothing measured: never worth waiting
    t = 0
    for _ in range(40):  # 30 frames every 100 ms = 300 frames/s
        t += 100_000_000
        r.add(30, t)
    assert r.rate == pytest.approx(300.0, rel=1e-3)
    assert r.expected_gap_s() == pytest.approx(1 / 300, rel=1e-3)
    for _ in range(20):  # silence: the rate decays towards 0
        t += 100_000_000
        r.add(0, t)
    assert r.rate < 1.0


def test_a_slow_stream_does_not_wait_for_a_batch(backend: Any, clip: np.ndarray) -> None:
    """``max_wait_ms`` only applies while frames come faster than one per ``max_wait_ms``."""
    with Publisher("tcp://127.0.0.1:*") as raw:
        opts = ServiceOptions(max_batch=64, max_wait_ms=40, report_s=0)
        with (
            running_service(raw.endpoint, backend, opts) as svc,
            Subscriber(svc.anon_endpoint, ["anon/"]) as sub,
        ):
            wait_connected(raw)
            got = announce(raw, sub, "slow")  # the service's loop runs before the first frame
            replay(raw, "slow", clip[:40], pace_s=1 / 15, announced=True)  # 15 fps: one frame per 67 ms
            got += collect(sub)
        stats = svc.result
    assert sum(isinstance(r.message, FrameMessage) for r in got) == 40
    assert stats["batch_size_max"] == 1
    assert stats["queue_wait_ms_p99"] < 20  # a 40 ms wait for every frame would show here
    assert 5 < stats["arrival_rate_per_s"] < 30


def test_a_stalled_subscriber_does_not_hold_up_the_others(backend: Any, clip: np.ndarray) -> None:
    """One anon/ subscriber stops reading while 8 streams x 400 frames are served, far more
    than the service's queue for it (1000 messages) and the kernel buffers hold: the service
    and a second, reading subscriber go on at full speed and miss nothing. The stalled one
    loses frames; when it reads again, what it gets is consistent and every lost message is
    counted (``seq_missing``) once later messages of the stream reach it."""
    import threading

    from pmr_stream.wire.sockets import SocketOptions

    streams, n, more = [f"s{i}" for i in range(8)], 400, 10

    def tick(raw: Publisher, t: int) -> None:
        for k, s in enumerate(streams):
            raw.send(frame_msg(s, t + 1, t, clip[t % len(clip)] + np.float32(k)))
        time.sleep(0.002)  # the producers' pace (8 streams at 500 fps): the load under test

    key = bytes(32)
    anon_id = StreamIds(key).anon  # anon/ carries each stream under its keyed pseudonym
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0, stream_key=key), wait_subscribers=2,
                             socket_options=SocketOptions(kernel_buffer_bytes=16384)) as svc, \
                Subscriber(svc.anon_endpoint, ["anon/"]) as fast, \
                Subscriber(svc.anon_endpoint, ["anon/"], SocketOptions(hwm=5, kernel_buffer_bytes=4096)) as stalled:  # fmt: skip
            wait_connected(raw)
            got: list[Any] = []

            def read_all() -> None:  # the reading subscriber, in step with the service
                ends, t_end = 0, time.monotonic() + 60
                while ends < len(streams) and time.monotonic() < t_end:
                    r = fast.receive(0.1)
                    if r is not None:
                        got.append(r)
                        ends += isinstance(r.message, StreamEnd)

            reader = threading.Thread(target=read_all)
            reader.start()
            for s in streams:
                raw.send(start_msg(s, 0))
            wait_until(lambda: sum(isinstance(r.message, StreamStart) for r in got) == len(streams),
                       what="the service to serve the starts")  # its loop runs before the load comes  # fmt: skip
            t0 = time.monotonic()
            for t in range(n):  # the stalled subscriber reads nothing meanwhile
                tick(raw, t)
            wait_until(lambda: sum(isinstance(r.message, FrameMessage) for r in got) >= len(streams) * n,
                       timeout_s=30, interval_s=0.05, what="every frame on the reading subscriber (is it held up?)")  # fmt: skip
            fast_s = time.monotonic() - t0
            late = collect(stalled, until_ends=1, timeout_s=1.0)  # it reads again: what it still holds
            for t in range(n, n + more):
                tick(raw, t)
            for s in streams:
                raw.send(end_msg(s, n + more + 1, n + more))
            late += collect(stalled, until_ends=len(streams), timeout_s=20)
            reader.join(30)
            stalled_missing = sum(st.seq_missing for st in stalled.streams.values())
        stats = svc.result
    total = len(streams) * (n + more)
    frames = {
        (r.message.stream, r.message.seq): r.message for r in got if isinstance(r.message, FrameMessage)
    }
    assert len(frames) == total == stats["published_frames"]  # the reading one missed nothing
    assert fast_s < 30
    late_frames = [r.message for r in late if isinstance(r.message, FrameMessage)]
    assert len(late_frames) < len(streams) * n // 2, f"the stalled subscriber got {len(late_frames)} frames"
    for m in late_frames:  # what it did get is the same anonymized frame the reading one got, in order
        assert m.anonymized and np.array_equal(m.joints, frames[(m.stream, m.seq)].joints)
    missing = 0
    for s in streams:
        sent = [r.message.seq for r in got if r.message.stream == anon_id(s)]  # all the service published
        assert sent == list(range(n + more + 2))  # start, frames, end: the anon/ stream's own numbers
        seqs = [r.message.seq for r in late if r.message.stream == anon_id(s)]
        assert seqs == sorted(set(seqs)) and seqs[-1] == sent[-1]  # in order, up to the stream's end
        assert set(sent[-more - 1 :]) <= set(seqs)  # everything after it read again
        missing += len(sent) - len(seqs)
    assert missing > 0 and stalled_missing == missing  # every loss counted
