"""Video/webcam capture: newest frame wins when pose is slow, gaps are reported, and real MediaPipe
on the real NTU video through the wire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.capture.camera import CameraOptions, CameraSource
from pmr_stream.capture.pose import PoseResult
from pmr_stream.capture.producer import Producer, ProducerOptions, ProducerStats
from pmr_stream.capture.smoothing import OneEuroOptions
from pmr_stream.capture.source import SourceFrame
from pmr_stream.wire.schema import FrameGap, FrameMessage
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.ntu_samples import ntu_file

VIDEO = "S001C001P001R001A001_rgb.avi"  # 103 frames, 1920x1080, 30 fps


class FakePose:
    """Stands in for MediaPipe: takes ``delay_s`` per image, finds a person when ``found(i)``."""

    def __init__(
        self, delay_s: float = 0.0, found: Callable[[int], bool] = lambda i: True, jitter: float = 0.0
    ) -> None:
        self.delay_s, self.found, self.jitter = delay_s, found, jitter
        self.calls = 0
        self.closed = False
        self._rng = np.random.default_rng(0)

    def process(self, rgb: np.ndarray) -> PoseResult | None:
        assert rgb.ndim == 3 and rgb.dtype == np.uint8
        i = self.calls
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)  # the slow pose model itself: the behaviour under test
        if not self.found(i):
            return None
        joints = np.full((25, 3), 1.0, np.float32) + self._rng.normal(0, self.jitter, (25, 3)).astype(
            np.float32
        )
        z33 = np.zeros((33, 3), np.float32)
        return PoseResult(
            z33, z33, np.ones(33, np.float32), joints, np.full(25, 0.9, np.float32), self.delay_s
        )

    def close(self) -> None:
        self.closed = True


def test_webcam_path_newest_frame_wins_and_drops_are_counted() -> None:
    video = ntu_file(VIDEO)
    pose = FakePose(delay_s=0.04)  # slower than decoding: frames pile up
    src = CameraSource(video, "cam", pose_factory=lambda: pose, as_camera=True)
    assert src.latest_wins and src.fps == 30.0
    frames = list(src.frames(threading.Event()))
    src.close()
    assert src.captured == 103
    assert len(frames) == src.processed == pose.calls
    assert src.processed + src.drops == 103  # every captured frame was either estimated or replaced
    assert src.drops > 20
    idx = [f.frame for f in frames]
    assert (
        idx == sorted(idx) and len(set(idx)) == len(idx) and idx[-1] == 102
    )  # newest won, the last included
    assert all(f.t_mono_ns is not None and f.pose_s is not None and f.pose_s >= 0.04 for f in frames)
    assert pose.closed


def test_video_at_speed_0_processes_every_frame_and_reports_gaps() -> None:
    video = ntu_file(VIDEO)
    pose = FakePose(found=lambda i: i % 3 != 0)
    src = CameraSource(video, "vid", CameraOptions(speed=0), pose_factory=lambda: pose)
    assert not src.latest_wins
    frames = list(src.frames(threading.Event()))
    src.close()
    assert [f.frame for f in frames] == list(range(103)) and src.drops == 0
    assert [len(f.persons) for f in frames] == [0 if i % 3 == 0 else 1 for i in range(103)]
    np.testing.assert_allclose([f.pts_s for f in frames], np.arange(103) / 30.0)
    person = frames[1].persons[0]
    assert (
        person.person == 0
        and person.joints.shape == (25, 3)
        and float(person.confidence[0]) == pytest.approx(0.9)
    )


def test_implausible_or_refused_estimates_become_gaps() -> None:
    class Odd(FakePose):
        def process(self, rgb: np.ndarray) -> PoseResult | None:
            res = super().process(rgb)
            if self.calls == 2:
                assert res is not None
                return PoseResult(
                    res.world, res.image, res.visibility, res.joints * 5000, res.confidence, 0.0
                )
            if self.calls == 3:
                raise ValueError("landmarks contain NaN or infinite values")
            return res

    video = ntu_file(VIDEO)
    src = CameraSource(video, "odd", CameraOptions(speed=0), pose_factory=Odd)
    frames = list(src.frames(threading.Event()))
    src.close()
    assert [len(f.persons) for f in frames[:4]] == [1, 0, 0, 1] and len(frames) == 103
    assert src.invalid == 2


def test_video_is_paced_like_a_camera() -> None:
    video = ntu_file(VIDEO)
    src = CameraSource(video, "vid", CameraOptions(speed=10.0), pose_factory=FakePose)
    stop = threading.Event()
    t0 = time.monotonic()
    n = sum(1 for _ in src.frames(stop))
    elapsed = time.monotonic() - t0
    src.close()
    assert elapsed >= 102 / 300 * 0.95  # 103 frames at 10 x 30 fps
    assert n + src.drops == 103


def test_looped_video_starts_over_and_keeps_counting() -> None:
    class Seen(FakePose):
        def __init__(self) -> None:
            super().__init__()
            self.images: list[np.ndarray] = []

        def process(self, rgb: np.ndarray) -> PoseResult | None:
            self.images.append(rgb[::60, ::60].copy())  # enough of the image to tell frames apart
            return super().process(rgb)

    video = ntu_file(VIDEO)
    pose = Seen()
    src = CameraSource(video, "v", CameraOptions(speed=0, loop=True), pose_factory=lambda: pose)
    stop = threading.Event()
    frames = []
    for f in src.frames(stop):
        frames.append(f)
        if len(frames) == 110:
            stop.set()
    src.close()
    assert [f.frame for f in frames] == list(range(110))  # indices go on past the end of the file
    np.testing.assert_allclose([f.pts_s for f in frames], np.arange(110) / 30.0)
    np.testing.assert_array_equal(pose.images[103], pose.images[0])  # frame 103 is the video's first again
    np.testing.assert_array_equal(pose.images[105], pose.images[2])
    assert not np.array_equal(pose.images[102], pose.images[0])


def test_smoothing_is_applied_to_the_joints() -> None:
    video = ntu_file(VIDEO)
    raw = [f.persons[0].joints for f in _frames(video, None)]
    smooth = [f.persons[0].joints for f in _frames(video, OneEuroOptions())]
    assert np.std(np.stack(smooth[30:]), axis=0).mean() < np.std(np.stack(raw[30:]), axis=0).mean() / 2


def _frames(video: Path, smoothing: OneEuroOptions | None) -> list[SourceFrame]:
    pose = FakePose(jitter=0.01)
    src = CameraSource(video, "v", CameraOptions(speed=0, smoothing=smoothing), pose_factory=lambda: pose)
    # read as fast as possible: the filter runs on the capture clock, whatever the frame spacing
    out = list(src.frames(threading.Event()))
    src.close()
    return out


def test_stop_event_ends_capture_promptly() -> None:
    video = ntu_file(VIDEO)
    src = CameraSource(video, "v", CameraOptions(speed=1.0), pose_factory=FakePose)
    stop = threading.Event()
    n = 0
    t0 = time.monotonic()
    for _ in src.frames(stop):
        n += 1
        if n == 5:
            stop.set()
    src.close()
    assert n == 5 and time.monotonic() - t0 < 2.0


def test_missing_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.avi"):
        CameraSource(tmp_path / "nothing.avi")
    (tmp_path / "junk.avi").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="junk.avi"):
        CameraSource(tmp_path / "junk.avi")
    with pytest.raises(ValueError, match="cannot open webcam 97"):
        CameraSource(97)


@pytest.mark.slow
@pytest.mark.mediapipe
def test_real_video_through_mediapipe_and_the_wire() -> None:
    """The real NTU video, MediaPipe Pose (full model, tracking), published and received."""
    video = ntu_file(VIDEO)
    src = CameraSource(video, "a001", CameraOptions(speed=0))
    with Publisher("tcp://127.0.0.1:*") as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        out: list[ProducerStats] = []
        t = threading.Thread(
            target=lambda: out.append(
                Producer(src, pub, ProducerOptions(wait_subscribers=1, report_s=0)).run()
            )
        )
        t.start()
        persons, gaps = [], []
        for r in sub.iter(duration_s=60):
            if isinstance(r.message, FrameMessage):
                persons.append(r.message)
            elif isinstance(r.message, FrameGap):
                gaps.append(r.message)
            elif r.message.kind == "end":
                break
        t.join(10)
    stats = out[0]
    assert len(persons) + len(gaps) == 103 == stats.frames
    print(f"\nframes with a person: {len(persons)} of 103; pose {stats.summary()['pose_ms_p50']} ms/frame")
    assert len(persons) >= 100
    assert stats.pose_ms and all(p > 0 for p in stats.pose_ms)
    m = persons[len(persons) // 2]
    assert (
        1.5 < float(m.joints[1, 2]) < 8.0
    )  # SpineMid in front of the camera (Kinect: 3.7 m; depth from a 70 deg FOV)
    assert float(m.confidence.mean()) > 0.5
    assert not sub.drops
