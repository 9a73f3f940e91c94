"""Deterministic synthetic stand-in for NTU RGB+D skeletons (forward kinematics over NTU-25).

Real NTU RGB+D cannot be downloaded on the project's machines, so training and
evaluation use this stand-in: the same shapes, file names and kinds of labels
(action, performer, gender, camera, replication), and the two signals PMR is
about -- *what* is done (the action) and *who* does it (body proportions and
motion style).

How a clip is made
==================

1. **Performers** (:func:`make_performers`): sex, height and 24 bone lengths
   (constant for a performer; proportions calibrated on the real Kinect v2
   skeletons in ``shared/data/ntu``), and a motion style (tempo, amplitude,
   posture, handedness, idiosyncratic offsets).
2. **Actions** (:data:`ACTIONS`, 19 of them: drink, wave, clap, jump, squat,
   kick, punch, bow, walk_in_place, raise_both_arms, point, sit_down, salute,
   arm_circles, side_bend, phone_call, touch_head, check_watch,
   palms_together): functions of time giving per-joint local rotations
   (Euler angles, see below), an optional flight height (jumps) and a body
   yaw. Tempo scales the speed and amplitude the angles; repetitions vary in
   period and size; actions come in variants (e.g. a cup held with both
   hands, hands on the hips while kicking) and takes include incidental
   movements (looking around, shifting the weight). One-handed actions use
   the dominant side; left-handed performers get the mirrored motion.
3. **Forward kinematics** (:func:`forward_kinematics`) over the NTU-25 tree,
   vectorised over frames. The root is then placed so that the feet stay on
   the floor (a soft "lowest foot" constraint, also horizontally), except
   during a jump's flight.
4. **Cameras** (:func:`camera_pose`): three Kinect views like NTU's, camera 1
   frontal, cameras 2 and 3 at +45 and -45 degrees about the vertical axis,
   2.6-3.4 m from the performer's mark (which moves by up to 0.25 m per
   take), 0.8-1.0 m high, tilted down by 2-7 degrees. The three cameras film
   the same performance (as in NTU, where they record simultaneously).
5. **Kinect-like noise** (:class:`NoiseConfig`, calibrated on the real
   samples): a per-take, per-camera bone-fit error, slow per-joint wander and
   a little per-frame jitter (more on hands and feet, more in depth, more on
   the far side in the 45-degree views), short glitches on wrists and hands,
   and confidences (1.0 tracked, 0.5 inferred) that mark them.

Frames and rotations
====================

*Body frame* (a performer standing at the origin facing camera 1): metres,
``+x`` the performer's right, ``+y`` up, ``+z`` backwards (away from camera 1;
the performer faces ``-z``), the floor at ``y = 0``. It equals the Kinect
camera convention of :mod:`pmr_stream.skeleton` for an upright camera 1.

*Rest pose*: standing upright, arms hanging, feet pointing forward. Every
joint ``c`` has a unit rest direction ``REST_DIRECTIONS[c]`` of the bone from
its parent to it.

*Local rotations*: ``local[j]`` rotates the bones that leave joint ``j``
(towards its children) relative to ``j``'s parent frame. With Euler angles
``(ax, ay, az)`` radians, ``local = Rz(az) @ Rx(ax) @ Ry(ay)`` (twist about
the bone first, then flexion, then ab/adduction). For a hanging limb ``+ax``
swings it forward, ``+az`` towards ``+x``; ``+ay`` turns a forward-pointing
vector towards ``-x``. FK::

    G[root] = R_yaw @ local[root]
    G[c]    = G[parent] @ local[c]
    P[c]    = P[parent] + G[parent] @ (REST_DIRECTIONS[c] * length[c])

The legs are posed relative to the upright body, not the pelvis: the FK undoes
the pelvis rotation at the hips, so a bow bends the trunk and leaves the legs
standing.

Determinism
===========

Everything is drawn from :class:`numpy.random.SeedSequence` keyed on the seed
and the clip's identity (performer, action, replication, camera), so a clip
does not depend on which other clips are generated or in what order, and the
same seed gives byte-identical arrays.

This module must stay importable without torch (the runtime uses
:class:`SyntheticStream` and :func:`demo_clip`).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import FPS, NTU25, NTU_JOINT_NAMES, J

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Array32 = npt.NDArray[np.float32]
#: An angle in degrees, constant or per frame ``(T,)``.
Angle = float | FloatArray

# ----------------------------------------------------------------------------- joints

SB, SM, NECK, HEAD = 0, 1, 2, 3
SH_L, EL_L, WR_L, HA_L = 4, 5, 6, 7
SH_R, EL_R, WR_R, HA_R = 8, 9, 10, 11
HIP_L, KN_L, AN_L, FT_L = 12, 13, 14, 15
HIP_R, KN_R, AN_R, FT_R = 16, 17, 18, 19
SS, TIP_L, TH_L, TIP_R, TH_R = 20, 21, 22, 23, 24

_SIDE: Final[dict[str, dict[str, int]]] = {
    "R": {"sh": SH_R, "el": EL_R, "wr": WR_R, "ha": HA_R, "hip": HIP_R, "kn": KN_R, "an": AN_R, "ft": FT_R},
    "L": {"sh": SH_L, "el": EL_L, "wr": WR_L, "ha": HA_L, "hip": HIP_L, "kn": KN_L, "an": AN_L, "ft": FT_L},
}
#: +1 for the right side, -1 for the left: angles that point away from the
#: midline (abduction, internal rotation) change sign between the sides.
_SIGN: Final[dict[str, float]] = {"R": 1.0, "L": -1.0}

#: Bone index (in ``NTU25.bones`` order) of the bone that ends at each joint (-1 for the root).
BONE_OF_JOINT: Final[tuple[int, ...]] = tuple(
    next((b for b, (c, _) in enumerate(NTU25.bones) if c == j), -1) for j in range(J)
)


def _unit(v: Sequence[float]) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64)
    a = a / np.linalg.norm(a)
    return (float(a[0]), float(a[1]), float(a[2]))


#: Unit rest direction ``(25, 3)`` of the bone from each joint's parent to it,
#: body frame (x right, y up, z backwards); the root's entry is zero.
REST_DIRECTIONS: Final[FloatArray] = np.array(
    [
        (0.0, 0.0, 0.0),  # SpineBase (root)
        _unit((0, 1, 0.02)),  # SpineMid
        _unit((0, 1, -0.08)),  # Neck
        _unit((0, 1, -0.05)),  # Head
        _unit((-1, -0.12, 0.02)),  # ShoulderLeft (clavicle)
        (0.0, -1.0, 0.0),  # ElbowLeft
        (0.0, -1.0, 0.0),  # WristLeft
        (0.0, -1.0, 0.0),  # HandLeft
        _unit((1, -0.12, 0.02)),  # ShoulderRight
        (0.0, -1.0, 0.0),  # ElbowRight
        (0.0, -1.0, 0.0),  # WristRight
        (0.0, -1.0, 0.0),  # HandRight
        _unit((-1, -0.12, 0)),  # HipLeft
        (0.0, -1.0, 0.0),  # KneeLeft
        (0.0, -1.0, 0.0),  # AnkleLeft
        _unit((0, -0.55, -1)),  # FootLeft (forward and down)
        _unit((1, -0.12, 0)),  # HipRight
        (0.0, -1.0, 0.0),  # KneeRight
        (0.0, -1.0, 0.0),  # AnkleRight
        _unit((0, -0.55, -1)),  # FootRight
        _unit((0, 1, 0.03)),  # SpineShoulder
        _unit((0.05, -1, -0.1)),  # HandTipLeft
        _unit((0.35, -0.45, -0.8)),  # ThumbLeft (forward, towards the body)
        _unit((-0.05, -1, -0.1)),  # HandTipRight
        _unit((-0.35, -0.45, -0.8)),  # ThumbRight
    ]
)

#: Mean bone lengths (metres, ``NTU25.bones`` order, left/right averaged) of the
#: four performers in the real samples (P001, P003, P008, P015; per-clip medians
#: averaged per performer, then over performers), measured on
#: shared/data/ntu/*.skeleton. Kinect v2 skeletons are shorter than the body
#: (joint centres, the head joint at the head's centre).
KINECT_MEAN_BONES_M: Final[tuple[float, ...]] = (
    0.274, 0.067, 0.067, 0.203, 0.321, 0.321, 0.067, 0.146, 0.146, 0.340, 0.340, 0.122,
    0.234, 0.234, 0.109, 0.109, 0.216, 0.216, 0.065, 0.065, 0.049, 0.039, 0.049, 0.039,
)  # fmt: skip
#: Height the mean bones above are taken to belong to (a mixed NTU cohort).
REFERENCE_HEIGHT_M: Final[float] = 1.68

_BONE_NAMES: Final[tuple[str, ...]] = tuple(
    f"{NTU_JOINT_NAMES[p]}-{NTU_JOINT_NAMES[c]}" for c, p in NTU25.bones
)


def _bone_index(child: int) -> int:
    return BONE_OF_JOINT[child]


_B_HIP = (_bone_index(HIP_L), _bone_index(HIP_R))
_B_CLAV = (_bone_index(SH_L), _bone_index(SH_R))
_B_THIGH = (_bone_index(KN_L), _bone_index(KN_R))
_B_SHIN = (_bone_index(AN_L), _bone_index(AN_R))
_B_UPPER = (_bone_index(EL_L), _bone_index(EL_R))
_B_FORE = (_bone_index(WR_L), _bone_index(WR_R))
_B_TRUNK = (_bone_index(SM), _bone_index(SS), _bone_index(NECK))
_B_HEAD = (_bone_index(HEAD),)
_B_HANDS = tuple(_bone_index(j) for j in (HA_L, HA_R, TIP_L, TIP_R, TH_L, TH_R))
_B_FEET = (_bone_index(FT_L), _bone_index(FT_R))

#: Pairs of bones (left, right), used for the left/right symmetry of a body.
BONE_MIRROR_PAIRS: Final[tuple[tuple[int, int], ...]] = tuple(
    (BONE_OF_JOINT[a], BONE_OF_JOINT[b]) for a, b in NTU25.left_right_pairs
)

# ----------------------------------------------------------------------------- performers

Sex = Literal["male", "female"]
Handedness = Literal["right", "left"]


@dataclass(frozen=True)
class Style:
    """How a performer moves. Angles in degrees, frequencies in Hz.

    ``tempo`` multiplies the speed of every action (1.25 = 25 % faster),
    ``amplitude`` scales the action's joint angles. The posture angles are
    added to every frame; ``habit_seed`` draws the performer's per-action
    habits (e.g. how high they lift the elbow when drinking).
    """

    tempo: float
    amplitude: float
    handedness: Handedness
    lean_deg: float  # forward lean of the lower trunk (+ forwards)
    slouch_deg: float  # forward curl of the upper trunk (+ forwards)
    head_pitch_deg: float  # head bent forwards (+) or up (-)
    head_roll_deg: float  # head tilted towards the right shoulder (+)
    stance_deg: float  # hip abduction of each leg (feet apart)
    toe_out_deg: float  # feet turned outwards
    knee_bend_deg: float  # habitual knee flexion
    arm_abduction_deg: float  # arms held away from the body at rest
    elbow_carry_deg: float  # habitual elbow flexion
    shoulder_drop_deg: float  # right shoulder lower than the left (+)
    arm_swing_phase: float  # arm swing lead/lag in walking, fraction of a cycle
    arm_swing_gain: float  # arm swing amplitude in walking (x)
    sway_deg: float  # amplitude of a habitual side-to-side sway of the trunk
    sway_hz: float
    fidget: float  # amplitude of small random idle motion (x)
    habit_seed: int


@dataclass(frozen=True)
class Performer:
    """A stand-in performer.

    Attributes:
        id: 1-based performer number (the ``P`` of ``SsssCcccPpppRrrrAaaa``).
        sex: ``"male"`` or ``"female"``.
        height_m: standing height in metres (1.50-1.95).
        bone_lengths: 24 lengths in metres, in ``NTU25.bones`` order (constant
            for the performer, like a real body).
        style: how the performer moves.
    """

    id: int
    sex: Sex
    height_m: float
    bone_lengths: tuple[float, ...]
    style: Style

    @property
    def handedness(self) -> Handedness:
        return self.style.handedness

    @property
    def gender_label(self) -> int:
        """1 for male, 0 for female (the label convention of the dataset files)."""
        return 1 if self.sex == "male" else 0

    def bones(self) -> FloatArray:
        """Bone lengths ``(24,)`` metres as an array."""
        return np.asarray(self.bone_lengths, dtype=np.float64)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["bone_lengths"] = [round(b, 5) for b in self.bone_lengths]
        d["bone_names"] = list(_BONE_NAMES)
        return d


def _sex_factors(sex: Sex) -> FloatArray:
    """Multiplicative proportions ``(24,)`` of one sex relative to the mixed mean."""
    f = np.ones(24)
    male = sex == "male"
    for b in _B_CLAV:
        f[b] = 1.06 if male else 0.93  # shoulder width
    for b in _B_HIP:
        f[b] = 0.95 if male else 1.08  # pelvis width
    for b in _B_UPPER + _B_FORE:
        f[b] = 1.015 if male else 0.98
    for b in _B_TRUNK:
        f[b] = 0.99 if male else 1.01
    for b in _B_HANDS + _B_FEET:
        f[b] = 1.03 if male else 0.96
    return f


def _make_bones(sex: Sex, height: float, rng: np.random.Generator) -> FloatArray:
    """Bone lengths ``(24,)`` metres: mean proportions x sex x segment and per-bone variation.

    Segment factors (legs, arms, trunk, shoulder and pelvis width) vary by a
    few percent and are shared by a segment's bones; every bone varies a
    little more on its own. Left and right get the same factor up to ~0.7 %.
    """
    base = np.asarray(KINECT_MEAN_BONES_M) * (height / REFERENCE_HEIGHT_M) * _sex_factors(sex)
    f = np.ones(24)
    groups = {
        _B_THIGH: 0.025, _B_SHIN: 0.025, _B_UPPER: 0.03, _B_FORE: 0.03, _B_TRUNK[:2]: 0.03,
        _B_CLAV: 0.05, _B_HIP: 0.06, _B_HEAD + (_B_TRUNK[2],): 0.04, _B_FEET: 0.04,
    }  # fmt: skip
    for bones, sd in groups.items():
        f[list(bones)] *= 1.0 + rng.normal(0.0, sd)
    # individual variation, symmetric between the sides
    own = rng.normal(0.0, 0.03, 24)
    for a, b in BONE_MIRROR_PAIRS:
        own[b] = own[a]
    own += rng.normal(0.0, 0.007, 24)
    f *= 1.0 + own
    return base * f


def _make_style(rng: np.random.Generator, sex: Sex, handed: Handedness) -> Style:
    return Style(
        tempo=float(np.clip(rng.normal(1.0, 0.11), 0.8, 1.25)),
        amplitude=float(np.clip(rng.normal(1.0, 0.1), 0.8, 1.2)),
        handedness=handed,
        lean_deg=float(rng.normal(3.0, 3.0)),
        slouch_deg=float(rng.normal(4.0, 4.0)),
        head_pitch_deg=float(rng.normal(3.0, 5.0)),
        head_roll_deg=float(rng.normal(0.0, 3.0)),
        stance_deg=float(np.clip(rng.normal(4.0 if sex == "male" else 2.5, 1.8), 0.0, 9.0)),
        toe_out_deg=float(np.clip(rng.normal(10.0, 6.0), -3.0, 25.0)),
        knee_bend_deg=float(np.clip(rng.normal(4.0, 3.0), 0.0, 12.0)),
        arm_abduction_deg=float(np.clip(rng.normal(3.5 if sex == "male" else 2.0, 2.0), -1.0, 9.0)),
        elbow_carry_deg=float(np.clip(rng.normal(12.0, 6.0), 0.0, 30.0)),
        shoulder_drop_deg=float(rng.normal(0.0, 1.5)),
        arm_swing_phase=float(rng.normal(0.0, 0.06)),
        arm_swing_gain=float(np.clip(rng.normal(1.0, 0.3), 0.3, 1.7)),
        sway_deg=float(abs(rng.normal(1.2, 0.8))),
        sway_hz=float(rng.uniform(0.15, 0.5)),
        fidget=float(np.clip(rng.normal(1.0, 0.35), 0.3, 2.0)),
        habit_seed=int(rng.integers(0, 2**31 - 1)),
    )


#: NTU RGB+D 60 has 23 male and 17 female performers among P001-P040.
NTU_MALE_FRACTION: Final[float] = 23 / 40
#: About one person in ten is left-handed.
LEFT_HANDED_FRACTION: Final[float] = 0.1


def make_performers(n: int = 40, seed: int = 0) -> list[Performer]:
    """``n`` deterministic stand-in performers (ids 1..n).

    The sexes follow NTU's 23 male / 17 female ratio (exactly 23/17 for 40);
    heights are drawn per sex (male ~ N(1.74, 0.065), female ~ N(1.61, 0.055)
    metres, clipped to 1.50-1.95); ``round(n / 10)`` performers are left-handed
    (4 of 40).
    """
    if n < 1:
        raise ValueError(f"need at least one performer, got n={n}")
    n_male = int(round(n * NTU_MALE_FRACTION))
    n_left = int(round(n * LEFT_HANDED_FRACTION))
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7])).permutation(n)
    sexes: list[Sex] = ["male" if order[i] < n_male else "female" for i in range(n)]
    hand_order = np.random.default_rng(np.random.SeedSequence([seed, 0x1EF7])).permutation(n)
    hands: list[Handedness] = ["left" if hand_order[i] < n_left else "right" for i in range(n)]
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB0D7, i + 1]))
        sex = sexes[i]
        if sex == "male":
            h = float(np.clip(rng.normal(1.74, 0.065), 1.55, 1.95))
        else:
            h = float(np.clip(rng.normal(1.61, 0.055), 1.50, 1.80))
        bones = _make_bones(sex, h, rng)
        style = _make_style(rng, sex, hands[i])
        out.append(Performer(i + 1, sex, round(h, 4), tuple(float(b) for b in bones), style))
    return out


# ----------------------------------------------------------------------------- rotations and FK


def euler_to_matrix(angles: npt.ArrayLike) -> FloatArray:
    """Rotation matrices ``(..., 3, 3)`` from Euler angles ``(..., 3)`` radians: ``Rz(az) @ Rx(ax) @ Ry(ay)``."""
    a = np.asarray(angles, dtype=np.float64)
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    r = np.empty(a.shape[:-1] + (3, 3))
    # Rz @ Rx @ Ry written out.
    r[..., 0, 0] = cz * cy - sz * sx * sy
    r[..., 0, 1] = -sz * cx
    r[..., 0, 2] = cz * sy + sz * sx * cy
    r[..., 1, 0] = sz * cy + cz * sx * sy
    r[..., 1, 1] = cz * cx
    r[..., 1, 2] = sz * sy - cz * sx * cy
    r[..., 2, 0] = -cx * sy
    r[..., 2, 1] = sx
    r[..., 2, 2] = cx * cy
    return r


def rot_y(angle: npt.ArrayLike) -> FloatArray:
    """Rotation ``(..., 3, 3)`` about +y by ``angle`` radians (right-handed: +x towards -z)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    r[..., 0, 0] = c
    r[..., 0, 2] = s
    r[..., 1, 1] = 1.0
    r[..., 2, 0] = -s
    r[..., 2, 2] = c
    return r


