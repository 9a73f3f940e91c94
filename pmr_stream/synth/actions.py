"""The stand-in's 19 actions: their table, names and numbers, and a performer's habit for each."""

from __future__ import annotations

from typing import Final

import numpy as np

from pmr_stream.synth.action_kit import ActionDef, Habit
from pmr_stream.synth.actions_arms import (
    plan_arm_circles,
    plan_check_watch,
    plan_clap,
    plan_drink,
    plan_palms_together,
    plan_phone_call,
    plan_point,
    plan_punch,
    plan_raise_arms,
    plan_salute,
    plan_touch_head,
    plan_wave,
)
from pmr_stream.synth.actions_body import (
    plan_bow,
    plan_jump,
    plan_kick,
    plan_side_bend,
    plan_sit_down,
    plan_squat,
    plan_walk,
)
from pmr_stream.synth.body import Performer

#: The stand-in's actions; the ``A`` in a file name is the 1-based index in this list.
ACTIONS: Final[tuple[ActionDef, ...]] = (
    ActionDef("drink", True, plan_drink, "bring the dominant hand to the mouth, tilt the head back"),
    ActionDef("wave", True, plan_wave, "raise the dominant arm and wave the forearm"),
    ActionDef("clap", False, plan_clap, "clap the hands in front of the chest"),
    ActionDef("jump", False, plan_jump, "jump up once or twice with an arm swing"),
    ActionDef("squat", False, plan_squat, "squat down and up, one to three times"),
    ActionDef("kick", True, plan_kick, "kick forwards with the dominant leg"),
    ActionDef("punch", True, plan_punch, "guard up, jab with the dominant arm"),
    ActionDef("bow", False, plan_bow, "bow from the hips"),
    ActionDef("walk_in_place", False, plan_walk, "march on the spot with an arm swing"),
    ActionDef("raise_both_arms", False, plan_raise_arms, "raise both arms over the head"),
    ActionDef("point", True, plan_point, "point forwards with the dominant arm"),
    ActionDef("sit_down", False, plan_sit_down, "sit down on a chair (ends seated)"),
    ActionDef("salute", True, plan_salute, "military salute with the dominant hand"),
    ActionDef("arm_circles", False, plan_arm_circles, "both arms out to the side, circling"),
    ActionDef("side_bend", False, plan_side_bend, "bend the trunk to each side, the other arm over the head"),
    ActionDef("phone_call", True, plan_phone_call, "hold a phone to the ear with the dominant hand"),
    ActionDef("touch_head", True, plan_touch_head, "hand on the forehead (headache), head bent"),
    ActionDef("check_watch", True, plan_check_watch, "raise the non-dominant wrist and look at the watch"),
    ActionDef("palms_together", False, plan_palms_together, "put the palms together in front of the chest"),
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
