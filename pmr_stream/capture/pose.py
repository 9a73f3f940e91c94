"""MediaPipe Pose (the legacy ``mediapipe.solutions.pose`` bundled in mediapipe 0.10.21).

Turns RGB images into MediaPipe's 33 landmarks and, through
:func:`pmr_stream.capture.mediapipe_map.mediapipe_to_ntu`, into NTU-25 skeletons in the Kinect
camera convention (:func:`pose_result`, shared with the multi-person path of
:mod:`pmr_stream.capture.multipose`). :class:`PoseEstimator` finds one person;
``PoseOptions(max_persons=N)`` with N > 1 is for
:class:`~pmr_stream.capture.multipose.MultiPoseEstimator`. MediaPipe is imported lazily so that the rest of the package
works on hosts without the capture stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pmr_stream.capture.mediapipe_map import estimate_root_position, mediapipe_to_ntu
from pmr_stream.capture.person_tracker import TrackerOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoseOptions:
    """Options of :class:`PoseEstimator`.

    ``model_complexity`` must be 1: it is the only pose model the mediapipe
    0.10.21 wheel bundles (0 and 2 are downloaded at run time, which our
    machines cannot). ``tracking`` runs MediaPipe in video mode (landmarks
    tracked from frame to frame); ``False`` treats every image on its own.
    ``mirrored`` says the images are mirrored (Kinect colour, selfie webcams).
    ``horizontal_fov_deg``: the camera's horizontal field of view, degrees (places the
    persons in metres, :func:`~pmr_stream.capture.mediapipe_map.estimate_root_position`).

    ``max_persons``: persons detected and tracked at most, each with a stable person id in
    ``0 .. max_persons - 1`` (the stream announces it as ``StreamInfo.max_persons``). 1 = the
    legacy single-person ``mediapipe.solutions.pose``; more = MediaPipe Tasks'
    ``PoseLandmarker`` with ``num_poses=max_persons`` and :mod:`~pmr_stream.capture.person_tracker`
    (``tracker``: its gate, occlusion frames and slot rest).
    """

    model_complexity: int = 1
    tracking: bool = True
    smooth_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    mirrored: bool = False
    horizontal_fov_deg: float = 70.0
    max_persons: int = 1
    tracker: TrackerOptions = field(default_factory=TrackerOptions)

    def __post_init__(self) -> None:
        if type(self.max_persons) is not int or not 1 <= self.max_persons <= 64:
            raise ValueError(f"max_persons must be an integer in 1..64, got {self.max_persons!r}")
        if self.model_complexity != 1:
            raise ValueError(
                "model_complexity must be 1: mediapipe 0.10.21 bundles only that pose model "
                f"(got {self.model_complexity})"
            )
        for name in ("min_detection_confidence", "min_tracking_confidence"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")


@dataclass(frozen=True)
class PoseResult:
    """One person's pose in one image.

    ``world``: ``(33, 3)`` MediaPipe world landmarks, metres, hip-centred, x
    image-right, y down. ``image``: ``(33, 3)`` normalised image landmarks.
    ``visibility``: ``(33,)`` in [0, 1]. ``joints``: ``(25, 3)`` NTU-25 in the
    Kinect camera convention, metres, placed at the estimated hip position.
    ``confidence``: ``(25,)``. ``seconds``: time MediaPipe took for the image.
    """

    world: npt.NDArray[np.float32]
    image: npt.NDArray[np.float32]
    visibility: npt.NDArray[np.float32]
    joints: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    seconds: float


def pose_result(
    world: npt.NDArray[np.float32],
    image: npt.NDArray[np.float32],
    visibility: npt.NDArray[np.float32],
    image_size: tuple[int, int],
    options: PoseOptions,
    seconds: float,
) -> PoseResult:
    """One person's landmarks ``(33, 3)`` world and image, ``(33,)`` visibility, placed in the camera
    frame and mapped to NTU-25: the one placement convention of the single- and multi-person paths."""
    origin = estimate_root_position(world, image, image_size, options.horizontal_fov_deg)
    if options.mirrored:
        origin = origin * np.array([-1.0, 1.0, 1.0])
    joints, conf = mediapipe_to_ntu(world, visibility, kind="world", mirrored=options.mirrored, origin=origin)
    return PoseResult(world, image, visibility, joints, conf, seconds)


class PoseEstimator:
    """MediaPipe Pose as a context manager: ``with PoseEstimator(opts) as pe: pe.process(rgb)``."""

    def __init__(self, options: PoseOptions | None = None) -> None:
        self.options = options or PoseOptions()
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - depends on the host
            raise RuntimeError(
                "MediaPipe is not installed; install pmr-stream's dependencies (mediapipe==0.10.21)"
            ) from exc
        o = self.options
        self._pose: Any = mp.solutions.pose.Pose(
            static_image_mode=not o.tracking,
            model_complexity=o.model_complexity,
            smooth_landmarks=o.smooth_landmarks,
            min_detection_confidence=o.min_detection_confidence,
            min_tracking_confidence=o.min_tracking_confidence,
        )

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def process(self, rgb: npt.NDArray[np.uint8]) -> PoseResult | None:
        """Estimate the pose in one RGB image ``(H, W, 3) uint8``; ``None`` if no person is found."""
        if self._pose is None:
            raise ValueError("PoseEstimator is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB image (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        t0 = time.perf_counter()
        res = self._pose.process(rgb)
        seconds = time.perf_counter() - t0
        if res.pose_world_landmarks is None or res.pose_landmarks is None:
            return None
        world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], np.float32)
        image = np.array([[p.x, p.y, p.z] for p in res.pose_landmarks.landmark], np.float32)
        vis = np.array([p.visibility for p in res.pose_landmarks.landmark], np.float32)
        h, w = rgb.shape[:2]
        return pose_result(world, image, vis, (w, h), self.options, seconds)


def open_capture(target: int | str | Path) -> Any:
    """An opened ``cv2.VideoCapture`` for a device index (webcam) or a video file; errors name it."""
    import cv2

    if isinstance(target, int):
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            raise ValueError(f"cannot open webcam {target} (cv2.VideoCapture({target}) failed)")
        return cap
    p = Path(target)
    if not p.is_file():
        raise FileNotFoundError(f"video file not found: {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise ValueError(f"OpenCV cannot open video {p}")
    return cap


def iter_video_poses(
    path: str | Path, options: PoseOptions | None = None
) -> Iterator[tuple[int, PoseResult | None]]:
    """Run MediaPipe over every frame of a video file: yields ``(frame_index, result or None)``.

    Raises ``FileNotFoundError``/``ValueError`` naming the file when it is missing
    or OpenCV cannot open it.
    """
    import cv2

    cap = open_capture(Path(path))
    try:
        with PoseEstimator(options) as est:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield i, est.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                i += 1
    finally:
        cap.release()
