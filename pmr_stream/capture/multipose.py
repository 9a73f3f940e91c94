"""Several persons per image: MediaPipe Tasks' ``PoseLandmarker`` and a tracker for stable ids.

Why this path (mediapipe 0.10.21, the pinned wheel): the legacy ``mediapipe.solutions.pose``
finds one person and, on footage with several, its track jumps between them. The wheel has
no multi-person legacy graph, but it has the Tasks ``PoseLandmarker``, whose ``num_poses``
runs the BlazePose detector for every person and the landmark model on each person's crop,
and it bundles the two models the Tasks bundle is made of. The Tasks graph refuses those files
until they carry TFLite metadata (their input normalisation); :mod:`.pose_bundle` adds it with
the wheel's own metadata writer and zips them into a ``.task`` at first use, in the cache, from
the wheel's files only (no download). The alternative, running the detector and then the
landmark model per crop ourselves through the legacy graphs, would rebuild in Python what the
Tasks graph already does (anchors, non-maximum suppression, ROI from landmarks, tracking).

Each detected pose is placed in the camera frame by :func:`~pmr_stream.capture.pose.pose_result`,
exactly as the single-person path places its one person (depth from the metric vs pixel extent
of the body, x/y from the hip centre's pixel, per person), and gets its person id from
:class:`~pmr_stream.capture.person_tracker.PersonTracker` (the Tasks result has no ids and its
order is not stable). ``max_persons`` is both ``num_poses`` (persons detected at most) and the
number of id slots. A person not found in a frame is absent from that frame's list (a gap for
that person, never filled in).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pmr_stream.capture.person_tracker import PersonTracker
from pmr_stream.capture.pose import PoseOptions, PoseResult, pose_result
from pmr_stream.capture.pose_bundle import ensure_pose_bundle

log = logging.getLogger(__name__)

#: MediaPipe landmarks whose visibility scores a detection (shoulders and hips).
_TORSO = (11, 12, 23, 24)


@dataclass(frozen=True)
class TrackedPose:
    """One person in one image: ``person`` id (slot), ``pose``, ``box`` ``(4,)`` pixels ``(x0, y0, x1, y1)``
    around the landmarks and ``centre`` ``(2,)`` the hip centre in pixels."""

    person: int
    pose: PoseResult
    box: npt.NDArray[np.float64]
    centre: npt.NDArray[np.float64]


class MultiPoseEstimator:
    """``with MultiPoseEstimator(PoseOptions(max_persons=4)) as est: est.process_persons(rgb)``.

    ``bundle``: a ``.task`` file to use instead of the one built from the wheel
    (:func:`~pmr_stream.capture.pose_bundle.ensure_pose_bundle`).
    """

    def __init__(self, options: PoseOptions | None = None, bundle: str | Path | None = None) -> None:
        self.options = o = options or PoseOptions(max_persons=4)
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:  # pragma: no cover - depends on the host
            raise RuntimeError(
                "MediaPipe is not installed; install pmr-stream's dependencies (mediapipe==0.10.21)"
            ) from exc
        self.bundle = Path(bundle) if bundle is not None else ensure_pose_bundle()
        mode = vision.RunningMode.VIDEO if o.tracking else vision.RunningMode.IMAGE
        lm_options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.bundle)),
            running_mode=mode,
            num_poses=o.max_persons,
            min_pose_detection_confidence=o.min_detection_confidence,
            min_pose_presence_confidence=o.min_detection_confidence,
            min_tracking_confidence=o.min_tracking_confidence,
        )
        self._landmarker: Any = vision.PoseLandmarker.create_from_options(lm_options)
        self.tracker = PersonTracker(o.max_persons, o.tracker)
        self._frame = -1
        self._t_ms = -1
        self._warn_refused = 1

    def __enter__(self) -> MultiPoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def process_persons(
        self, rgb: npt.NDArray[np.uint8], frame: int | None = None, t_ms: int | None = None
    ) -> list[TrackedPose]:
        """The persons in one RGB image ``(H, W, 3) uint8``, ordered by person id.

        ``frame``: the image's frame index (increasing; skipped frames are predicted over),
        default the next one. ``t_ms``: its time in milliseconds for MediaPipe's video mode
        (default: the monotonic clock); made strictly increasing.
        """
        import mediapipe as mp

        if self._landmarker is None:
            raise ValueError("MultiPoseEstimator is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB image (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        self._frame = self._frame + 1 if frame is None else frame
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        t0 = time.perf_counter()
        if self.options.tracking:
            t = int(time.monotonic() * 1000) if t_ms is None else int(t_ms)
            self._t_ms = max(t, self._t_ms + 1)
            res = self._landmarker.detect_for_video(image, self._t_ms)
        else:
            res = self._landmarker.detect(image)
        seconds = time.perf_counter() - t0
        h, w = rgb.shape[:2]
        size = np.array([w, h], dtype=np.float64)
        poses: list[tuple[PoseResult, npt.NDArray[np.float64], npt.NDArray[np.float64], float]] = []
        for lms, wlms in zip(res.pose_landmarks, res.pose_world_landmarks, strict=True):
            img = np.array([[p.x, p.y, p.z] for p in lms], np.float32)
            world = np.array([[p.x, p.y, p.z] for p in wlms], np.float32)
            vis = np.array([p.visibility if p.visibility is not None else 0.0 for p in lms], np.float32)
            if not (np.isfinite(img).all() and np.isfinite(world).all()):
                log.warning("frame %d: a pose with non-finite landmarks was dropped", self._frame)
                continue
            px = img[:, :2].astype(np.float64) * size
            box = np.concatenate([px.min(axis=0), px.max(axis=0)])
            centre = px[[23, 24]].mean(axis=0)
            poses.append((pose_result(world, img, vis, (w, h), self.options, seconds), box, centre,
                          float(vis[list(_TORSO)].mean())))  # fmt: skip
        if not poses:
            self.tracker.update(self._frame, np.zeros((0, 2)), np.zeros((0, 4)))
            return []
        ids = self.tracker.update(self._frame, np.stack([p[2] for p in poses]), np.stack([p[1] for p in poses]),
                                  np.array([p[3] for p in poses]))  # fmt: skip
        if self.tracker.refused >= self._warn_refused:  # the first time, then at each doubling
            self._warn_refused = 2 * self.tracker.refused
            log.warning("frame %d: more persons than the %d person slots (--persons); %d detection(s) without "
                        "an id so far", self._frame, self.options.max_persons, self.tracker.refused)  # fmt: skip
        out = [TrackedPose(int(i), p[0], p[1], p[2]) for i, p in zip(ids, poses, strict=True) if i >= 0]
        return sorted(out, key=lambda tp: tp.person)

    def process(self, rgb: npt.NDArray[np.uint8]) -> PoseResult | None:
        """The single-person interface: the person with the lowest id, or ``None``."""
        persons = self.process_persons(rgb)
        return persons[0].pose if persons else None


__all__ = ["TrackedPose", "MultiPoseEstimator"]
