"""Video files and webcams through MediaPipe Pose: OpenCV capture -> pose -> NTU-25.

Two threads, so that capture and pose estimation never stall each other:

* the **capture thread** reads frames with ``cv2.VideoCapture`` (a device index for a
  webcam, a path for a file), stamps their capture time and puts them in a one-frame
  mailbox. When the pose estimator is slower than the camera, a new frame replaces the
  one waiting (**the newest frame wins**) and the replaced one is counted as a drop.
  Video files are read at their own frame rate times ``speed``, like a camera; with
  ``speed=0`` every frame is processed (the capture thread waits instead of dropping).
* the **pose worker** (the thread iterating :meth:`CameraSource.frames`) runs MediaPipe
  Pose (``mediapipe.solutions.pose``, the bundled full model, tracking mode) on the
  newest frame, maps it to NTU-25 (:func:`~pmr_stream.capture.mediapipe_map.mediapipe_to_ntu`) with
  per-joint confidences and, optionally, smooths it with a One-Euro filter. A frame
  without a person is yielded with no persons (a gap), never filled in.

Several persons (``PoseOptions(max_persons=N)``, N > 1, ``--persons N``): the worker runs
:class:`~pmr_stream.capture.multipose.MultiPoseEstimator` instead (MediaPipe Tasks'
``PoseLandmarker`` and a tracker), yields one :class:`PersonPose` per tracked person with its
stable id, and keeps one One-Euro filter per id. A person missing from a frame is missing
from that frame's persons (a gap for that person); the filter of that id starts afresh.

cv2 and mediapipe are imported when a source is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pmr_stream.capture.pose import PoseOptions, PoseResult, open_capture
from pmr_stream.capture.smoothing import OneEuroFilter, OneEuroOptions
from pmr_stream.capture.source import PersonPose, SourceFrame, StreamInfo
from pmr_stream.skeleton import FPS
from pmr_stream.wire.checks import MAX_ABS_METRES

log = logging.getLogger(__name__)


class PoseFn(Protocol):
    """Anything with MediaPipe's ``process(rgb) -> PoseResult | None`` and ``close()``."""

    def process(self, rgb: npt.NDArray[np.uint8]) -> PoseResult | None: ...

    def close(self) -> None: ...


