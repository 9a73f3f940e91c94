"""Where the three Kinects and the performer stand, and the Kinect-like tracking noise.

Cameras (:func:`camera_pose`): camera 1 frontal, 2 and 3 at +45 and -45 degrees about
the vertical. Noise (:class:`NoiseConfig`, calibrated on the real NTU samples): bone-fit
error, slow wander, jitter, glitches on the hands, and the confidences that mark them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import J, Joint
from pmr_stream.synth.arrays import FloatArray
from pmr_stream.synth.kinematics import rot_x, rot_y
from pmr_stream.synth.motion import _smooth

# ----------------------------------------------------------------------------- cameras

#: Azimuth of each camera about the vertical axis through the performer, degrees
#: (right-handed about +y: camera 2 stands at the performer's front-left, 3 front-right).
CAMERA_YAW_DEG: Final[dict[int, float]] = {1: 0.0, 2: 45.0, 3: -45.0}


@dataclass(frozen=True)
class CameraPose:
    """Where a Kinect stands. ``rotation`` maps camera axes to world axes
    (``p_world = rotation @ p_cam + position``); the world is the body frame of
    a performer at the origin facing camera 1, floor at ``y = 0``."""

    camera: int
    yaw_deg: float
    pitch_deg: float
    height_m: float
    distance_m: float
    position: tuple[float, float, float]
    rotation: tuple[tuple[float, float, float], ...]  # 3 rows

    def world_to_camera(self, points: npt.ArrayLike) -> FloatArray:
        """World points ``(..., 3)`` to this camera's Kinect coordinates ``(..., 3)``."""
        p = np.asarray(points, dtype=np.float64)
        return (p - np.asarray(self.position)) @ np.asarray(self.rotation)

    def camera_to_world(self, points: npt.ArrayLike) -> FloatArray:
        p = np.asarray(points, dtype=np.float64)
        return p @ np.asarray(self.rotation).T + np.asarray(self.position)


def camera_pose(camera: int, *, seed: int = 0, setup: int = 1) -> CameraPose:
    """The pose of ``camera`` (1..3) in ``setup``: 0.8-1.0 m high (the same for the
    three cameras of a setup), 2.6-3.4 m from the performer's mark, tilted down by
    2-7 degrees, aimed up to 0.25 m beside the mark."""
    if camera not in CAMERA_YAW_DEG:
        raise ValueError(f"camera must be 1, 2 or 3, got {camera}")
    rs = np.random.default_rng(np.random.SeedSequence([seed, 0xCA3E, setup]))
    height = float(rs.uniform(0.8, 1.0))
    rc = np.random.default_rng(np.random.SeedSequence([seed, 0xCA3E, setup, camera]))
    pitch = float(rc.uniform(2.0, 7.0))
    dist = float(rc.uniform(2.6, 3.4))
    aside = float(rc.uniform(-0.25, 0.25))
    yaw = CAMERA_YAW_DEG[camera]
    ry = rot_y(np.radians(yaw))
    rotation = ry @ rot_x(np.radians(pitch))
    position = ry @ np.array([aside, 0.0, -dist]) + np.array([0.0, height, 0.0])
    return CameraPose(
        camera=camera, yaw_deg=yaw, pitch_deg=pitch, height_m=height, distance_m=dist,
        position=(float(position[0]), float(position[1]), float(position[2])),
        rotation=tuple((float(row[0]), float(row[1]), float(row[2])) for row in rotation),
    )  # fmt: skip


@dataclass(frozen=True)
class Placement:
    """Where a performer stands for a take: world offset (metres) and yaw (degrees, to the left)."""

    offset: tuple[float, float, float]
    yaw_deg: float

    def body_to_world(self, x: FloatArray) -> FloatArray:
        return x @ rot_y(np.radians(self.yaw_deg)).T + np.asarray(self.offset)


