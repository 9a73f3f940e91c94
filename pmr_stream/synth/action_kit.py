"""What the action planners share: habits, the planner's context, free-arm poses, incidental motion.

An action's planner (:data:`Planner`) gets an :class:`ActionContext` and returns its
core duration and its motion as a function of the action time. The planners live in
:mod:`pmr_stream.synth.actions_arms` and :mod:`pmr_stream.synth.actions_body`, the
table of actions in :mod:`pmr_stream.synth.actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import Joint
from pmr_stream.synth.arrays import FloatArray
from pmr_stream.synth.body import Style
from pmr_stream.synth.motion import Motion, _rise, _window


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
        m.angles[:, Joint.SPINE_BASE, 2] += rng.normal(0, 4) * _rise(
            t, rng.uniform(0, span), rng.uniform(0.5, 1.2)
        )
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
