"""Planners of the whole-body actions (jump, squat, kick, bow, walk_in_place, sit_down, side_bend).

Each returns ``(duration, motion)``: the core duration in nominal seconds (tempo 1) and
the motion as a function of the action time (see :data:`pmr_stream.synth.action_kit.Planner`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pmr_stream.synth.action_kit import ActionContext, _hold_arm, _reps_fitting
from pmr_stream.synth.arrays import FloatArray
from pmr_stream.synth.motion import Motion, _cycles, _keys, _rise, _window


def plan_jump(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_squat(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_kick(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_bow(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_walk(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_sit_down(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_side_bend(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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
