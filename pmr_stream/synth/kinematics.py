"""Rotations, forward kinematics over the NTU-25 tree, and posing a motion on the floor.

Body frame, rest pose and the Euler convention are described in :mod:`pmr_stream.synth`.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import NTU25, J, Joint
from pmr_stream.synth.arrays import FloatArray
from pmr_stream.synth.body import REST_DIRECTIONS, Style
from pmr_stream.synth.motion import Motion, posture_motion

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


_HIPS: Final = (Joint.HIP_LEFT, Joint.HIP_RIGHT)


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
            bones that leave it), see :mod:`pmr_stream.synth`.
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
    g[:, Joint.SPINE_BASE] = (
        loc[:, Joint.SPINE_BASE]
        if root_rotation is None
        else np.asarray(root_rotation) @ loc[:, Joint.SPINE_BASE]
    )
    if root_position is not None:
        p[:, Joint.SPINE_BASE] = np.asarray(root_position, dtype=np.float64)
    pelvis_inv = np.swapaxes(loc[:, Joint.SPINE_BASE], -1, -2) if legs_upright else None
    for b, (c, par) in enumerate(NTU25.bones):
        offset = REST_DIRECTIONS[c][None, :] * lengths[:, b : b + 1]  # (T, 3)
        p[:, c] = p[:, par] + np.einsum("tij,tj->ti", g[:, par], offset)
        lc = loc[:, c]
        if pelvis_inv is not None and c in _HIPS:
            lc = pelvis_inv @ lc
        g[:, c] = g[:, par] @ lc
    return p


# ----------------------------------------------------------------------------- body pose and grounding

#: Height of the Foot joints above the floor when standing (metres).
FOOT_CLEARANCE_M: Final[float] = 0.035
_SOLE_SOFTNESS_M: Final[float] = 0.015


def _standing_feet(performer_bones: FloatArray, style: Style) -> FloatArray:
    """Ankle positions ``(2, 2)`` (x, z) of the standing posture, relative to their midpoint."""
    post = posture_motion(style, 1)
    x = forward_kinematics(euler_to_matrix(np.radians(post.angles)), performer_bones)[0]
    feet = x[[Joint.ANKLE_LEFT, Joint.ANKLE_RIGHT]][:, [0, 2]]
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
    sole = np.minimum(
        x[:, [Joint.ANKLE_LEFT, Joint.ANKLE_RIGHT], 1], x[:, [Joint.FOOT_LEFT, Joint.FOOT_RIGHT], 1]
    )  # (T, 2)
    w = np.exp(-(sole - sole.min(axis=1, keepdims=True)) / _SOLE_SOFTNESS_M)
    w /= w.sum(axis=1, keepdims=True)
    floor = (w * sole).sum(axis=1)  # (T,)
    if standing_feet is None:
        feet0 = x[0, [Joint.ANKLE_LEFT, Joint.ANKLE_RIGHT]][:, [0, 2]]
        standing = feet0 - feet0.mean(axis=0)
    else:
        standing = np.asarray(standing_feet, dtype=np.float64)
    ankles = x[:, [Joint.ANKLE_LEFT, Joint.ANKLE_RIGHT]][:, :, [0, 2]]  # (T, 2, 2)
    shift = (w[..., None] * (ankles - standing[None])).sum(axis=1)  # (T, 2)
    out = x.copy()
    out[..., 0] -= shift[:, 0:1]
    out[..., 2] -= shift[:, 1:2]
    out[..., 1] -= (floor - FOOT_CLEARANCE_M)[:, None]
    out[..., 1] += motion.lift[:, None]
    return out