def _estimate(estimator: PoseFn, rgb: npt.NDArray[np.uint8], item: _Captured) -> list[tuple[int, PoseResult]]:
    """``(person id, pose)`` for every person the estimator found in one frame."""
    multi = getattr(estimator, "process_persons", None)
    if multi is not None:
        return [(tp.person, tp.pose) for tp in multi(rgb, item.index, item.t_mono_ns // 1_000_000)]
    res = estimator.process(rgb)
    return [] if res is None else [(0, res)]


@dataclass(frozen=True)
class CameraOptions:
    """Options of :class:`CameraSource`.

    Attributes:
        speed: video files only: 1 = the file's frame rate (like a camera), 2 = twice as
            fast, 0 = as fast as the pose estimator goes, every frame processed.
        latest_wins: drop the waiting frame when a newer one arrives. Default (``None``):
            on, except for a video file at ``speed=0``.
        fps: frame rate to assume when OpenCV reports none (some webcams), frames per second.
        smoothing: One-Euro filter options, or ``None`` for no smoothing.
        pose: MediaPipe options (``mirrored`` for selfie-view webcams and Kinect colour).
        loop: video files only: start over at the end (frame indices and media time go on).
    """

    speed: float = 1.0
    latest_wins: bool | None = None
    fps: float = FPS
    smoothing: OneEuroOptions | None = None
    pose: PoseOptions = field(default_factory=PoseOptions)
    loop: bool = False

    def __post_init__(self) -> None:
        if not (self.speed >= 0 and np.isfinite(self.speed)):
            raise ValueError(f"speed must be >= 0, got {self.speed}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class _Captured:
    index: int
    pts_s: float
    t_mono_ns: int
    t_wall_ns: int
    bgr: npt.NDArray[np.uint8]


class _Mailbox:
    """A one-slot mailbox between the capture thread and the pose worker."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Captured | None = None
        self.closed = False
        self.replaced = 0

    def put_latest(self, item: _Captured) -> None:
        with self._cond:
            if self._item is not None:
                self.replaced += 1
            self._item = item
            self._cond.notify_all()

    def put_wait(self, item: _Captured, halt: threading.Event) -> bool:
        with self._cond:
            while self._item is not None and not halt.is_set():
                self._cond.wait(0.05)
            if halt.is_set():
                return False
            self._item = item
            self._cond.notify_all()
            return True

    def get(self, timeout_s: float) -> _Captured | None:
        with self._cond:
            if self._item is None and not self.closed:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _pose_metadata(o: PoseOptions) -> dict[str, Any]:
    """What the stream announces about its pose estimator."""
    meta: dict[str, Any] = {"model_complexity": o.model_complexity, "tracking": o.tracking, "mirrored": o.mirrored,
                            "max_persons": o.max_persons}  # fmt: skip
    if o.max_persons == 1:
        return {"estimator": "mediapipe.solutions.pose", **meta}
    t = o.tracker
    return {"estimator": "mediapipe.tasks.vision.PoseLandmarker", **meta,
            "tracker": {"gate": t.gate, "max_missed": t.max_missed, "reuse_after": t.reuse_after}}  # fmt: skip


def _plausible(joints: npt.NDArray[np.float32]) -> bool:
    """Finite and within the wire's range (a root-depth estimate can blow up on a tiny figure)."""
    return bool(np.isfinite(joints).all() and np.abs(joints).max() <= MAX_ABS_METRES)


class CameraSource:
    """A webcam (``target`` = device index) or video file (path) through MediaPipe Pose.

    ``pose_factory`` makes the estimator in the worker thread (default: MediaPipe's
    :class:`~pmr_stream.capture.pose.PoseEstimator`); tests pass a stand-in.
    ``as_camera=True`` treats a file exactly like a webcam (read as fast as it decodes,
    newest frame wins, capture-clock media time): the webcam code path without a webcam.

    Counters: :attr:`captured` frames read, :attr:`drops` frames replaced before pose
    estimation, :attr:`processed` frames through the estimator.
    """

    live = True

    def __init__(
        self,
        target: int | str | Path,
        stream: str = "camera",
        options: CameraOptions | None = None,
        pose_factory: Callable[[], PoseFn] | None = None,
        *,
        as_camera: bool = False,
    ) -> None:
        import cv2

        self.options = options or CameraOptions()
        self.target = target
        self.is_camera = isinstance(target, int) or as_camera
        self._cap = open_capture(target)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and 0 < fps < 1000 else self.options.fps
        o = self.options
        self.latest_wins = o.latest_wins if o.latest_wins is not None else (self.is_camera or o.speed > 0)
        self._pose_factory = pose_factory
        self.stream = stream
        kind = "webcam" if isinstance(target, int) else "video"
        label = str(target) if isinstance(target, int) else Path(target).name
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        meta: dict[str, Any] = {
            "capture": {"width": w, "height": h, "fps": self.fps, "latest_wins": self.latest_wins},
            "pose": _pose_metadata(o.pose),
            "smoothing": None if o.smoothing is None else {
                "filter": "one_euro", "min_cutoff": o.smoothing.min_cutoff, "beta": o.smoothing.beta,
                "d_cutoff": o.smoothing.d_cutoff},
        }  # fmt: skip
        self.streams = [StreamInfo(stream, self.fps, f"{kind}:{label}", o.pose.max_persons, meta)]
        self._box = _Mailbox()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.captured = 0
        self.processed = 0
        self.invalid = 0  # estimates refused as implausible, published as gaps
        self.error: BaseException | None = None

    @property
    def drops(self) -> int:
        return self._box.replaced

    # ------------------------------------------------------------------ capture thread

    def _capture_loop(self) -> None:
        import cv2

        cap = self._cap
        o = self.options
        t0 = time.monotonic()
        mono0: int | None = None
        paced = not self.is_camera and o.speed > 0
        i = 0
        try:
            while not self._halt.is_set():
                if paced:
                    delay = t0 + i / (self.fps * o.speed) - time.monotonic()
                    if delay > 0 and self._halt.wait(delay):
                        break
                ok, bgr = cap.read()
                if (not ok or bgr is None) and o.loop and i > 0 and not isinstance(self.target, int):
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # the end of the video: start over
                    ok, bgr = cap.read()
                mono, wall = time.monotonic_ns(), time.time_ns()
                if not ok or bgr is None:
                    break
                mono0 = mono if mono0 is None else mono0
                pts = (mono - mono0) / 1e9 if self.is_camera else i / self.fps
                item = _Captured(i, pts, mono, wall, bgr)
                self.captured += 1
                if self.latest_wins:
                    self._box.put_latest(item)
                elif not self._box.put_wait(item, self._halt):
                    break
                i += 1
        except BaseException as exc:  # pragma: no cover - surfaced to the worker
            self.error = exc
        finally:
            self._box.close()

    # ------------------------------------------------------------------ pose worker

    def _make_estimator(self) -> PoseFn:
        if self._pose_factory is not None:
            return self._pose_factory()
        if self.options.pose.max_persons > 1:
            from pmr_stream.capture.multipose import MultiPoseEstimator

            return MultiPoseEstimator(self.options.pose)
        from pmr_stream.capture.pose import PoseEstimator

        return PoseEstimator(self.options.pose)

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        import cv2

        estimator = self._make_estimator()
        smoothing = self.options.smoothing
        smoothers: dict[int, OneEuroFilter] = {}  # person id -> its filter, while the person is seen
        self._thread = threading.Thread(target=self._capture_loop, name=f"capture-{self.stream}", daemon=True)
        self._thread.start()
        try:
            while not stop.is_set():
                item = self._box.get(0.1)
                if item is None:
                    if self._box.closed:
                        break
                    continue
                rgb = np.ascontiguousarray(cv2.cvtColor(item.bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                t = time.perf_counter()
                try:
                    found = _estimate(estimator, rgb, item)
                except ValueError as exc:  # e.g. NaN landmarks refused by the NTU map
                    log.warning(
                        "%s frame %d: pose estimate refused (%s); reported as a gap",
                        self.stream,
                        item.index,
                        exc,
                    )
                    found = []
                    self.invalid += 1
                pose_s = time.perf_counter() - t
                self.processed += 1
                persons: list[PersonPose] = []
                for pid, res in found:
                    if not _plausible(res.joints):
                        log.warning("%s frame %d, person %d: implausible skeleton (non-finite or > %g m); "
                                    "reported as a gap", self.stream, item.index, pid, MAX_ABS_METRES)  # fmt: skip
                        self.invalid += 1
                        continue
                    joints = res.joints
                    if smoothing is not None:
                        joints = smoothers.setdefault(pid, OneEuroFilter(smoothing)).filter(
                            joints, item.t_mono_ns / 1e9
                        )
                    persons.append(PersonPose(pid, joints, res.confidence))
                for pid in set(smoothers) - {p.person for p in persons}:
                    del smoothers[pid]  # the person is lost; do not smooth across the gap
                yield SourceFrame(
                    self.stream,
                    item.index,
                    item.pts_s,
                    tuple(persons),
                    item.t_mono_ns,
                    item.t_wall_ns,
                    pose_s,
                )
            if self.error is not None:
                raise RuntimeError(f"capture from {self.target} failed: {self.error}") from self.error
        finally:
            estimator.close()
            self._stop_thread()

    def _stop_thread(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self) -> None:
        """Stop the capture thread and release the camera or file."""
        self._stop_thread()
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        log.info(
            "%s: %d frames captured, %d processed, %d dropped",
            self.stream,
            self.captured,
            self.processed,
            self.drops,
        )


__all__ = ["CameraOptions", "CameraSource", "PoseFn"]