def performer_placement(performer: int, replication: int, *, seed: int = 0, setup: int = 1) -> Placement:
    """The performer's mark for one take (shared by the three cameras)."""
    r = np.random.default_rng(np.random.SeedSequence([seed, 0x91ACE, setup, performer, replication]))
    return Placement(
        (float(r.uniform(-0.2, 0.2)), 0.0, float(r.uniform(-0.25, 0.25))), float(r.normal(0.0, 6.0))
    )


# ----------------------------------------------------------------------------- Kinect-like noise


@dataclass(frozen=True)
class NoiseConfig:
    """Kinect v2 tracking noise. Lengths in metres (standard deviations), rates per clip.

    Calibrated on the real samples in ``shared/data/ntu``: the SDK output is
    smooth from frame to frame (median second difference of the trunk joints
    0.5-2 mm) but wanders slowly, so bone lengths vary by about 1-2 cm within
    a clip on the limbs and by millimetres on the neck and head.

    ``jitter_m``: white per-frame noise; ``wander_m``: temporally correlated
    noise (smooth between random knots every ``wander_frames`` frames). Both
    are scaled per joint by :data:`NOISE_SCALE`, ``depth_factor`` times more in
    depth (z), grow with distance (relative to 3 m), and are ``occlusion_factor``
    times larger on the performer's far side in the 45-degree views.
    ``bone_fit`` is a per-clip, per-camera relative error of each bone length
    (Kinect fits its skeleton afresh in every take and view). ``glitch_rate``
    is the mean number of 2-6 frame glitches on a wrist or hand per clip.
    """

    jitter_m: float = 0.0008
    wander_m: float = 0.004
    wander_frames: int = 6
    depth_factor: float = 1.5
    occlusion_factor: float = 1.6
    bone_fit: float = 0.025
    glitch_rate: float = 0.8
    glitch_m: float = 0.07
    tip_inferred: float = 0.12


#: Per-joint multiplier of the noise (hands and feet are noisier than the trunk, the head is steady).
NOISE_SCALE: Final[FloatArray] = np.array(
    [1.0, 1.0, 0.5, 0.6, 1.6, 2.6, 3.0, 3.4, 1.6, 2.6, 3.0, 3.4, 1.4, 2.8, 3.0, 3.4,
     1.4, 2.8, 3.0, 3.4, 0.8, 4.0, 4.0, 4.0, 4.0]
)  # fmt: skip
_LEFT_JOINTS: Final[tuple[int, ...]] = (
    Joint.SHOULDER_LEFT,
    Joint.ELBOW_LEFT,
    Joint.WRIST_LEFT,
    Joint.HAND_LEFT,
    Joint.HIP_LEFT,
    Joint.KNEE_LEFT,
    Joint.ANKLE_LEFT,
    Joint.FOOT_LEFT,
    Joint.HAND_TIP_LEFT,
    Joint.THUMB_LEFT,
)
_RIGHT_JOINTS: Final[tuple[int, ...]] = (
    Joint.SHOULDER_RIGHT,
    Joint.ELBOW_RIGHT,
    Joint.WRIST_RIGHT,
    Joint.HAND_RIGHT,
    Joint.HIP_RIGHT,
    Joint.KNEE_RIGHT,
    Joint.ANKLE_RIGHT,
    Joint.FOOT_RIGHT,
    Joint.HAND_TIP_RIGHT,
    Joint.THUMB_RIGHT,
)
_GLITCH_JOINTS: Final[tuple[int, ...]] = (
    Joint.WRIST_LEFT,
    Joint.HAND_LEFT,
    Joint.HAND_TIP_LEFT,
    Joint.THUMB_LEFT,
    Joint.WRIST_RIGHT,
    Joint.HAND_RIGHT,
    Joint.HAND_TIP_RIGHT,
    Joint.THUMB_RIGHT,
)
_HAND_CHAIN: Final[dict[int, tuple[int, ...]]] = {
    Joint.WRIST_LEFT: (Joint.WRIST_LEFT, Joint.HAND_LEFT, Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT), Joint.HAND_LEFT: (Joint.HAND_LEFT, Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT), Joint.HAND_TIP_LEFT: (Joint.HAND_TIP_LEFT,), Joint.THUMB_LEFT: (Joint.THUMB_LEFT,),
    Joint.WRIST_RIGHT: (Joint.WRIST_RIGHT, Joint.HAND_RIGHT, Joint.HAND_TIP_RIGHT, Joint.THUMB_RIGHT), Joint.HAND_RIGHT: (Joint.HAND_RIGHT, Joint.HAND_TIP_RIGHT, Joint.THUMB_RIGHT), Joint.HAND_TIP_RIGHT: (Joint.HAND_TIP_RIGHT,), Joint.THUMB_RIGHT: (Joint.THUMB_RIGHT,),
}  # fmt: skip