def rot_x(angle: npt.ArrayLike) -> FloatArray:
    """Rotation ``(..., 3, 3)`` about +x by ``angle`` radians (+y towards +z)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    r[..., 0, 0] = 1.0
    r[..., 1, 1] = c
    r[..., 1, 2] = -s
    r[..., 2, 1] = s
    r[..., 2, 2] = c
    return r


_HIPS: Final = (HIP_L, HIP_R)


def forward_kinematics(
    local: npt.ArrayLike,
    bone_lengths: npt.ArrayLike,
    root_position: npt.ArrayLike | None = None,
    root_rotation: npt.ArrayLike | None = None,
    *,
    legs_upright: bool = True,
) -> FloatArray:
    """Joint positions ``(T, 25, 3)`` metres from local rotations.

    Args:
        local: ``(T, 25, 3, 3)`` local rotation of each joint (rotating the
            bones that leave it), see the module docstring.
        bone_lengths: ``(24,)`` metres in ``NTU25.bones`` order, or
            ``(T, 24)`` (per-frame lengths, used for the noise model only).
        root_position: ``(T, 3)`` SpineBase position (default the origin).
        root_rotation: ``(T, 3, 3)`` global rotation applied before the root's
            local rotation (e.g. the body yaw; default identity).
        legs_upright: pose the legs relative to the upright body instead of the
            pelvis: the hips' local rotations are pre-multiplied by the inverse
            of the root's local rotation.

    Returns:
        ``(T, 25, 3)`` float64 positions.
    """
    loc = np.asarray(local, dtype=np.float64)
    n = loc.shape[0]
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    if lengths.ndim == 1:
        lengths = np.broadcast_to(lengths, (n, lengths.shape[0]))
    g = np.empty((n, J, 3, 3))
    p = np.zeros((n, J, 3))
    g[:, SB] = loc[:, SB] if root_rotation is None else np.asarray(root_rotation) @ loc[:, SB]
    if root_position is not None:
        p[:, SB] = np.asarray(root_position, dtype=np.float64)
    pelvis_inv = np.swapaxes(loc[:, SB], -1, -2) if legs_upright else None
    for b, (c, par) in enumerate(NTU25.bones):
        offset = REST_DIRECTIONS[c][None, :] * lengths[:, b : b + 1]  # (T, 3)
        p[:, c] = p[:, par] + np.einsum("tij,tj->ti", g[:, par], offset)
        lc = loc[:, c]
        if pelvis_inv is not None and c in _HIPS:
            lc = pelvis_inv @ lc
        g[:, c] = g[:, par] @ lc
    return p


# ----------------------------------------------------------------------------- motion representation


@dataclass
class Motion:
    """An action's motion over ``T`` frames, before posture, grounding and camera.

    Attributes:
        angles: ``(T, 25, 3)`` degrees, Euler ``(ax, ay, az)`` per joint (see the
            module docstring; the hips' angles are relative to the upright body).
        lift: ``(T,)`` metres the body is above its grounded height (flight).
        yaw: ``(T,)`` degrees the body turns to its left about the vertical.
    """

    angles: FloatArray
    lift: FloatArray
    yaw: FloatArray

    @classmethod
    def zeros(cls, n: int) -> Motion:
        return cls(np.zeros((n, J, 3)), np.zeros(n), np.zeros(n))

    @property
    def num_frames(self) -> int:
        return int(self.angles.shape[0])

    def mirrored(self) -> Motion:
        """The motion mirrored through the body's sagittal plane (left and right swapped)."""
        perm = list(NTU25.mirror_permutation)
        a = self.angles[:, perm].copy()
        a[..., 1] *= -1.0  # M Ry(a) M = Ry(-a)
        a[..., 2] *= -1.0  # M Rz(a) M = Rz(-a)
        return Motion(a, self.lift.copy(), -self.yaw)

    def __add__(self, other: Motion) -> Motion:
        return Motion(self.angles + other.angles, self.lift + other.lift, self.yaw + other.yaw)

    # -- semantic setters (degrees; arrays broadcast over frames) -------------------

    def arm(
        self,
        side: str,
        *,
        flex: Angle = 0.0,
        abd: Angle = 0.0,
        twist: Angle = 0.0,
        elbow: Angle = 0.0,
        pron: Angle = 0.0,
        wrist: Angle = 0.0,
    ) -> Motion:
        """Add arm angles: shoulder ``flex`` (forwards), ``abd`` (sideways, away from
        the body), ``twist`` (internal rotation), ``elbow`` flexion, forearm
        ``pron``-ation and ``wrist`` flexion."""
        j, s = _SIDE[side], _SIGN[side]
        a = self.angles
        a[:, j["sh"], 0] += flex
        a[:, j["sh"], 1] += np.multiply(s, twist)
        a[:, j["sh"], 2] += np.multiply(s, abd)
        a[:, j["el"], 0] += elbow
        a[:, j["el"], 1] += np.multiply(s, pron)
        a[:, j["wr"], 0] += wrist
        return self

    def leg(
        self,
        side: str,
        *,
        flex: Angle = 0.0,
        abd: Angle = 0.0,
        twist: Angle = 0.0,
        knee: Angle = 0.0,
        ankle: Angle = 0.0,
        flat_foot: bool = True,
    ) -> Motion:
        """Add leg angles: hip ``flex`` (thigh forwards), ``abd`` (sideways out),
        ``twist`` (toes in), ``knee`` flexion, ``ankle`` (toes up). With
        ``flat_foot`` the ankle also undoes the thigh and shin pitch so the foot
        keeps its orientation."""
        j, s = _SIDE[side], _SIGN[side]
        a = self.angles
        a[:, j["hip"], 0] += flex
        a[:, j["hip"], 1] += np.multiply(s, twist)
        a[:, j["hip"], 2] += np.multiply(s, abd)
        a[:, j["kn"], 0] -= knee
        a[:, j["an"], 0] += ankle
        if flat_foot:
            a[:, j["an"], 0] -= np.subtract(flex, knee)
            a[:, j["an"], 2] -= np.multiply(s, abd)
        return self

    def trunk(self, *, bend: Angle = 0.0, side: Angle = 0.0, twist: Angle = 0.0) -> Motion:
        """Add trunk angles, spread over the lower back, mid back and upper back:
        ``bend`` forwards, ``side`` towards the right, ``twist`` to the left."""
        for joint, w in ((SB, 0.5), (SM, 0.3), (SS, 0.2)):
            self.angles[:, joint, 0] -= np.multiply(w, bend)
            self.angles[:, joint, 2] -= np.multiply(w, side)
            self.angles[:, joint, 1] += np.multiply(w, twist)
        return self

    def head(self, *, nod: Angle = 0.0, roll: Angle = 0.0, turn: Angle = 0.0) -> Motion:
        """Add head angles at the neck: ``nod`` forwards, ``roll`` to the right, ``turn`` to the left."""
        self.angles[:, NECK, 0] -= nod
        self.angles[:, NECK, 2] -= roll
        self.angles[:, NECK, 1] += turn
        return self


# ----------------------------------------------------------------------------- time helpers


def _smooth(x: npt.ArrayLike) -> FloatArray:
    """Smoothstep: 0 below 0, 1 above 1, C1 in between."""
    u = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _rise(tau: FloatArray, t0: float, dur: float) -> FloatArray:
    """0 before ``t0``, smoothly 1 after ``t0 + dur`` (seconds)."""
    return _smooth((tau - t0) / max(dur, 1e-6))


def _window(tau: FloatArray, t0: float, t1: float, rise: float, fall: float) -> FloatArray:
    """Smoothly 1 on ``[t0 + rise, t1 - fall]``, 0 outside ``[t0, t1]``."""
    return _rise(tau, t0, rise) * (1.0 - _rise(tau, t1 - fall, fall))


def _keys(tau: FloatArray, times: Sequence[float], values: Sequence[float]) -> FloatArray:
    """Ease-in-out interpolation through keyframes ``(times[i], values[i])``; constant outside."""
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    idx = np.clip(np.searchsorted(t, tau, side="right") - 1, 0, len(t) - 2)
    u = _smooth((tau - t[idx]) / np.maximum(t[idx + 1] - t[idx], 1e-6))
    out = v[idx] + (v[idx + 1] - v[idx]) * u
    out = np.where(tau <= t[0], v[0], out)
    return np.where(tau >= t[-1], v[-1], out)


@dataclass(frozen=True)
class _Cycles:
    """Repetitions with individual periods (s) and amplitudes, starting at ``t0``."""

    t0: float
    periods: tuple[float, ...]
    amps: tuple[float, ...]

    @property
    def duration(self) -> float:
        return float(sum(self.periods))

    def phase(self, tau: FloatArray) -> FloatArray:
        """Cycles completed at ``tau`` (0 before ``t0``, ``len(periods)`` after the end)."""
        edges = self.t0 + np.concatenate([[0.0], np.cumsum(self.periods)])
        return np.interp(tau, edges, np.arange(len(self.periods) + 1, dtype=np.float64))

    def amp(self, tau: FloatArray) -> FloatArray:
        """Amplitude of the repetition under way at ``tau``, interpolated between repetitions."""
        mids = self.t0 + np.cumsum(self.periods) - 0.5 * np.asarray(self.periods)
        return np.interp(tau, mids, np.asarray(self.amps))


def _cycles(rng: np.random.Generator, t0: float, n: int, period: float, jitter: float = 0.1) -> _Cycles:
    periods = tuple(float(period * rng.uniform(1 - jitter, 1 + jitter)) for _ in range(n))
    amps = tuple(float(rng.uniform(0.85, 1.15)) for _ in range(n))
    return _Cycles(t0, periods, amps)


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Habit:
    """A performer's habits for one action: offsets (degrees) and a speed factor."""

    flex: float
    abd: float
    elbow: float
    knee: float
    trunk: float
    head: float
    speed: float


def performer_habit(performer: Performer, action: str) -> Habit:
    """The habit of ``performer`` for ``action`` (deterministic)."""
    rng = np.random.default_rng(
        np.random.SeedSequence([performer.style.habit_seed, 0x4AB, action_index(action)])
    )
    return Habit(
        flex=float(rng.normal(0, 7)), abd=float(rng.normal(0, 6)), elbow=float(rng.normal(0, 8)),
        knee=float(rng.normal(0, 6)), trunk=float(rng.normal(0, 4)), head=float(rng.normal(0, 4)),
        speed=float(np.clip(rng.normal(1.0, 0.07), 0.85, 1.15)),
    )  # fmt: skip


def _clip_habit(h: Habit, rng: np.random.Generator) -> Habit:
    """A performer's habit varied for one take (nobody does an action twice the same way)."""
    return Habit(
        flex=h.flex + float(rng.normal(0, 7)), abd=h.abd + float(rng.normal(0, 7)),
        elbow=h.elbow + float(rng.normal(0, 9)), knee=h.knee + float(rng.normal(0, 6)),
        trunk=h.trunk + float(rng.normal(0, 4)), head=h.head + float(rng.normal(0, 5)), speed=h.speed,
    )  # fmt: skip


def incidental_motion(t: FloatArray, rng: np.random.Generator, free_arm: str | None) -> Motion:
    """Occasional movements unrelated to the action (as in real recordings): looking
    around, shifting the weight, scratching the head with a free arm (``"R"`` or
    ``"L"``, or ``None``). ``t`` is the clip time in seconds."""
    m = Motion.zeros(len(t))
    span = float(t[-1]) if len(t) else 0.0
    if rng.random() < 0.35:  # look around
        t0 = rng.uniform(0, max(span - 1.0, 0.1))
        w = _window(t, t0, t0 + rng.uniform(0.8, 1.6), 0.35, 0.35)
        m.head(turn=w * rng.normal(0, 25), nod=w * rng.normal(0, 8))
    if rng.random() < 0.35:  # shift the weight
        m.angles[:, SB, 2] += rng.normal(0, 4) * _rise(t, rng.uniform(0, span), rng.uniform(0.5, 1.2))
    if free_arm is not None and rng.random() < 0.15 and span > 2.0:  # scratch the head
        t0 = rng.uniform(0, span - 1.6)
        w = _window(t, t0, t0 + rng.uniform(1.0, 1.6), 0.4, 0.4)
        m.arm(free_arm, flex=w * 95, abd=w * 80, twist=-w * 56, elbow=w * 115, pron=-w * 85)
    return m


@dataclass(frozen=True)
class ActionContext:
    """What an action's planner gets: randomness for this clip, the amplitude
    (performer x clip), the performer's habit and style, and the longest core
    duration (nominal seconds) that still fits a 150-frame clip."""

    rng: np.random.Generator
    amp: float
    habit: Habit
    style: Style
    max_duration: float


#: An action's planner returns its core duration (nominal seconds at tempo 1)
#: and the motion as a function of the action time ``tau`` (seconds, ``(T,)``;
#: negative before the action starts, beyond the duration after it ends).
Planner = Callable[[ActionContext], tuple[float, Callable[[FloatArray], Motion]]]


@dataclass(frozen=True)
class ActionDef:
    """A stand-in action: its name, whether it is done with the dominant hand or
    foot (mirrored for left-handed performers), and its planner."""

    name: str
    one_sided: bool
    plan: Planner
    description: str


def _reps_fitting(n: int, fixed: float, per_rep: float, max_duration: float) -> int:
    while n > 1 and fixed + n * per_rep > max_duration:
        n -= 1
    return n


#: Arm poses (degrees) for an arm the action leaves free, and for variants.
ARM_POSES: Final[dict[str, dict[str, float]]] = {
    "hip": {"flex": 1.0, "abd": 40.0, "twist": 88.0, "elbow": 76.0},  # hand on the hip
    "belly": {"flex": 5.0, "abd": -15.0, "twist": 20.0, "elbow": 85.0},  # forearm across the belly
    "clasped": {"flex": 15.0, "abd": -12.0, "twist": 35.0, "elbow": 30.0},  # hands together low in front
}


def _pick_free_arm(rng: np.random.Generator, p_hang: float = 0.65) -> str | None:
    """What a free arm does: hang (``None``), or one of :data:`ARM_POSES` "hip" / "belly"."""
    u = rng.random()
    if u < p_hang:
        return None
    return "hip" if u < p_hang + (1 - p_hang) * 0.45 else "belly"


def _hold_arm(m: Motion, side: str, pose: str | None, w: npt.ArrayLike = 1.0) -> None:
    if pose is not None:
        m.arm(side, **{k: np.multiply(w, v) for k, v in ARM_POSES[pose].items()})


def _plan_drink(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    reach, hold, back = r.uniform(0.7, 0.95), r.uniform(0.9, 1.6), r.uniform(0.7, 0.9)
    dur = reach + hold + back
    tilt = r.uniform(8, 16) * a
    two_handed = r.random() < 0.25  # a cup held with both hands
    free = None if two_handed else _pick_free_arm(r)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, reach, back)
        sip = _window(tau, reach, reach + hold, 0.35, 0.3)
        m.arm("R", flex=w * (49 + 0.5 * h.flex), abd=w * (-16 + 0.5 * h.abd), twist=w * 53,
              elbow=w * (128 + 0.3 * h.elbow) + sip * 6, wrist=-sip * 25)  # fmt: skip
        if two_handed:
            m.arm("L", flex=w * 44, abd=-w * 18, twist=w * 58, elbow=w * 118, wrist=-sip * 15)
        _hold_arm(m, "L", free)
        m.head(nod=-sip * tilt + w * 0.3 * h.head)
        m.trunk(bend=-sip * 3)
        return m

    return dur, motion


def _plan_wave(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, down = r.uniform(0.5, 0.7), r.uniform(0.5, 0.7)
    period = r.uniform(0.38, 0.5)
    n = _reps_fitting(int(r.integers(3, 7)), up + down, period, ctx.max_duration)
    cyc = _cycles(r, up, n, period)
    dur = up + cyc.duration + down
    low = r.random() < 0.25  # a small wave with the elbow lower
    raise_deg = (r.uniform(45, 60) if low else r.uniform(75, 95)) + h.abd
    fwd = r.uniform(25, 40) if low else 15.0
    free = _pick_free_arm(r)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        osc = np.sin(2 * np.pi * cyc.phase(tau)) * cyc.amp(tau) * 28 * a
        m.arm("R", flex=w * (fwd + 0.5 * h.flex), abd=w * raise_deg, twist=-w * 90,
              elbow=w * (95 + 0.5 * h.elbow) + w * osc, wrist=-w * 10)  # fmt: skip
        m.trunk(side=-w * 3)
        _hold_arm(m, "L", free)
        return m

    return dur, motion


def _plan_clap(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, down = r.uniform(0.45, 0.6), r.uniform(0.45, 0.6)
    period = r.uniform(0.33, 0.45)
    n = _reps_fitting(int(r.integers(4, 9)), up + down, period, ctx.max_duration)
    cyc = _cycles(r, up, n, period)
    dur = up + cyc.duration + down
    height = r.uniform(-8, 12) + h.flex

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        # 0 = hands together, 1 = apart
        apart = 0.5 - 0.5 * np.cos(2 * np.pi * cyc.phase(tau))
        apart = apart * cyc.amp(tau) * a
        for side in ("R", "L"):
            m.arm(side, flex=w * (25 + height), abd=w * (4 + 10 * apart + 0.3 * h.abd),
                  twist=w * (28 - 38 * apart), elbow=w * (95 + 0.5 * h.elbow))  # fmt: skip
        return m

    return dur, motion


def _plan_jump(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    n_jumps = 1 if r.random() < 0.65 else 2
    keys_t: list[float] = [0.0]
    crouch: list[float] = [0.0]
    flights: list[tuple[float, float, float]] = []
    t = 0.0
    for _ in range(n_jumps):
        prep = r.uniform(0.35, 0.5)
        push = r.uniform(0.12, 0.18)
        height = r.uniform(0.12, 0.26) * a
        flight = 2.0 * math.sqrt(2.0 * height / 9.81)
        land = r.uniform(0.25, 0.35)
        recover = r.uniform(0.3, 0.45)
        depth = r.uniform(0.8, 1.1)
        keys_t += [t + prep, t + prep + push, t + prep + push + flight, t + prep + push + flight + land,
                   t + prep + push + flight + land + recover]  # fmt: skip
        crouch += [depth, -0.15, -0.1, 0.8 * depth, 0.0]
        flights.append((t + prep + push, flight, height))
        t = keys_t[-1]
    dur = t
    hips = r.random() < 0.3  # hands on the hips, no arm swing

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        c = _keys(tau, keys_t, crouch)
        bend = np.clip(c, 0.0, None)
        extend = np.clip(-c, 0.0, None)  # pointed toes
        for side in ("R", "L"):
            m.leg(side, flex=bend * (45 + 0.5 * h.knee), knee=bend * (60 + h.knee), ankle=-extend * 150)
            if hips:
                _hold_arm(m, side, "hip")
            else:  # arms swing back in the crouch, forwards and up for the take-off
                m.arm(side, flex=-bend * 35 + extend * 400 * a, elbow=10 + bend * 15, abd=5)
        m.trunk(bend=bend * (22 + h.trunk))
        m.head(nod=-bend * 10)
        for t0, fl, hgt in flights:
            s = np.clip((tau - t0) / fl, 0.0, 1.0)
            m.lift += np.where((tau > t0) & (tau < t0 + fl), 4.0 * hgt * s * (1.0 - s), 0.0)
        return m

    return dur, motion


def _plan_squat(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    per = r.uniform(2.0, 2.6)
    n = _reps_fitting(int(r.choice([1, 2, 2, 3])), 0.0, per, ctx.max_duration)
    keys_t, depth = [0.0], [0.0]
    t = 0.0
    for _ in range(n):
        down, hold, up, pause = r.uniform(0.8, 1.1), r.uniform(0.15, 0.5), r.uniform(0.8, 1.0), 0.2
        d = r.uniform(0.75, 1.0) * min(a, 1.1)
        keys_t += [t + down, t + down + hold, t + down + hold + up, t + down + hold + up + pause]
        depth += [d, d, 0.0, 0.0]
        t = keys_t[-1]
    dur = t
    arms = str(r.choice(["forward", "forward", "hip", "belly"]))

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        d = _keys(tau, keys_t, depth)
        for side in ("R", "L"):
            m.leg(side, flex=d * (100 + h.knee), knee=d * (120 + h.knee), abd=d * 8)
            if arms == "forward":
                m.arm(side, flex=d * (80 + h.flex), elbow=d * 10, abd=d * 5)
            else:
                _hold_arm(m, side, arms)
        m.trunk(bend=d * (38 + h.trunk))
        m.head(nod=-d * 25)
        return m

    return dur, motion


def _plan_kick(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    n = 1 if r.random() < 0.6 else 2
    keys_t, chamber, ext = [0.0], [0.0], [0.0]
    t = 0.0
    for _ in range(n):
        c1, e1, hold, c2, down, pause = (r.uniform(0.25, 0.4), r.uniform(0.15, 0.22), r.uniform(0.05, 0.15),
                                         r.uniform(0.2, 0.3), r.uniform(0.3, 0.4), r.uniform(0.15, 0.3))  # fmt: skip
        keys_t += [t + c1, t + c1 + e1, t + c1 + e1 + hold, t + c1 + e1 + hold + c2,
                   t + c1 + e1 + hold + c2 + down, t + c1 + e1 + hold + c2 + down + pause]  # fmt: skip
        chamber += [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
        ext += [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
        t = keys_t[-1]
    dur = t
    height = r.uniform(55, 80) * a + h.flex
    hips = r.random() < 0.3

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        c = _keys(tau, keys_t, chamber)
        e = _keys(tau, keys_t, ext)
        m.leg("R", flex=c * (height - 10) + e * 10, knee=c * 90 * (1 - e) + c * 8 * e,
              ankle=-e * 30, flat_foot=False)  # fmt: skip
        m.leg("L", knee=c * 8, flex=c * 4)  # the standing leg gives a little
        m.trunk(bend=-c * (8 + e * 6) + 0.3 * h.trunk * c)
        for side in ("R", "L"):
            if hips:
                _hold_arm(m, side, "hip")
            else:
                m.arm(side, abd=c * 22, flex=c * 15, elbow=c * 25)
        return m

    return dur, motion


def _plan_punch(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, down = r.uniform(0.45, 0.6), r.uniform(0.45, 0.6)
    period = r.uniform(0.45, 0.6)
    n = _reps_fitting(int(r.integers(2, 5)), up + down + 0.1, period, ctx.max_duration)
    cyc = _cycles(r, up + 0.1, n, period)
    dur = up + 0.1 + cyc.duration + down
    out_frac = r.uniform(0.25, 0.35)
    alternate = r.random() < 0.35  # left-right combination instead of jabs with one arm

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        ph = cyc.phase(tau)
        frac = ph - np.floor(ph)
        active = (ph > 0) & (ph < len(cyc.periods))
        # fast out, slower back
        p = np.where(
            frac < out_frac, _smooth(frac / out_frac), 1.0 - _smooth((frac - out_frac) / (1 - out_frac))
        )
        p = np.where(active, p, 0.0) * np.clip(cyc.amp(tau) * a, 0.0, 1.0)
        odd = (np.floor(ph).astype(int) % 2 == 1) & alternate
        p_r, p_l = np.where(odd, 0.0, p), np.where(odd, p, 0.0)
        guard = dict(flex=31.0, abd=-11.0, twist=21.0, elbow=115.0)
        strike = dict(flex=88.0 + 0.3 * h.flex, abd=-6.0, twist=0.0, elbow=6.0)
        m.arm("R", **{k: w * ((1 - p_r) * guard[k] + p_r * strike[k]) for k in guard})
        m.arm("L", **{k: w * ((1 - p_l) * guard[k] + p_l * strike[k]) for k in guard})
        m.trunk(twist=(p_r - p_l) * 14 * a, bend=w * 5)
        return m

    return dur, motion


def _plan_bow(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    down, hold, up = r.uniform(0.8, 1.1), r.uniform(0.4, 0.9), r.uniform(0.8, 1.0)
    depth = r.uniform(40, 60) * a + h.trunk
    dur = down + hold + up
    clasped = r.random() < 0.35  # hands together in front

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, down, up)
        m.trunk(bend=w * depth)
        m.head(nod=w * (12 + h.head))
        for side in ("R", "L"):
            if clasped:
                _hold_arm(m, side, "clasped")
            else:
                m.arm(side, flex=w * 8, elbow=w * 5)
        return m

    return dur, motion


def _plan_walk(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a, st = ctx.rng, ctx.habit, ctx.amp, ctx.style
    period = r.uniform(0.95, 1.2)
    start, stop = 0.35, 0.35
    n = _reps_fitting(int(r.integers(3, 6)), start + stop, period, ctx.max_duration)
    cyc = _cycles(r, 0.0, n, period, jitter=0.06)
    dur = cyc.duration
    lift_deg = r.uniform(30, 45) * a + h.knee
    swing_gain = st.arm_swing_gain * (r.uniform(0.2, 0.5) if r.random() < 0.2 else r.uniform(0.8, 1.2))

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, start, stop)
        ph = 2 * np.pi * cyc.phase(tau)
        amp = cyc.amp(tau) * w
        lift_r = np.clip(np.sin(ph), 0.0, None) ** 1.3 * amp
        lift_l = np.clip(np.sin(ph + np.pi), 0.0, None) ** 1.3 * amp
        m.leg("R", flex=lift_r * lift_deg, knee=lift_r * lift_deg * 1.7)
        m.leg("L", flex=lift_l * lift_deg, knee=lift_l * lift_deg * 1.7)
        swing = np.sin(ph + 2 * np.pi * st.arm_swing_phase) * 22 * swing_gain * amp
        m.arm("R", flex=-swing, elbow=w * 20 + np.clip(-swing, 0, None) * 0.5)
        m.arm("L", flex=swing, elbow=w * 20 + np.clip(swing, 0, None) * 0.5)
        m.trunk(twist=np.sin(ph) * 4 * amp, side=np.sin(ph) * 2 * amp)
        return m

    return dur, motion


def _plan_raise_arms(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    n = 1 if r.random() < 0.6 else 2
    keys_t, lvl = [0.0], [0.0]
    t = 0.0
    for _ in range(n):
        up, hold, down, pause = r.uniform(0.7, 1.0), r.uniform(0.5, 1.1), r.uniform(0.7, 1.0), 0.15
        keys_t += [t + up, t + up + hold, t + up + hold + down, t + up + hold + down + pause]
        lvl += [1.0, 1.0, 0.0, 0.0]
        t = keys_t[-1]
    dur = t
    top = min(r.uniform(150, 172) * (0.85 + 0.15 * a), 178) + 0.5 * h.flex
    side = r.uniform(5, 25) + h.abd
    sideways = r.random() < 0.4  # raised through the side instead of the front

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        v = _keys(tau, keys_t, lvl)
        for s in ("R", "L"):
            if sideways:
                m.arm(s, abd=v * (top - side), flex=v * 10, elbow=v * 8)
            else:
                # overhead, a positive abduction angle would bring the arm across: use its negative
                m.arm(s, flex=v * top, abd=-v * side, elbow=v * 8)
        m.head(nod=-v * 12)
        m.trunk(bend=-v * 4)
        return m

    return dur, motion


def _plan_point(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, hold, down = r.uniform(0.45, 0.7), r.uniform(0.8, 1.5), r.uniform(0.5, 0.7)
    dur = up + hold + down
    flex = r.uniform(65, 95) + h.flex
    abd = r.uniform(0, 40) + h.abd
    free = _pick_free_arm(r)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        m.arm("R", flex=w * flex, abd=w * abd, elbow=w * 6, wrist=-w * 8)
        _hold_arm(m, "L", free)
        m.head(turn=-w * 0.5 * abd, nod=-w * 0.2 * (flex - 70))
        m.trunk(twist=-w * 0.15 * abd * a)
        return m

    return dur, motion


def _plan_sit_down(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    descend = r.uniform(1.1, 1.5)
    seated = r.uniform(0.8, 1.5)
    dur = descend + seated
    lean = r.uniform(25, 40) * a + h.trunk
    knee = r.uniform(80, 95) + 0.5 * h.knee
    on_thighs = r.random() < 0.65  # else the arms hang beside the chair

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        d = _rise(tau, 0.0, descend)
        lean_w = _window(tau, 0.0, descend + 0.5, descend * 0.5, 0.6)
        for side in ("R", "L"):
            m.leg(side, flex=d * 90, knee=d * knee, abd=d * 5)
            if on_thighs:
                m.arm(side, flex=d * 35 + lean_w * 15, elbow=d * 50, abd=d * 5)
            else:
                m.arm(side, flex=lean_w * 20, elbow=d * 15, abd=d * 12)
        m.trunk(bend=lean_w * lean + d * 8)
        m.head(nod=-lean_w * 15)
        return m

    return dur, motion


def _plan_salute(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, hold, down = r.uniform(0.35, 0.55), r.uniform(0.8, 1.4), r.uniform(0.4, 0.6)
    dur = up + hold + down
    free = _pick_free_arm(r, p_hang=0.8)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        _hold_arm(m, "L", free)
        m.arm("R", flex=w * (50 + 0.4 * h.flex), abd=w * (92 + 0.4 * h.abd), twist=-w * 70,
              elbow=w * 123, pron=-w * 47)  # fmt: skip
        m.head(nod=-w * 3 * a)
        return m

    return dur, motion


def _plan_arm_circles(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, down = r.uniform(0.5, 0.7), r.uniform(0.5, 0.7)
    period = r.uniform(0.6, 0.85)
    n = _reps_fitting(int(r.integers(3, 7)), up + down, period, ctx.max_duration)
    cyc = _cycles(r, up, n, period)
    dur = up + cyc.duration + down
    radius = r.uniform(16, 26) * a
    direction = 1.0 if r.random() < 0.5 else -1.0

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        ph = 2 * np.pi * cyc.phase(tau) * direction
        rad = radius * cyc.amp(tau) * w
        for s in ("R", "L"):
            m.arm(s, abd=w * (85 + h.abd) + rad * np.cos(ph), flex=w * 5 + rad * np.sin(ph), elbow=w * 8)
        return m

    return dur, motion


def _plan_side_bend(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    first = 1.0 if r.random() < 0.5 else -1.0
    keys_t, lean = [0.0], [0.0]
    t = 0.0
    for s in (first, -first):
        go, hold, back = r.uniform(0.8, 1.0), r.uniform(0.2, 0.5), r.uniform(0.6, 0.8)
        keys_t += [t + go, t + go + hold, t + go + hold + back]
        lean += [s, s, 0.0]
        t = keys_t[-1]
    dur = t
    depth = r.uniform(22, 32) * a + 0.5 * h.trunk

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        v = _keys(tau, keys_t, lean)
        m.trunk(side=v * depth)
        right_up = np.clip(-v, 0.0, None)  # bending left: the right arm goes over the head
        left_up = np.clip(v, 0.0, None)
        m.arm("R", abd=right_up * 160, elbow=right_up * 25, flex=right_up * 10)
        m.arm("L", abd=left_up * 160, elbow=left_up * 25, flex=left_up * 10)
        m.head(roll=v * 8)
        return m

    return dur, motion


def _plan_phone_call(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    reach, hold, back = r.uniform(0.55, 0.8), r.uniform(1.4, 2.4), r.uniform(0.55, 0.75)
    dur = reach + hold + back
    roll = r.uniform(5, 12)
    free = _pick_free_arm(r)
    talk_hz = r.uniform(0.8, 1.5)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, reach, back)
        hold_w = _window(tau, reach, reach + hold, 0.3, 0.3)
        m.arm("R", flex=w * (80 + 0.4 * h.flex), abd=w * (40 + 0.4 * h.abd), twist=-w * 20,
              elbow=w * (140 + 0.2 * h.elbow), pron=w * 30)  # fmt: skip
        m.head(roll=w * roll, nod=hold_w * 3 * a * np.sin(2 * np.pi * talk_hz * tau) + w * 0.3 * h.head)
        _hold_arm(m, "L", free)
        return m

    return dur, motion


def _plan_touch_head(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    reach, hold, back = r.uniform(0.5, 0.75), r.uniform(1.0, 2.0), r.uniform(0.5, 0.7)
    dur = reach + hold + back
    pain = r.uniform(8, 18) * a
    rub_hz = r.uniform(1.5, 2.5)
    free = _pick_free_arm(r)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, reach, back)
        rub = _window(tau, reach, reach + hold, 0.2, 0.2) * 6 * np.sin(2 * np.pi * rub_hz * tau)
        m.arm("R", flex=w * (95 + 0.4 * h.flex), abd=w * (80 + 0.4 * h.abd), twist=-w * 56,
              elbow=w * 110 + rub, pron=-w * 85)  # fmt: skip
        m.head(nod=w * pain)
        m.trunk(bend=w * 5)
        _hold_arm(m, "L", free)
        return m

    return dur, motion


def _plan_check_watch(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, hold, down = r.uniform(0.5, 0.7), r.uniform(1.0, 1.8), r.uniform(0.45, 0.65)
    dur = up + hold + down
    look = r.uniform(20, 32) * a
    sleeve = r.random() < 0.4  # the other hand pulls the sleeve back first

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        # the watch is on the non-dominant (left) wrist
        m.arm(
            "L",
            flex=w * (53 + 0.4 * h.flex),
            abd=w * (37 + 0.3 * h.abd),
            twist=w * 42,
            elbow=w * 84,
            pron=w * 40,
        )
        m.head(nod=w * (look + h.head), turn=w * 8)
        if sleeve:
            s = _window(tau, 0.2 * up, up + 0.5, 0.4, 0.35)
            m.arm("R", flex=s * 45, abd=-s * 15, twist=s * 45, elbow=s * 95)
        return m

    return dur, motion


def _plan_palms_together(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
    r, h, a = ctx.rng, ctx.habit, ctx.amp
    up, hold, down = r.uniform(0.6, 0.8), r.uniform(1.2, 2.2), r.uniform(0.55, 0.75)
    dur = up + hold + down
    bow = r.uniform(8, 20) * a if r.random() < 0.5 else 0.0
    height = r.uniform(-8, 10)

    def motion(tau: FloatArray) -> Motion:
        m = Motion.zeros(len(tau))
        w = _window(tau, 0.0, dur, up, down)
        bw = _window(tau, up, up + hold, 0.4, 0.4)
        for side in ("R", "L"):
            m.arm(side, flex=w * (9 + height + 0.3 * h.flex), abd=-w * 18, twist=w * 24,
                  elbow=w * (104 + 0.2 * h.elbow), wrist=w * 30)  # fmt: skip
        m.head(nod=bw * bow)
        m.trunk(bend=bw * 0.5 * bow)
        return m

    return dur, motion


#: The stand-in's actions; the ``A`` in a file name is the 1-based index in this list.
ACTIONS: Final[tuple[ActionDef, ...]] = (
    ActionDef("drink", True, _plan_drink, "bring the dominant hand to the mouth, tilt the head back"),
    ActionDef("wave", True, _plan_wave, "raise the dominant arm and wave the forearm"),
    ActionDef("clap", False, _plan_clap, "clap the hands in front of the chest"),
    ActionDef("jump", False, _plan_jump, "jump up once or twice with an arm swing"),
    ActionDef("squat", False, _plan_squat, "squat down and up, one to three times"),
    ActionDef("kick", True, _plan_kick, "kick forwards with the dominant leg"),
    ActionDef("punch", True, _plan_punch, "guard up, jab with the dominant arm"),
    ActionDef("bow", False, _plan_bow, "bow from the hips"),
    ActionDef("walk_in_place", False, _plan_walk, "march on the spot with an arm swing"),
    ActionDef("raise_both_arms", False, _plan_raise_arms, "raise both arms over the head"),
    ActionDef("point", True, _plan_point, "point forwards with the dominant arm"),
    ActionDef("sit_down", False, _plan_sit_down, "sit down on a chair (ends seated)"),
    ActionDef("salute", True, _plan_salute, "military salute with the dominant hand"),
    ActionDef("arm_circles", False, _plan_arm_circles, "both arms out to the side, circling"),
    ActionDef(
        "side_bend", False, _plan_side_bend, "bend the trunk to each side, the other arm over the head"
    ),
    ActionDef("phone_call", True, _plan_phone_call, "hold a phone to the ear with the dominant hand"),
    ActionDef("touch_head", True, _plan_touch_head, "hand on the forehead (headache), head bent"),
    ActionDef("check_watch", True, _plan_check_watch, "raise the non-dominant wrist and look at the watch"),
    ActionDef("palms_together", False, _plan_palms_together, "put the palms together in front of the chest"),
)
ACTION_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in ACTIONS)
#: Which arms an action uses (in its right-handed form): "R" leaves the left arm free.
_ARMS_USED: Final[dict[str, str]] = {
    name: ("R" if name in ("drink", "wave", "point", "salute", "phone_call", "touch_head") else "both")
    for name in ACTION_NAMES
}
_ACTION_BY_NAME: Final[dict[str, ActionDef]] = {a.name: a for a in ACTIONS}


def action_index(action: str | int) -> int:
    """1-based action number (the ``A`` of a file name) of an action name or number."""
    if isinstance(action, str):
        if action not in _ACTION_BY_NAME:
            raise KeyError(f"unknown action {action!r}; known: {', '.join(ACTION_NAMES)}")
        return ACTION_NAMES.index(action) + 1
    a = int(action)
    if not 1 <= a <= len(ACTIONS):
        raise ValueError(f"action number must be 1..{len(ACTIONS)}, got {a}")
    return a


def action_name(action: str | int) -> str:
    """The name of an action given by name or 1-based number."""
    return ACTION_NAMES[action_index(action) - 1]


# ----------------------------------------------------------------------------- posture and idle motion


def posture_motion(style: Style, n: int) -> Motion:
    """The performer's constant posture over ``n`` frames (see :class:`Style`)."""
    m = Motion.zeros(n)
    m.angles[:, SB, 0] -= style.lean_deg
    m.angles[:, SM, 0] -= 0.5 * style.slouch_deg
    m.angles[:, SS, 0] -= 0.5 * style.slouch_deg
    m.angles[:, SS, 2] -= style.shoulder_drop_deg  # right shoulder lower
    m.angles[:, NECK, 2] += style.shoulder_drop_deg  # the head stays level
    m.head(nod=style.head_pitch_deg, roll=style.head_roll_deg)
    for side in ("R", "L"):
        m.leg(side, abd=style.stance_deg, twist=-style.toe_out_deg, flex=0.5 * style.knee_bend_deg,
              knee=style.knee_bend_deg)  # fmt: skip
        m.arm(side, abd=style.arm_abduction_deg, elbow=style.elbow_carry_deg, flex=3.0)
    return m


def idle_motion(style: Style, t: FloatArray, phase: float = 0.0) -> Motion:
    """Small involuntary motion at absolute times ``t`` (seconds): breathing, the
    performer's habitual sway and some fidgeting. ``phase`` (radians) shifts it."""
    rng = np.random.default_rng(np.random.SeedSequence([style.habit_seed, 0x1D1E]))
    f = rng.uniform(0.1, 0.6, 6)
    p = rng.uniform(0, 2 * np.pi, 6) + phase
    m = Motion.zeros(len(t))
    tw = 2 * np.pi * t
    m.angles[:, SM, 0] += 0.6 * np.sin(tw * 0.27 + p[0])  # breathing
    sway = style.sway_deg * np.sin(tw * style.sway_hz + p[1])
    m.angles[:, SB, 2] += sway
    m.angles[:, NECK, 2] -= 0.5 * sway
    g = style.fidget
    m.head(turn=2.0 * g * np.sin(tw * f[2] + p[2]), nod=1.5 * g * np.sin(tw * f[3] + p[3]))
    m.arm("R", flex=1.5 * g * np.sin(tw * f[4] + p[4]))
    m.arm("L", flex=1.5 * g * np.sin(tw * f[5] + p[5]))
    return m


# ----------------------------------------------------------------------------- body pose and grounding

#: Height of the Foot joints above the floor when standing (metres).
FOOT_CLEARANCE_M: Final[float] = 0.035
_SOLE_SOFTNESS_M: Final[float] = 0.015


def _standing_feet(performer_bones: FloatArray, style: Style) -> FloatArray:
    """Ankle positions ``(2, 2)`` (x, z) of the standing posture, relative to their midpoint."""
    post = posture_motion(style, 1)
    x = forward_kinematics(euler_to_matrix(np.radians(post.angles)), performer_bones)[0]
    feet = x[[AN_L, AN_R]][:, [0, 2]]
    return feet - feet.mean(axis=0)


def pose_body(motion: Motion, bones: npt.ArrayLike, standing_feet: npt.ArrayLike | None = None) -> FloatArray:
    """Body-frame joint positions ``(T, 25, 3)`` metres of a motion, standing on the floor.

    The root is placed so that the lower foot (soft minimum of ankle and Foot
    joint heights) is at the floor and the supporting foot stays where it
    stands in ``standing_feet`` ((2, 2): left and right ankle x, z; default:
    the rest stance), then the motion's ``lift`` is added (flight).
    """
    b = np.asarray(bones, dtype=np.float64)
    local = euler_to_matrix(np.radians(motion.angles))  # (T, 25, 3, 3)
    x = forward_kinematics(local, b, None, rot_y(np.radians(motion.yaw)))  # (T, 25, 3)
    sole = np.minimum(x[:, [AN_L, AN_R], 1], x[:, [FT_L, FT_R], 1])  # (T, 2)
    w = np.exp(-(sole - sole.min(axis=1, keepdims=True)) / _SOLE_SOFTNESS_M)
    w /= w.sum(axis=1, keepdims=True)
    floor = (w * sole).sum(axis=1)  # (T,)
    if standing_feet is None:
        feet0 = x[0, [AN_L, AN_R]][:, [0, 2]]
        standing = feet0 - feet0.mean(axis=0)
    else:
        standing = np.asarray(standing_feet, dtype=np.float64)
    ankles = x[:, [AN_L, AN_R]][:, :, [0, 2]]  # (T, 2, 2)
    shift = (w[..., None] * (ankles - standing[None])).sum(axis=1)  # (T, 2)
    out = x.copy()
    out[..., 0] -= shift[:, 0:1]
    out[..., 2] -= shift[:, 1:2]
    out[..., 1] -= (floor - FOOT_CLEARANCE_M)[:, None]
    out[..., 1] += motion.lift[:, None]
    return out


# ----------------------------------------------------------------------------- cameras

#: Azimuth of each camera about the vertical axis through the performer, degrees
#: (right-handed about +y: camera 2 stands at the performer's front-left, 3 front-right).
CAMERA_YAW_DEG: Final[dict[int, float]] = {1: 0.0, 2: 45.0, 3: -45.0}
#: Cross-view split of the paper: train on cameras 2 and 3, test on camera 1.
TRAIN_CAMERAS: Final[tuple[int, ...]] = (2, 3)
TEST_CAMERAS: Final[tuple[int, ...]] = (1,)


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
_LEFT_JOINTS: Final[tuple[int, ...]] = (SH_L, EL_L, WR_L, HA_L, HIP_L, KN_L, AN_L, FT_L, TIP_L, TH_L)
_RIGHT_JOINTS: Final[tuple[int, ...]] = (SH_R, EL_R, WR_R, HA_R, HIP_R, KN_R, AN_R, FT_R, TIP_R, TH_R)
_GLITCH_JOINTS: Final[tuple[int, ...]] = (WR_L, HA_L, TIP_L, TH_L, WR_R, HA_R, TIP_R, TH_R)
_HAND_CHAIN: Final[dict[int, tuple[int, ...]]] = {
    WR_L: (WR_L, HA_L, TIP_L, TH_L), HA_L: (HA_L, TIP_L, TH_L), TIP_L: (TIP_L,), TH_L: (TH_L,),
    WR_R: (WR_R, HA_R, TIP_R, TH_R), HA_R: (HA_R, TIP_R, TH_R), TIP_R: (TIP_R,), TH_R: (TH_R,),
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
    tips = [TIP_L, TH_L, TIP_R, TH_R]
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
            elbow = EL_L if joint in (WR_L, HA_L, TIP_L, TH_L) else EL_R
            mix = rng.uniform(0.3, 0.8)
            out[sl, chain] = out[sl, chain] * (1 - mix) + out[sl, elbow][:, None] * mix
        conf[sl, chain] = 0.5
    return out, conf


# ----------------------------------------------------------------------------- clips

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
        dist = float(np.linalg.norm(cam_x[:, SB].mean(axis=0)))
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


# ----------------------------------------------------------------------------- datasets

#: Version of the stand-in's npz layout (see :meth:`StandinData.save_npz`).
NPZ_FORMAT_VERSION: Final[int] = 1
#: Gender label convention of the dataset files.
GENDER_LABELS: Final[dict[str, int]] = {"female": 0, "male": 1}


@dataclass(frozen=True)
class StandinSpec:
    """What stand-in dataset to generate (the default: NTU-like, 40 performers x
    15 actions x 3 cameras x 2 replications = 3600 clips)."""

    performers: int = 40
    actions: tuple[str, ...] = ACTION_NAMES
    cameras: tuple[int, ...] = (1, 2, 3)
    replications: int = 2
    seed: int = 0
    setup: int = SETUP
    noise: bool = True

    def __post_init__(self) -> None:
        for a in self.actions:
            action_index(a)
        for c in self.cameras:
            if c not in CAMERA_YAW_DEG:
                raise ValueError(f"cameras must be among 1, 2, 3, got {c}")
        if self.performers < 1 or self.replications < 1:
            raise ValueError("need at least one performer and one replication")

    @property
    def num_clips(self) -> int:
        return self.performers * len(self.actions) * len(self.cameras) * self.replications


@dataclass
class StandinData:
    """A generated stand-in dataset held in memory.

    Clip ``i`` is ``joints[offsets[i]:offsets[i + 1]]`` (``(T_i, 25, 3)`` float32
    metres, Kinect camera coordinates). Labels per clip: ``action`` (0-based
    index into ``action_names``, i.e. ``A - 1``), ``performer`` (0-based,
    ``P - 1``), ``gender`` (1 male, 0 female), ``camera`` and ``replication``
    (1-based, as in the file names), ``setup``; ``names`` the file stems.
    """

    joints: Array32
    confidence: Array32
    offsets: npt.NDArray[np.int64]
    action: npt.NDArray[np.int64]
    performer: npt.NDArray[np.int64]
    gender: npt.NDArray[np.int64]
    camera: npt.NDArray[np.int64]
    replication: npt.NDArray[np.int64]
    setup: npt.NDArray[np.int64]
    names: npt.NDArray[np.str_]
    action_names: tuple[str, ...]
    performers: list[Performer]
    seed: int

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def clip(self, i: int) -> Array32:
        """Joints ``(T_i, 25, 3)`` of clip ``i`` (a view)."""
        return self.joints[self.offsets[i] : self.offsets[i + 1]]

    def clip_confidence(self, i: int) -> Array32:
        return self.confidence[self.offsets[i] : self.offsets[i + 1]]

    @property
    def split(self) -> npt.NDArray[np.str_]:
        """``"train"`` (cameras 2, 3) or ``"test"`` (camera 1) per clip: the paper's cross-view split."""
        return np.where(np.isin(self.camera, TRAIN_CAMERAS), "train", "test").astype("<U5")

    def labels_dict(self) -> dict[str, object]:
        """The content of ``labels.json``: action names and the split."""
        return {
            "dataset": "pmr-stream stand-in for NTU RGB+D (synthetic)",
            "format_version": NPZ_FORMAT_VERSION,
            "seed": self.seed,
            "action_names": list(self.action_names),
            "action_label": "A - 1 (0-based index into action_names)",
            "performer_label": "P - 1",
            "gender_labels": GENDER_LABELS,
            "split": {
                "name": "cross-view",
                "train_cameras": list(TRAIN_CAMERAS),
                "test_cameras": list(TEST_CAMERAS),
            },
            "num_clips": len(self),
        }

    def performers_dict(self) -> dict[str, object]:
        """The content of ``performers.json``: one entry per performer (id, sex, height, ...)."""
        return {
            "performers": [
                {"id": p.id, "gender": p.sex, "gender_label": p.gender_label, "height_m": p.height_m,
                 "handedness": p.handedness, "bone_lengths_m": [round(b, 5) for b in p.bone_lengths]}
                for p in self.performers
            ],
            "bone_names": list(_BONE_NAMES),
        }  # fmt: skip

    def save_npz(self, path: str | Path) -> Path:
        """Write one ``.npz`` (no pickled objects: loads with ``allow_pickle=False``).

        Arrays: ``joints`` (sum T, 25, 3) float32, ``confidence`` (sum T, 25)
        float16 (values 0.5 and 1.0), ``offsets`` (N + 1,) int64, label arrays ``action``,
        ``performer``, ``gender``, ``camera``, ``replication``, ``setup`` (N,)
        int64, ``names`` and ``split`` (N,) unicode, ``action_names`` (A,)
        unicode, the performer table ``performer_id``, ``performer_gender``
        (unicode), ``performer_height_m``, ``performer_handedness``,
        ``performer_bone_lengths`` (P, 24), and ``train_cameras``,
        ``test_cameras``, ``seed``, ``format_version``.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        width = max(len(a) for a in self.action_names)
        np.savez(
            out,
            joints=self.joints, confidence=self.confidence.astype(np.float16), offsets=self.offsets,
            action=self.action, performer=self.performer, gender=self.gender, camera=self.camera,
            replication=self.replication, setup=self.setup, names=self.names.astype("<U20"),
            split=self.split, action_names=np.array(self.action_names, dtype=f"<U{width}"),
            performer_id=np.array([p.id for p in self.performers], dtype=np.int64),
            performer_gender=np.array([p.sex for p in self.performers], dtype="<U6"),
            performer_height_m=np.array([p.height_m for p in self.performers], dtype=np.float64),
            performer_handedness=np.array([p.handedness for p in self.performers], dtype="<U5"),
            performer_bone_lengths=np.array([p.bone_lengths for p in self.performers], dtype=np.float64),
            train_cameras=np.array(TRAIN_CAMERAS, dtype=np.int64), test_cameras=np.array(TEST_CAMERAS, dtype=np.int64),
            seed=np.int64(self.seed), format_version=np.int64(NPZ_FORMAT_VERSION),
        )  # fmt: skip
        return out

    def write_skeletons(
        self, out_dir: str | Path, *, progress: bool = False, workers: int | None = None
    ) -> Path:
        """Write one ``SsssCcccPpppRrrrAaaa.skeleton`` per clip plus ``labels.json`` and ``performers.json``.

        Formatting the text is the slow part (about 30 ms a clip), so it runs in
        ``workers`` processes (default: one per CPU; forked, POSIX only, else serial).
        """
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        n = len(self)
        if workers is None:
            workers = os.cpu_count() or 1
        workers = max(1, min(workers, n // 50 or 1))
        chunks = [range(i, min(i + 25, n)) for i in range(0, n, 25)]
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            global _WRITE_JOB
            _WRITE_JOB = (self, d)
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    done = pool.imap_unordered(_write_chunk, [(c.start, c.stop) for c in chunks])
                    for k in _progress_iter(
                        done, progress, "writing .skeleton", total=n, unit_of=lambda c: c
                    ):
                        _ = k
            finally:
                _WRITE_JOB = None
        else:
            for c in _progress_iter(iter(chunks), progress, "writing .skeleton", total=n, unit_of=len):
                _write_range(self, d, c.start, c.stop)
        (d / "labels.json").write_text(json.dumps(self.labels_dict(), indent=2) + "\n")
        (d / "performers.json").write_text(json.dumps(self.performers_dict(), indent=2) + "\n")
        return d


_BODY_ID_BASE: Final[int] = 72057594037927936
_WRITE_JOB: tuple[StandinData, Path] | None = None


def _write_range(data: StandinData, out_dir: Path, start: int, stop: int) -> int:
    from pmr_stream.formats.ntu import NtuSkeleton, write_skeleton

    for i in range(start, stop):
        # micrometre decimals: short text, and the writer's float32 round trip is skipped (3x faster)
        xyz = np.round(data.clip(i).astype(np.float64), 6)
        skel = NtuSkeleton.from_arrays(
            xyz[:, None], data.clip_confidence(i)[:, None],
            body_ids=[_BODY_ID_BASE + int(data.performer[i])], source=str(data.names[i]),
        )  # fmt: skip
        write_skeleton(out_dir / f"{data.names[i]}.skeleton", skel)
    return stop - start


def _write_chunk(bounds: tuple[int, int]) -> int:
    assert _WRITE_JOB is not None
    return _write_range(_WRITE_JOB[0], _WRITE_JOB[1], *bounds)


def _progress_iter(
    it: Iterator[Any], enabled: bool, desc: str, *, total: int, unit_of: Callable[[Any], int]
) -> Iterator[Any]:
    """Iterate ``it``, advancing a tqdm bar by ``unit_of(item)`` clips per item when ``enabled``."""
    if not enabled:
        yield from it
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="clip") as bar:
        for item in it:
            bar.update(unit_of(item))
            yield item


def generate_standin(spec: StandinSpec = StandinSpec(), *, progress: bool = False) -> StandinData:
    """Generate the stand-in dataset in memory (deterministic by ``spec.seed``).

    Clips are ordered by performer, action, replication, camera.
    """
    cast = make_performers(spec.performers, spec.seed)
    clips: list[SynthClip] = []
    total = spec.num_clips
    t0 = time.perf_counter()

    def views() -> Iterator[SynthClip]:
        for p in cast:
            for a in spec.actions:
                for r in range(1, spec.replications + 1):
                    take = _take(p, a, r, spec.seed, spec.setup)
                    for c in spec.cameras:
                        yield _view(take, c, spec.noise)

    for clip in _progress_iter(views(), progress, "generating stand-in", total=total, unit_of=lambda _: 1):
        clips.append(clip)
    lengths = np.array([c.num_frames for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = StandinData(
        joints=np.concatenate([c.joints for c in clips]).astype(np.float32),
        confidence=np.concatenate([c.confidence for c in clips]).astype(np.float32),
        offsets=offsets,
        action=np.array([c.action - 1 for c in clips], dtype=np.int64),
        performer=np.array([c.performer - 1 for c in clips], dtype=np.int64),
        gender=np.array([cast[c.performer - 1].gender_label for c in clips], dtype=np.int64),
        camera=np.array([c.camera for c in clips], dtype=np.int64),
        replication=np.array([c.replication for c in clips], dtype=np.int64),
        setup=np.array([c.setup for c in clips], dtype=np.int64),
        names=np.array([c.name for c in clips], dtype="<U20"),
        action_names=ACTION_NAMES,
        performers=cast,
        seed=spec.seed,
    )
    log.info(
        "generated %d stand-in clips (%d frames) in %.1f s",
        len(clips),
        int(offsets[-1]),
        time.perf_counter() - t0,
    )
    return data


def generate_dataset(
    spec: StandinSpec = StandinSpec(),
    out_dir: str | Path = "data/standin",
    fmt: Literal["skeleton", "npz"] = "skeleton",
    progress: bool = True,
) -> Path:
    """Generate the stand-in and write it.

    ``fmt="skeleton"``: ``out_dir`` gets one ``SsssCcccPpppRrrrAaaa.skeleton``
    per clip (setup 1, ``A`` = 1-based index in :data:`ACTION_NAMES`) plus
    ``labels.json`` and ``performers.json``; returns ``out_dir``.
    ``fmt="npz"``: one file (``out_dir`` itself when it ends in ``.npz``, else
    ``out_dir/standin.npz``, see :meth:`StandinData.save_npz`); returns its path.
    """
    data = generate_standin(spec, progress=progress)
    out = Path(out_dir)
    if fmt == "npz":
        path = out if out.suffix == ".npz" else out / "standin.npz"
        return data.save_npz(path)
    if fmt == "skeleton":
        return data.write_skeletons(out, progress=progress)
    raise ValueError(f"fmt must be 'skeleton' or 'npz', got {fmt!r}")


# ----------------------------------------------------------------------------- live stream


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
            tips = [TIP_L, TH_L, TIP_R, TH_R]
            conf[:, tips] = np.where(self._rng.random((n, 4)) < NoiseConfig().tip_inferred, 0.5, 1.0)
        for i in range(n):
            self._buffer.append((x[i].astype(np.float32), conf[i], a))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pmr_stream.synth [--out DIR] [--fmt skeleton|npz] ...``: write the stand-in."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m pmr_stream.synth", description="Write the synthetic NTU stand-in."
    )
    ap.add_argument("--out", default="data/standin", help="output directory (or .npz file for --fmt npz)")
    ap.add_argument("--fmt", choices=("skeleton", "npz"), default="npz")
    ap.add_argument("--performers", type=int, default=40)
    ap.add_argument("--replications", type=int, default=2)
    ap.add_argument("--actions", default=",".join(ACTION_NAMES), help="comma-separated action names")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = StandinSpec(
        performers=args.performers, replications=args.replications, seed=args.seed,
        actions=tuple(a.strip() for a in args.actions.split(",") if a.strip()),
    )  # fmt: skip
    t0 = time.perf_counter()
    out = generate_dataset(spec, args.out, fmt=args.fmt, progress=True)
    log.info("wrote %d clips to %s in %.1f s", spec.num_clips, out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
