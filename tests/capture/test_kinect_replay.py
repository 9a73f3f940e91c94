"""Kinect replay through a real PUB socket, recorded again: the recording comes back identical."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from pmr_stream.capture.producer import Producer, ProducerOptions, ProducerStats
from pmr_stream.capture.replay import RecordingReplay
from pmr_stream.formats.io import load_recording
from pmr_stream.formats.recording import Recording
from pmr_stream.sinks.recorder import Recorder, RecordOptions
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.ntu_samples import ntu_file

TCP_ANY = "tcp://127.0.0.1:*"


def gappy_recording() -> Recording:
    """12 frames, 2 persons: person 1 only in frames 3-8, nobody in frame 5."""
    rng = np.random.default_rng(3)
    joints = rng.uniform(-1, 3, (12, 2, 25, 3)).astype(np.float32)
    conf = rng.uniform(0, 1, (12, 2, 25)).astype(np.float32)
    present = np.zeros((12, 2), bool)
    present[:, 0] = True
    present[3:9, 1] = True
    present[5] = False
    joints[~present] = 0
    conf[~present] = 0
    return Recording(joints, conf, np.arange(12) / 30.0, present, metadata={"note": "gappy", "ids": [1, 2]})


def replay_and_record(
    source: RecordingReplay, tmp_path: Path, **opts: object
) -> tuple[Recording, ProducerStats, Subscriber]:
    """Publish ``source`` through a real XPUB socket, record it through a real SUB socket."""
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        producer = Producer(source, pub, ProducerOptions(speed=0, wait_subscribers=1, report_s=0, **opts))  # type: ignore[arg-type]
        result: list[ProducerStats] = []
        t = threading.Thread(target=lambda: result.append(producer.run()))
        t.start()
        rec = Recorder(sub)
        rec.run(options=RecordOptions(until_end=True, duration_s=20))
        t.join(10)
        written = rec.save(tmp_path / "again.npz")
        assert [p.name for p, _ in written] == ["again.npz"]
        return Recording.load(tmp_path / "again.npz"), result[0], sub


def assert_same(a: Recording, b: Recording) -> None:
    np.testing.assert_array_equal(b.joints, a.joints)
    np.testing.assert_array_equal(b.confidence, a.confidence)
    np.testing.assert_array_equal(b.present, a.present)
    np.testing.assert_array_equal(b.timestamps, a.timestamps)
    assert b.layout == a.layout
    assert {k: v for k, v in b.metadata.items() if k != "wire"} == a.metadata


def test_gappy_recording_round_trip(tmp_path: Path) -> None:
    orig = gappy_recording()
    back, stats, sub = replay_and_record(RecordingReplay(orig, stream="gappy"), tmp_path)
    assert_same(orig, back)
    assert (stats.frames, stats.persons, stats.gaps, stats.end_reason) == (12, 16, 1, "eof")
    assert back.metadata["wire"]["stream"] == "gappy" and back.metadata["wire"]["ended"] == "eof"
    st = sub.streams["raw/gappy"]
    assert (st.frames, st.gaps, st.seq_missing) == (16, 1, 0)
    assert not sub.drops


def test_real_ntu_two_person_take_round_trip(tmp_path: Path) -> None:
    path = ntu_file("S001C003P008R002A058.skeleton")
    orig = load_recording(path)
    assert orig.num_persons == 2
    back, stats, sub = replay_and_record(RecordingReplay(path, stream="take"), tmp_path)
    assert_same(orig, back)
    assert stats.frames == 70 and stats.persons == 140
    assert back.metadata["wire"]["source"] == "kinect:S001C003P008R002A058.skeleton"


def test_npz_input_and_loop(tmp_path: Path) -> None:
    gappy_recording().save(tmp_path / "in.npz")
    src = RecordingReplay(tmp_path / "in.npz", stream="loop", loop=True)
    back, stats, _ = replay_and_record(src, tmp_path, max_frames=30)
    assert stats.frames == 30 and stats.end_reason == "limit"
    assert back.num_frames == 30
    # the second pass continues the media time one frame period after the first
    np.testing.assert_allclose(back.timestamps, np.arange(30) / 30.0, atol=1e-9)
    np.testing.assert_array_equal(back.joints[12:24], gappy_recording().joints)
    np.testing.assert_array_equal(back.present[24:], gappy_recording().present[:6])


def test_replay_is_paced_by_speed() -> None:
    rec = Recording.from_clip(np.ones((16, 25, 3), np.float32))  # 16 frames at 30 fps: 0.5 s
    times = {}
    for speed in (1.0, 2.0, 0.0):
        with Publisher(TCP_ANY) as pub:
            t0 = time.monotonic()
            Producer(RecordingReplay(rec, stream="p"), pub, ProducerOptions(speed=speed, report_s=0)).run()
            times[speed] = time.monotonic() - t0
    assert times[1.0] >= 15 / 30 * 0.95
    assert 15 / 60 * 0.95 <= times[2.0] < times[1.0]
    assert times[0.0] < 15 / 60 * 0.95


def test_frames_carry_every_body_as_its_own_person() -> None:
    src = RecordingReplay(gappy_recording(), stream="g")
    frames = list(src.frames(threading.Event()))
    assert [len(f.persons) for f in frames] == [1, 1, 1, 2, 2, 0, 2, 2, 2, 1, 1, 1]
    assert [p.person for p in frames[4].persons] == [0, 1]
    assert src.streams[0].max_persons == 2 and src.streams[0].fps == 30.0
