"""Stand-in bodies: the rest pose, Kinect-calibrated bone lengths and the performers.

A performer (:func:`make_performers`) has a sex, a height, 24 bone lengths in
``NTU25.bones`` order (constant, like a real body) and a motion :class:`Style`.
Lengths in metres, angles in degrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal

import numpy as np

from pmr_stream.skeleton import NTU25, NTU_JOINT_NAMES, J, Joint
from pmr_stream.synth.arrays import FloatArray

# ----------------------------------------------------------------------------- joints and bones

_SIDE: Final[dict[str, dict[str, int]]] = {
    "R": {
        "sh": Joint.SHOULDER_RIGHT,
        "el": Joint.ELBOW_RIGHT,
        "wr": Joint.WRIST_RIGHT,
        "ha": Joint.HAND_RIGHT,
        "hip": Joint.HIP_RIGHT,
        "kn": Joint.KNEE_RIGHT,
        "an": Joint.ANKLE_RIGHT,
        "ft": Joint.FOOT_RIGHT,
    },
    "L": {
        "sh": Joint.SHOULDER_LEFT,
        "el": Joint.ELBOW_LEFT,
        "wr": Joint.WRIST_LEFT,
        "ha": Joint.HAND_LEFT,
        "hip": Joint.HIP_LEFT,
        "kn": Joint.KNEE_LEFT,
        "an": Joint.ANKLE_LEFT,
        "ft": Joint.FOOT_LEFT,
    },
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


_B_HIP = (_bone_index(Joint.HIP_LEFT), _bone_index(Joint.HIP_RIGHT))
_B_CLAV = (_bone_index(Joint.SHOULDER_LEFT), _bone_index(Joint.SHOULDER_RIGHT))
_B_THIGH = (_bone_index(Joint.KNEE_LEFT), _bone_index(Joint.KNEE_RIGHT))
_B_SHIN = (_bone_index(Joint.ANKLE_LEFT), _bone_index(Joint.ANKLE_RIGHT))
_B_UPPER = (_bone_index(Joint.ELBOW_LEFT), _bone_index(Joint.ELBOW_RIGHT))
_B_FORE = (_bone_index(Joint.WRIST_LEFT), _bone_index(Joint.WRIST_RIGHT))
_B_TRUNK = (_bone_index(Joint.SPINE_MID), _bone_index(Joint.SPINE_SHOULDER), _bone_index(Joint.NECK))
_B_HEAD = (_bone_index(Joint.HEAD),)
_B_HANDS = tuple(
    _bone_index(j)
    for j in (
        Joint.HAND_LEFT,
        Joint.HAND_RIGHT,
        Joint.HAND_TIP_LEFT,
        Joint.HAND_TIP_RIGHT,
        Joint.THUMB_LEFT,
        Joint.THUMB_RIGHT,
    )
)
_B_FEET = (_bone_index(Joint.FOOT_LEFT), _bone_index(Joint.FOOT_RIGHT))

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
