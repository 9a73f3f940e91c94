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

Modules
=======

========================  ======================================================
:mod:`.body`              rest pose, bone lengths, :class:`Performer`, :class:`Style`
:mod:`.motion`            :class:`Motion` (Euler angles over frames), time helpers,
                          posture and idle motion
:mod:`.kinematics`        rotations, forward kinematics, posing on the floor
:mod:`.action_kit`        what the planners share (habits, context, free-arm poses)
:mod:`.actions_arms`,     the 19 planners (arm actions; whole-body actions)
:mod:`.actions_body`
:mod:`.actions`           the table of actions, their names and numbers
:mod:`.camera_noise`      the three Kinects, the performer's mark, the sensor noise
:mod:`.clips`             one take seen by a camera (:class:`SynthClip`)
:mod:`.dataset`           the stand-in dataset, its files, :data:`DEFAULT_STANDIN_PATH`
:mod:`.stream`            :class:`SyntheticStream`, the live stand-in
========================  ======================================================

The names below are re-exported here: ``from pmr_stream.synth import generate_clip``.
"""

from __future__ import annotations

from pmr_stream.synth.action_kit import (
    ARM_POSES,
    ActionContext,
    ActionDef,
    Habit,
    Planner,
    incidental_motion,
)
from pmr_stream.synth.actions import (
    ACTION_NAMES,
    ACTIONS,
    action_index,
    action_name,
    performer_habit,
)
from pmr_stream.synth.arrays import (
    Angle,
    Array32,
    FloatArray,
)
from pmr_stream.synth.body import (
    BONE_MIRROR_PAIRS,
    BONE_OF_JOINT,
    KINECT_MEAN_BONES_M,
    LEFT_HANDED_FRACTION,
    NTU_MALE_FRACTION,
    REFERENCE_HEIGHT_M,
    REST_DIRECTIONS,
    Handedness,
    Performer,
    Sex,
    Style,
    make_performers,
)
from pmr_stream.synth.camera_noise import (
    CAMERA_YAW_DEG,
    NOISE_SCALE,
    CameraPose,
    NoiseConfig,
    Placement,
    camera_pose,
    performer_placement,
)
from pmr_stream.synth.clips import (
    MAX_FRAMES,
    MIN_FRAMES,
    SETUP,
    SynthClip,
    action_motion,
    demo_clip,
    generate_clip,
    generate_clip_with_confidence,
)
from pmr_stream.synth.dataset import (
    DEFAULT_STANDIN_PATH,
    GENDER_LABELS,
    NPZ_FORMAT_VERSION,
    StandinData,
    StandinSpec,
    generate_dataset,
    generate_standin,
    write_clips_npz,
)
from pmr_stream.synth.kinematics import (
    FOOT_CLEARANCE_M,
    euler_to_matrix,
    forward_kinematics,
    pose_body,
    rot_x,
    rot_y,
)
from pmr_stream.synth.motion import (
    Motion,
    idle_motion,
    posture_motion,
)
from pmr_stream.synth.stream import (
    SyntheticStream,
)

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "ARM_POSES",
    "ActionContext",
    "ActionDef",
    "Angle",
    "Array32",
    "BONE_MIRROR_PAIRS",
    "BONE_OF_JOINT",
    "CAMERA_YAW_DEG",
    "CameraPose",
    "DEFAULT_STANDIN_PATH",
    "FOOT_CLEARANCE_M",
    "FloatArray",
    "GENDER_LABELS",
    "Habit",
    "Handedness",
    "KINECT_MEAN_BONES_M",
    "LEFT_HANDED_FRACTION",
    "MAX_FRAMES",
    "MIN_FRAMES",
    "Motion",
    "NOISE_SCALE",
    "NPZ_FORMAT_VERSION",
    "NTU_MALE_FRACTION",
    "NoiseConfig",
    "Performer",
    "Placement",
    "Planner",
    "REFERENCE_HEIGHT_M",
    "REST_DIRECTIONS",
    "SETUP",
    "Sex",
    "StandinData",
    "StandinSpec",
    "Style",
    "SynthClip",
    "SyntheticStream",
    "action_index",
    "action_motion",
    "action_name",
    "camera_pose",
    "demo_clip",
    "euler_to_matrix",
    "forward_kinematics",
    "generate_clip",
    "generate_clip_with_confidence",
    "generate_dataset",
    "generate_standin",
    "idle_motion",
    "incidental_motion",
    "make_performers",
    "performer_habit",
    "performer_placement",
    "pose_body",
    "posture_motion",
    "rot_x",
    "rot_y",
    "write_clips_npz",
]
