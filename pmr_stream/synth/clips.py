"""One take and its views: the motion of a performer doing an action, seen by a camera.

:func:`generate_clip_with_confidence` gives a :class:`SynthClip` (joints, confidence,
body-frame motion, labels, geometry); the three cameras see the same performance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from pmr_stream.skeleton import FPS, Joint
from pmr_stream.synth.action_kit import ActionContext, _clip_habit, incidental_motion
from pmr_stream.synth.actions import _ARMS_USED, ACTION_NAMES, ACTIONS, action_index, performer_habit
from pmr_stream.synth.arrays import Array32, FloatArray
from pmr_stream.synth.body import Performer, make_performers
from pmr_stream.synth.camera_noise import (
    CAMERA_YAW_DEG,
    CameraPose,
    NoiseConfig,
    Placement,
    _add_sensor_noise,
    camera_pose,
    performer_placement,
)
from pmr_stream.synth.kinematics import _standing_feet, pose_body
from pmr_stream.synth.motion import Motion, idle_motion, posture_motion

#: Shortest and longest clip, frames (NTU clips are mostly 2-5 s).
MIN_FRAMES: Final[int] = 60
MAX_FRAMES: Final[int] = 150
SETUP: Final[int] = 1


@dataclass(frozen=True)
class SynthClip:
    """A generated clip and what it is.

    Attributes:
        joints: ``(T, 25, 3)`` float32 metres in the camera's Kinect coordinates.
        confidence: ``(T, 25)`` float32: 1.0 tracked, 0.5 inferred (glitches,
            often the hand tips and thumbs); all 1.0 without noise.
        body: ``(T, 25, 3)`` float32 metres, the same motion in the body frame
            (floor at ``y = 0``), before placement, camera and noise.
        performer, action, camera, replication, setup: the labels (action is
            the 1-based number in :data:`ACTION_NAMES`).
        camera_pose, placement: the geometry used.
    """

    joints: Array32
    confidence: Array32
    body: Array32
    performer: int
    action: int
    camera: int
    replication: int
    setup: int
    camera_pose: CameraPose
    placement: Placement

    @property
    def name(self) -> str:
        """``SsssCcccPpppRrrrAaaa``."""
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
            f"R{self.replication:03d}A{self.action:03d}"
        )

    @property
    def action_name(self) -> str:
        return ACTION_NAMES[self.action - 1]

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


def action_motion(
    performer: Performer, action: str | int, rng: np.random.Generator, *, fps: float = FPS
) -> tuple[Motion, float]:
    """The full motion of one take (posture + idle + action) and the action's start time.

    Returns:
        ``(motion over T frames, lead-in seconds)``; ``T`` is 60-150 frames.
    """
    adef = ACTIONS[action_index(action) - 1]
    st = performer.style
    habit = _clip_habit(performer_habit(performer, adef.name), rng)
    tempo = st.tempo * habit.speed * float(rng.uniform(0.92, 1.08))
    amp = st.amplitude * float(rng.uniform(0.9, 1.1))
    lead_in, lead_out = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))
    max_dur = (MAX_FRAMES / fps - lead_in - lead_out) * tempo
    dur, fn = adef.plan(ActionContext(rng, amp, habit, st, max_dur))
    n = int(np.clip(round((lead_in + dur / tempo + lead_out) * fps), MIN_FRAMES, MAX_FRAMES))
    t = np.arange(n) / fps
    act = fn((t - lead_in) * tempo)
    arms_used = _ARMS_USED[adef.name]
    extra = incidental_motion(t, rng, None if arms_used == "both" else "L")
    act = act + extra
    if adef.one_sided and st.handedness == "left":
        act = act.mirrored()
    total = posture_motion(st, n) + idle_motion(st, t, float(rng.uniform(0, 2 * np.pi))) + act
    return total, lead_in


@dataclass(frozen=True)
class _Take:
    """One performance (the motion all three cameras see)."""

    performer: Performer
    action: int
    replication: int
    seed: int
    setup: int
    motion: Motion
    body: FloatArray  # (T, 25, 3) exact body-frame positions
    feet: FloatArray
    placement: Placement


def _take(performer: Performer, action: str | int, replication: int, seed: int, setup: int) -> _Take:
    a = action_index(action)
    if replication < 1:
        raise ValueError(f"replication must be >= 1, got {replication}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xAC7, setup, performer.id, a, replication]))
    motion, _ = action_motion(performer, a, rng)
    bones = performer.bones()
    feet = _standing_feet(bones, performer.style)
    body = pose_body(motion, bones, feet)  # (T, 25, 3) body frame
    place = performer_placement(performer.id, replication, seed=seed, setup=setup)
    return _Take(performer, a, replication, seed, setup, motion, body, feet, place)


def _view(take: _Take, camera: int, noise: bool | NoiseConfig) -> SynthClip:
    cam = camera_pose(camera, seed=take.seed, setup=take.setup)
    p = take.performer
    if noise is False:
        joints = cam.world_to_camera(take.placement.body_to_world(take.body))
        conf = np.ones(joints.shape[:2], dtype=np.float32)
    else:
        cfg = noise if isinstance(noise, NoiseConfig) else NoiseConfig()
        key = [take.seed, 0x4015E, take.setup, p.id, take.action, take.replication, camera]
        nrng = np.random.default_rng(np.random.SeedSequence(key))
        bones = p.bones()
        fitted = bones * (1.0 + nrng.normal(0.0, cfg.bone_fit, bones.shape))
        seen = pose_body(take.motion, fitted, take.feet)
        cam_x = cam.world_to_camera(take.placement.body_to_world(seen))
        dist = float(np.linalg.norm(cam_x[:, Joint.SPINE_BASE].mean(axis=0)))
        joints, conf = _add_sensor_noise(cam_x, dist, cam.yaw_deg, cfg, nrng)
    return SynthClip(
        joints=joints.astype(np.float32), confidence=conf, body=take.body.astype(np.float32),
        performer=p.id, action=take.action, camera=camera, replication=take.replication, setup=take.setup,
        camera_pose=cam, placement=take.placement,
    )  # fmt: skip


def generate_clip_with_confidence(
    performer: Performer,
    action: str | int,
    camera: int,
    replication: int,
    seed: int = 0,
    *,
    noise: bool | NoiseConfig = True,
    setup: int = SETUP,
) -> SynthClip:
    """Generate one take of ``action`` by ``performer`` seen from ``camera`` (1..3).

    The motion depends on (seed, setup, performer, action, replication) only, so
    the three cameras see the same performance; the noise also depends on the
    camera. ``noise=False`` gives the exact forward kinematics (bone lengths
    equal to the performer's in every frame, confidence 1).
    """
    if camera not in CAMERA_YAW_DEG:
        raise ValueError(f"camera must be 1, 2 or 3, got {camera}")
    return _view(_take(performer, action, replication, seed, setup), camera, noise)


def generate_clip(
    performer: Performer,
    action: str | int,
    camera: int,
    replication: int,
    seed: int = 0,
    *,
    noise: bool | NoiseConfig = True,
    setup: int = SETUP,
) -> Array32:
    """Joints ``(T, 25, 3)`` float32 metres (Kinect camera coordinates) of one take.

    See :func:`generate_clip_with_confidence` for the confidence and the geometry.
    """
    return generate_clip_with_confidence(
        performer, action, camera, replication, seed, noise=noise, setup=setup
    ).joints


def demo_clip(action: str | int = "wave", *, performer: int = 1, camera: int = 1, seed: int = 0) -> SynthClip:
    """A ready-made clip for demos: ``performer`` of the default cast doing ``action``."""
    cast = make_performers(max(40, performer), seed)
    return generate_clip_with_confidence(cast[performer - 1], action, camera, 1, seed)