def _noise_scale(distance: float, camera_yaw_deg: float, cfg: NoiseConfig) -> FloatArray:
    """Per-joint, per-axis noise multiplier ``(25, 3)``."""
    scale = NOISE_SCALE.copy()
    if camera_yaw_deg > 1.0:  # camera at the performer's front-left: the right side is further away
        scale[list(_RIGHT_JOINTS)] *= cfg.occlusion_factor
    elif camera_yaw_deg < -1.0:
        scale[list(_LEFT_JOINTS)] *= cfg.occlusion_factor
    return (distance / 3.0) * scale[:, None] * np.array([1.0, 1.0, cfg.depth_factor])


def _add_sensor_noise(
    x: FloatArray, distance: float, camera_yaw_deg: float, cfg: NoiseConfig, rng: np.random.Generator
) -> tuple[FloatArray, npt.NDArray[np.float32]]:
    """Add wander, jitter and glitches to camera-frame joints ``(T, 25, 3)``; return them and the confidence ``(T, 25)``."""
    n = x.shape[0]
    scale = _noise_scale(distance, camera_yaw_deg, cfg)[None]  # (1, 25, 3)
    out = x + rng.normal(0.0, cfg.jitter_m, x.shape) * scale
    step = max(cfg.wander_frames, 1)
    k = n // step + 3
    knots = rng.normal(0.0, cfg.wander_m, (k, J, 3)) * scale  # (K, 25, 3)
    pos = (np.arange(n) + rng.uniform(0, step)) / step
    i = np.floor(pos).astype(int)
    u = _smooth(pos - i)[:, None, None]
    out += knots[i] * (1.0 - u) + knots[i + 1] * u
    conf = np.ones((n, J), dtype=np.float32)
    # Kinect often only infers the hand tips and thumbs, more so on the far side
    tips = [Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT, Joint.HAND_TIP_RIGHT, Joint.THUMB_RIGHT]
    p_inf = np.full(4, cfg.tip_inferred)
    if camera_yaw_deg > 1.0:
        p_inf[2:] *= 2.0
    elif camera_yaw_deg < -1.0:
        p_inf[:2] *= 2.0
    conf[:, tips] = np.where(rng.random((n, 4)) < p_inf, 0.5, 1.0)
    for _ in range(int(rng.poisson(cfg.glitch_rate))):
        joint = int(rng.choice(_GLITCH_JOINTS))
        length = int(rng.integers(2, 7))
        start = int(rng.integers(0, max(n - length, 1)))
        sl = slice(start, start + length)
        chain = list(_HAND_CHAIN[joint])
        if rng.random() < 0.5:  # a jump away
            out[sl, chain] += rng.normal(0.0, cfg.glitch_m, 3)
        else:  # the hand collapses towards the elbow
            elbow = (
                Joint.ELBOW_LEFT
                if joint in (Joint.WRIST_LEFT, Joint.HAND_LEFT, Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT)
                else Joint.ELBOW_RIGHT
            )
            mix = rng.uniform(0.3, 0.8)
            out[sl, chain] = out[sl, chain] * (1 - mix) + out[sl, elbow][:, None] * mix
        conf[sl, chain] = 0.5
    return out, conf
