"""Planners of the actions done with the arms (drink, wave, clap, punch, raise_both_arms, point,
salute, arm_circles, phone_call, touch_head, check_watch, palms_together).

Each returns ``(duration, motion)``: the core duration in nominal seconds (tempo 1) and
the motion as a function of the action time (see :data:`pmr_stream.synth.action_kit.Planner`).
One-handed actions are written for the right hand (mirrored for left-handed performers).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pmr_stream.synth.action_kit import ActionContext, _hold_arm, _pick_free_arm, _reps_fitting
from pmr_stream.synth.arrays import FloatArray
from pmr_stream.synth.motion import Motion, _cycles, _keys, _smooth, _window


def plan_drink(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_wave(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_clap(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_punch(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_raise_arms(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_point(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_salute(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_arm_circles(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_phone_call(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_touch_head(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_check_watch(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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


def plan_palms_together(ctx: ActionContext) -> tuple[float, Callable[[FloatArray], Motion]]:
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
