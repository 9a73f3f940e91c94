"""The producer loop: source specs, announcements for late subscribers, stats, stopping cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from pmr_stream.capture.producer import Producer, ProducerOptions, ProducerStats
from pmr_stream.capture.replay import RecordingReplay
from pmr_stream.capture.source import SourceFrame
from pmr_stream.capture.sources import SourceSpec, default_stream_id, open_source, parse_source
from pmr_stream.capture.synthetic import SyntheticSource
from pmr_stream.formats.recording import Recording
from pmr_stream.wire.schema import FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Received, Subscriber
from tests.waiting import wait_until

TCP_ANY = "tcp://127.0.0.1:*"


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("replay:a/b.skeleton", SourceSpec("replay", "a/b.skeleton")),
        ("kinect:a/b.skeleton", SourceSpec("replay", "a/b.skeleton")),  # the alias
        ("video:C:/x.avi", SourceSpec("video", "C:/x.avi")),
        ("webcam:0", SourceSpec("webcam", "0")),
        ("webcam", SourceSpec("webcam", "0")),
        ("synthetic", SourceSpec("synthetic", "1")),
        ("synthetic:4", SourceSpec("synthetic", "4")),
    ],
)
def test_parse_source(spec: str, expected: SourceSpec) -> None:
    assert parse_source(spec) == expected


@pytest.mark.parametrize(
    "spec,match",
    [
        ("kinect", "needs a file"),
        ("rtsp:x", "unknown source"),
        ("webcam:front", "index"),
        ("synthetic:0", "between 1"),
    ],
)
def test_bad_source_specs(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_source(spec)


def test_default_stream_ids() -> None:
    assert (
        default_stream_id(parse_source("kinect:/x/S001C001P001R001A001.skeleton")) == "S001C001P001R001A001"
    )
    assert default_stream_id(parse_source("video:/x/my clip (1).avi")) == "my_clip__1_"
    assert default_stream_id(parse_source("webcam:2")) == "webcam2"


def _run_in_thread(
    producer: Producer, stop: threading.Event | None = None
) -> tuple[threading.Thread, list[ProducerStats]]:
    out: list[ProducerStats] = []
    t = threading.Thread(target=lambda: out.append(producer.run(stop)))
    t.start()
    return t, out


def test_synthetic_streams_and_stats() -> None:
    src = open_source("synthetic:3", stream="load")
    assert isinstance(src, SyntheticSource)
    assert [s.stream for s in src.streams] == ["load-0", "load-1", "load-2"]
    reports: list[dict[str, object]] = []
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        p = Producer(
            src,
            pub,
            ProducerOptions(speed=0, max_frames=90, wait_subscribers=1, report_s=0),
            report=reports.append,
        )
        t, out = _run_in_thread(p)
        got: list[Received] = []
        ends = 0
        for r in sub.iter(duration_s=10):
            got.append(r)
            ends += isinstance(r.message, StreamEnd)
            if ends == 3:
                break
        t.join(20)
    stats = out[0]
    assert stats.frames == 90 and stats.persons == 90 and stats.end_reason == "limit"
    assert stats.starts >= 3 and stats.rate_fps > 0
    assert reports and reports[-1]["frames"] == 90 and reports[-1]["end"] == "limit"
    assert set(sub.streams) == {"raw/load-0", "raw/load-1", "raw/load-2"}
    for st in sub.streams.values():
        assert st.frames == 30 and st.seq_missing == 0 and st.end is not None and st.end.frames == 30
    # each performer moves: the frames of one stream are not all equal
    j = np.stack(
        [
            r.message.joints
            for r in got
            if isinstance(r.message, FrameMessage) and r.message.stream == "load-0"
        ]
    )
    assert j.shape == (30, 25, 3) and np.abs(j - j[0]).max() > 0.01
    assert not sub.drops


def test_late_subscriber_gets_a_start_on_subscribing() -> None:
    """No periodic announcements: the XPUB sees the new subscription and the producer announces at once."""
    src = SyntheticSource(1, stream="late")
    with Publisher(TCP_ANY) as pub:
        stop = threading.Event()
        p = Producer(src, pub, ProducerOptions(speed=1.0, announce_s=0, report_s=0))
        t, out = _run_in_thread(p, stop)
        wait_until(lambda: pub.sent >= 3, what="the first start and some frames to be sent")
        with Subscriber(pub.endpoint, ["raw/"]) as sub:
            got = list(sub.iter(duration_s=30, max_messages=16))  # the start and 15 frames, half a second
        stop.set()
        t.join(20)
    assert out[0].end_reason == "interrupted"
    assert isinstance(got[0].message, StreamStart) and got[0].message.seq > 0
    frames = [r for r in got if isinstance(r.message, FrameMessage)]
    assert len(frames) == 15
    assert sub.drops.get("unknown_stream", 0) <= 2  # at most the frames in flight before the start
    assert out[0].starts == 2


def test_periodic_announcements() -> None:
    src = SyntheticSource(1, stream="per")
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        p = Producer(
            src,
            pub,
            ProducerOptions(speed=1.0, announce_s=0.2, duration_s=1.0, wait_subscribers=1, report_s=0),
        )
        t, out = _run_in_thread(p)
        starts = 0
        for r in sub.iter(duration_s=30):
            starts += isinstance(r.message, StreamStart)
            if isinstance(r.message, StreamEnd):
                break
        t.join(20)
    assert 4 <= starts <= 7
    assert out[0].end_reason == "limit"


def test_stop_sends_stream_end_interrupted() -> None:
    rec = Recording.from_clip(np.ones((300, 25, 3), np.float32))
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        stop = threading.Event()
        p = Producer(
            RecordingReplay(rec, stream="k"), pub, ProducerOptions(speed=1.0, wait_subscribers=1, report_s=0)
        )
        t, out = _run_in_thread(p, stop)
        got = []
        for r in sub.iter(duration_s=30):
            got.append(r)
            if len(got) == 5:
                stop.set()
            if isinstance(r.message, StreamEnd):
                break
        t.join(20)
    assert not t.is_alive()
    end = got[-1].message
    assert isinstance(end, StreamEnd) and end.reason == "interrupted" and end.frames == out[0].frames < 300


def test_unsendable_frame_is_a_clear_error() -> None:
    rec = Recording.from_clip(np.full((3, 25, 3), 2000.0, np.float32), metadata={"source": "far.skeleton"})
    with Publisher(TCP_ANY) as pub:
        p = Producer(RecordingReplay(rec, stream="far"), pub, ProducerOptions(speed=0, report_s=0))
        with pytest.raises(ValueError, match=r"kinect:far.skeleton: frame 0, person 0 cannot be sent: range"):
            p.run()
    assert p.stats.end_reason == "error"


def test_source_errors_end_the_stream_with_error() -> None:
    class Broken(SyntheticSource):
        def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
            for i, f in enumerate(SyntheticSource.frames(self, stop)):
                if i == 2:
                    raise RuntimeError("camera unplugged")
                yield f

    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, 20)
        p = Producer(Broken(1, stream="b"), pub, ProducerOptions(speed=0, report_s=0))
        with pytest.raises(RuntimeError, match="unplugged"):
            p.run()
        kinds = [r.message for r in sub.iter(duration_s=20, max_messages=4)]
    assert [m.kind for m in kinds] == ["start", "frame", "frame", "end"]
    assert isinstance(kinds[-1], StreamEnd) and kinds[-1].reason == "error" and kinds[-1].frames == 2
    assert p.stats.end_reason == "error"
