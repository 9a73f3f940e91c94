"""The motion representation (per-joint Euler angles over frames) and its time helpers.

:class:`Motion` holds an action's angles ``(T, 25, 3)`` degrees, flight and yaw;
its setters (:meth:`Motion.arm`, :meth:`Motion.leg`, :meth:`Motion.trunk`,
:meth:`Motion.head`) add angles by body part. The time helpers shape those
angles over time (seconds); :func:`posture_motion` and :func:`idle_motion` are
what every take has beside its action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import NTU25, J, Joint
from pmr_stream.synth.arrays import Angle, FloatArray
from pmr_stream.synth.body import _SIDE, _SIGN, Style

# ----------------------------------------------------------------------------- motion representation


@dataclass
class Motion:
    """An action's motion over ``T`` frames, before posture, grounding and camera.

    Attributes:
        angles: ``(T, 25, 3)`` degrees, Euler ``(ax, ay, az)`` per joint (see
            :mod:`pmr_stream.synth`; the hips' angles are relative to the upright body).
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
        for joint, w in ((Joint.SPINE_BASE, 0.5), (Joint.SPINE_MID, 0.3), (Joint.SPINE_SHOULDER, 0.2)):
            self.angles[:, joint, 0] -= np.multiply(w, bend)
            self.angles[:, joint, 2] -= np.multiply(w, side)
            self.angles[:, joint, 1] += np.multiply(w, twist)
        return self

    def head(self, *, nod: Angle = 0.0, roll: Angle = 0.0, turn: Angle = 0.0) -> Motion:
        """Add head angles at the neck: ``nod`` forwards, ``roll`` to the right, ``turn`` to the left."""
        self.angles[:, Joint.NECK, 0] -= nod
        self.angles[:, Joint.NECK, 2] -= roll
        self.angles[:, Joint.NECK, 1] += turn
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


# ----------------------------------------------------------------------------- posture and idle motion


def posture_motion(style: Style, n: int) -> Motion:
    """The performer's constant posture over ``n`` frames (see :class:`Style`)."""
    m = Motion.zeros(n)
    m.angles[:, Joint.SPINE_BASE, 0] -= style.lean_deg
    m.angles[:, Joint.SPINE_MID, 0] -= 0.5 * style.slouch_deg
    m.angles[:, Joint.SPINE_SHOULDER, 0] -= 0.5 * style.slouch_deg
    m.angles[:, Joint.SPINE_SHOULDER, 2] -= style.shoulder_drop_deg  # right shoulder lower
    m.angles[:, Joint.NECK, 2] += style.shoulder_drop_deg  # the head stays level
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
    m.angles[:, Joint.SPINE_MID, 0] += 0.6 * np.sin(tw * 0.27 + p[0])  # breathing
    sway = style.sway_deg * np.sin(tw * style.sway_hz + p[1])
    m.angles[:, Joint.SPINE_BASE, 2] += sway
    m.angles[:, Joint.NECK, 2] -= 0.5 * sway
    g = style.fidget
    m.head(turn=2.0 * g * np.sin(tw * f[2] + p[2]), nod=1.5 * g * np.sin(tw * f[3] + p[3]))
    m.arm("R", flex=1.5 * g * np.sin(tw * f[4] + p[4]))
    m.arm("L", flex=1.5 * g * np.sin(tw * f[5] + p[5]))
    return m
