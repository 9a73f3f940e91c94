"""A live stand-in: an endless 30 fps stream of one performer doing actions one after another."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from pmr_stream.skeleton import FPS, J, Joint
from pmr_stream.synth.actions import ACTION_NAMES, ACTIONS, action_index
from pmr_stream.synth.arrays import Array32, FloatArray
from pmr_stream.synth.body import Performer, make_performers
from pmr_stream.synth.camera_noise import NoiseConfig, _noise_scale, camera_pose, performer_placement
from pmr_stream.synth.clips import action_motion
from pmr_stream.synth.kinematics import _standing_feet, pose_body
from pmr_stream.synth.motion import Motion, _smooth


class SyntheticStream:
    """An endless stream of ``(25, 3)`` float32 frames (metres, Kinect camera
    coordinates of ``camera``) at 30 fps: one performer doing actions one after
    another, blended over ``transition_s`` seconds.

    ``actions``: the actions to cycle through (names or numbers), or ``None``
    for a random sequence. Iterating never ends; :meth:`take` collects ``n``
    frames. ``last_confidence`` holds the ``(25,)`` confidence of the frame
    just returned and ``current_action`` the action being performed. Frames
    carry Kinect-like jitter and drift when ``noise`` is true (no glitches).
    Deterministic by ``seed``.
    """

    def __init__(
        self,
        performer: Performer | None = None,
        actions: Sequence[str | int] | None = None,
        *,
        seed: int = 0,
        camera: int = 1,
        noise: bool = True,
        transition_s: float = 0.8,
        fps: float = FPS,
    ) -> None:
        self.performer = performer if performer is not None else make_performers(1, seed)[0]
        self.actions = None if actions is None else [action_index(a) for a in actions]
        if self.actions is not None and not self.actions:
            raise ValueError("actions must not be empty (use None for a random sequence)")
        self.fps = float(fps)
        self.noise = noise
        self.transition_s = float(transition_s)
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57AE]))
        self._cam = camera_pose(camera, seed=seed)
        self._place = performer_placement(self.performer.id, 1, seed=seed)
        self._bones = self.performer.bones()
        if noise:
            self._bones = self._bones * (
                1.0 + self._rng.normal(0.0, NoiseConfig().bone_fit, self._bones.shape)
            )
        self._feet = _standing_feet(self._bones, self.performer.style)
        self._drift = np.zeros((J, 3))
        self._frame = 0
        self._segment = 0
        self._buffer: deque[tuple[Array32, Array32, int]] = deque()
        self._last_angles: FloatArray | None = None
        self.last_confidence: Array32 = np.ones(J, dtype=np.float32)
        self.current_action: str = ""

    @property
    def frame_index(self) -> int:
        """Number of frames returned so far."""
        return self._frame

    def __iter__(self) -> SyntheticStream:
        return self

    def __next__(self) -> Array32:
        if not self._buffer:
            self._fill()
        frame, conf, a = self._buffer.popleft()
        self.last_confidence = conf
        self.current_action = ACTION_NAMES[a - 1]
        self._frame += 1
        return frame

    def prime(self) -> None:
        """Generate the next action segment now if none is buffered (a few ms of CPU).

        A live source calls this before its clock starts, so many streams starting
        together do not all generate their first segment in the first frame period.
        The frames returned are the same with or without it."""
        if not self._buffer:
            self._fill()

    def take(self, n: int) -> Array32:
        """The next ``n`` frames as ``(n, 25, 3)`` float32."""
        return np.stack([next(self) for _ in range(n)]) if n > 0 else np.zeros((0, J, 3), np.float32)

    def _fill(self) -> None:
        if self.actions is None:
            a = int(self._rng.integers(1, len(ACTIONS) + 1))
        else:
            a = self.actions[self._segment % len(self.actions)]
        self._segment += 1
        seg_rng = np.random.default_rng(self._rng.integers(0, 2**63 - 1))
        motion, _ = action_motion(self.performer, a, seg_rng, fps=self.fps)
        n = motion.num_frames
        total = motion
        if self._last_angles is not None:
            k = min(n, max(int(round(self.transition_s * self.fps)), 1))
            w = _smooth((np.arange(n) + 1) / k)[:, None, None]
            total = Motion(w * motion.angles + (1 - w) * self._last_angles[None], motion.lift, motion.yaw)
        self._last_angles = total.angles[-1].copy()
        body = pose_body(total, self._bones, self._feet)
        x = self._cam.world_to_camera(self._place.body_to_world(body))
        if self.noise:
            cfg = NoiseConfig()
            scale = _noise_scale(self._cam.distance_m, self._cam.yaw_deg, cfg)
            a1 = math.exp(-1.0 / cfg.wander_frames)
            out = np.empty_like(x)
            for i in range(n):  # AR(1) wander, continuous across segments
                kick = self._rng.normal(0.0, cfg.wander_m * math.sqrt(1 - a1 * a1), (J, 3))
                self._drift = a1 * self._drift + kick * scale
                out[i] = x[i] + self._drift + self._rng.normal(0.0, cfg.jitter_m, (J, 3)) * scale
            x = out
        conf = np.ones((n, J), dtype=np.float32)
        if self.noise:  # Kinect often only infers the hand tips and thumbs
            tips = [Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT, Joint.HAND_TIP_RIGHT, Joint.THUMB_RIGHT]
            conf[:, tips] = np.where(self._rng.random((n, 4)) < NoiseConfig().tip_inferred, 0.5, 1.0)
        for i in range(n):
            self._buffer.append((x[i].astype(np.float32), conf[i], a))
