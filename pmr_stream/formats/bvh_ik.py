"""Joint rotations for BVH from joint positions: the rest pose and the inverse kinematics.

Everything here works in the BVH frame of :mod:`pmr_stream.formats.bvh` (right-handed, ``+Y``
up, the character faces ``+Z``, its left is ``+X``) and in any length unit, on the NTU-25 tree
of :mod:`pmr_stream.skeleton` (SpineBase the root).

**Rest pose** (:func:`rest_directions`): a T-pose. Spine, neck and head point up, arms out
sideways, legs down, feet forward. Where a joint has several children (SpineBase: SpineMid and
the hips; SpineShoulder: Neck and the shoulders; each Hand: HandTip and Thumb) one rotation
moves them all, so their rest directions are the body's own mean arrangement (a Procrustes
mean over its frames), turned upright; that keeps the residual at those joints small.

**Rotations** (:func:`global_rotations`), per frame, parents first:

* a joint with one child: the *swing* turns the bone's rest direction onto the observed one,
  starting from the parent's rotation (so the child lands exactly on its observed position,
  whatever the bone's length error); the *twist* about the bone is taken from a reference
  vector of the neighbouring joints (:data:`TWIST_REFERENCES`: the bend plane of arm and leg,
  the foot, the thumb, the shoulder line), by least squares in the plane across the bone, and
  falls back smoothly on the parent's twist where that reference lies along the bone (a straight
  arm);
* a joint with several children: the rotation that fits all of them best (weighted Kabsch, the
  weights the number of joints each child carries), so their positions are reproduced as well
  as one rotation can; what is left over is the change of the children's arrangement from the
  rest pose (a shrug, Kinect's jitter of the hips);
* a leaf (Head, HandTip, Thumb, Foot): its parent's rotation (its own channels stay zero).

:func:`local_rotations` turns them into the parent-relative rotations BVH stores and
:func:`joint_angles` into Euler angles (each joint in its :data:`ROTATION_ORDERS`), continuous
over frames.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import NTU25, Joint

F64 = npt.NDArray[np.float64]

#: Parent of each joint (-1 for the root) and the children of each joint.
PARENTS: Final[tuple[int, ...]] = NTU25.parents
CHILDREN: Final[tuple[tuple[int, ...], ...]] = tuple(
    tuple(c for c, _ in NTU25.bones if PARENTS[c] == j) for j in range(NTU25.num_joints)
)
#: Joints in an order where a parent comes before its children.
ORDER: Final[tuple[int, ...]] = (NTU25.parents.index(-1),) + tuple(c for c, _ in NTU25.bones)

_X, _Y, _Z = np.eye(3)

#: The T-pose direction of each bone, by its child joint (the root has none).
CANONICAL: Final[dict[int, tuple[float, float, float]]] = {
    Joint.SPINE_MID: (0, 1, 0), Joint.SPINE_SHOULDER: (0, 1, 0), Joint.NECK: (0, 1, 0), Joint.HEAD: (0, 1, 0),
    Joint.SHOULDER_LEFT: (1, 0, 0), Joint.ELBOW_LEFT: (1, 0, 0), Joint.WRIST_LEFT: (1, 0, 0),
    Joint.HAND_LEFT: (1, 0, 0), Joint.HAND_TIP_LEFT: (1, 0, 0), Joint.THUMB_LEFT: (0.7071, 0, 0.7071),
    Joint.SHOULDER_RIGHT: (-1, 0, 0), Joint.ELBOW_RIGHT: (-1, 0, 0), Joint.WRIST_RIGHT: (-1, 0, 0),
    Joint.HAND_RIGHT: (-1, 0, 0), Joint.HAND_TIP_RIGHT: (-1, 0, 0), Joint.THUMB_RIGHT: (-0.7071, 0, 0.7071),
    Joint.HIP_LEFT: (0.8944, -0.4472, 0), Joint.KNEE_LEFT: (0, -1, 0), Joint.ANKLE_LEFT: (0, -1, 0),
    Joint.FOOT_LEFT: (0, 0, 1),
    Joint.HIP_RIGHT: (-0.8944, -0.4472, 0), Joint.KNEE_RIGHT: (0, -1, 0), Joint.ANKLE_RIGHT: (0, -1, 0),
    Joint.FOOT_RIGHT: (0, 0, 1),
}  # fmt: skip

#: How each group of siblings is turned upright in the rest pose: (parent, the child whose bone
#: takes its canonical direction exactly, (a, b) whose difference a - b gives the second axis,
#: that axis's canonical direction).
_UPRIGHT: Final[tuple[tuple[int, int, tuple[int, int], npt.NDArray[np.float64]], ...]] = (
    (Joint.SPINE_BASE, Joint.SPINE_MID, (Joint.HIP_LEFT, Joint.HIP_RIGHT), _X),
    (Joint.SPINE_SHOULDER, Joint.NECK, (Joint.SHOULDER_LEFT, Joint.SHOULDER_RIGHT), _X),
    (Joint.HAND_LEFT, Joint.HAND_TIP_LEFT, (Joint.THUMB_LEFT, Joint.HAND_LEFT), _Z),
    (Joint.HAND_RIGHT, Joint.HAND_TIP_RIGHT, (Joint.THUMB_RIGHT, Joint.HAND_RIGHT), _Z),
)

#: Twist references of the one-child joints: the reference vector is the sum of the unit
#: vectors ``x[a] - x[b]`` over the pairs; the rest vector is the same sum on the rest pose, or
#: the given direction where the rest pose is straight (the arms: the elbow bends forward).
TWIST_REFERENCES: Final[dict[int, tuple[tuple[tuple[int, int], ...], tuple[float, float, float] | None]]] = {
    Joint.SPINE_MID: (((Joint.SHOULDER_LEFT, Joint.SHOULDER_RIGHT),), None),
    Joint.NECK: (((Joint.SHOULDER_LEFT, Joint.SHOULDER_RIGHT),), None),
    Joint.SHOULDER_LEFT: (((Joint.WRIST_LEFT, Joint.ELBOW_LEFT),), (0, 0, 1)),
    Joint.ELBOW_LEFT: (((Joint.SHOULDER_LEFT, Joint.ELBOW_LEFT),), (0, 0, 1)),
    Joint.WRIST_LEFT: (((Joint.THUMB_LEFT, Joint.HAND_LEFT),), None),
    Joint.SHOULDER_RIGHT: (((Joint.WRIST_RIGHT, Joint.ELBOW_RIGHT),), (0, 0, 1)),
    Joint.ELBOW_RIGHT: (((Joint.SHOULDER_RIGHT, Joint.ELBOW_RIGHT),), (0, 0, 1)),
    Joint.WRIST_RIGHT: (((Joint.THUMB_RIGHT, Joint.HAND_RIGHT),), None),
    Joint.HIP_LEFT: (((Joint.FOOT_LEFT, Joint.ANKLE_LEFT), (Joint.KNEE_LEFT, Joint.ANKLE_LEFT)), None),
    Joint.KNEE_LEFT: (((Joint.FOOT_LEFT, Joint.ANKLE_LEFT),), None),
    Joint.ANKLE_LEFT: (((Joint.KNEE_LEFT, Joint.ANKLE_LEFT),), None),
    Joint.HIP_RIGHT: (((Joint.FOOT_RIGHT, Joint.ANKLE_RIGHT), (Joint.KNEE_RIGHT, Joint.ANKLE_RIGHT)), None),
    Joint.KNEE_RIGHT: (((Joint.FOOT_RIGHT, Joint.ANKLE_RIGHT),), None),
    Joint.ANKLE_RIGHT: (((Joint.KNEE_RIGHT, Joint.ANKLE_RIGHT),), None),
}
#: Weight of "keep the parent's twist" against a twist reference of unit length across the
#: bone: a reference less than about 6 degrees off the bone hands the twist to the parent.
TWIST_PRIOR: Final[float] = 0.1


def _subtree_sizes() -> tuple[int, ...]:
    size = [1] * NTU25.num_joints
    for j in reversed(ORDER):
        if PARENTS[j] >= 0:
            size[PARENTS[j]] += size[j]
    return tuple(size)


#: Joints carried by each joint (itself included): the weights of the sibling fit.
SUBTREE_SIZES: Final[tuple[int, ...]] = _subtree_sizes()


def _unit(v: F64, eps: float = 1e-12) -> tuple[F64, F64]:
    """Unit vectors of ``v`` ``(..., 3)`` (zero where ``|v| <= eps``) and the norms ``(...)``."""
    n = np.linalg.norm(v, axis=-1)
    return np.divide(v, n[..., None], out=np.zeros_like(v), where=n[..., None] > eps), n


def kabsch(targets: F64, sources: F64, weights: npt.ArrayLike, prior: F64 | None = None) -> F64:
    """Rotations ``(T, 3, 3)`` that best turn ``sources`` onto ``targets``.

    Args:
        targets: ``(T, K, 3)`` observed vectors.
        sources: ``(K, 3)`` rest vectors.
        weights: ``(K,)`` weights of the squared errors ``|R s_k - t_k|^2``.
        prior: ``(T, 3, 3)`` a rotation to lean on (with a weight of 1e-6 of the data's), so
            that an under-determined fit (the vectors in a line) stays put.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.einsum("k,tki,kj->tij", w, targets, sources)  # (T, 3, 3)
    if prior is not None:
        scale = float(np.sum(w * np.sum(sources**2, axis=-1)))
        b = b + 1e-6 * scale * prior
    return _nearest_rotation(b)


def _nearest_rotation(b: F64) -> F64:
    """The rotations ``R`` ``(N, 3, 3)`` that maximise ``trace(R^T b)`` for ``b`` ``(N, 3, 3)``."""
    u, _, vt = np.linalg.svd(b)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[:, :, 2] *= np.where(d == 0, 1.0, d)[:, None]
    return u @ vt


def swing(a: F64, b: F64) -> F64:
    """The smallest rotations ``(T, 3, 3)`` turning unit vectors ``a`` onto ``b`` (both ``(T, 3)``)."""
    k = np.cross(a, b)
    c = np.einsum("ti,ti->t", a, b)
    kx = np.zeros(a.shape[:-1] + (3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    opposite = c < -1.0 + 1e-9
    r = np.eye(3) + kx + (kx @ kx) / np.maximum(1.0 + c, 1e-9)[:, None, None]
    if np.any(opposite):  # half a turn about any axis across a
        aa = a[opposite]
        other = np.where(np.abs(aa[:, :1]) < 0.9, _X, _Y)
        w, _ = _unit(np.cross(aa, other))
        r[opposite] = 2.0 * w[:, :, None] * w[:, None, :] - np.eye(3)
    return r


def axis_angle(axis: F64, angle: F64) -> F64:
    """Rotations ``(T, 3, 3)`` by ``angle`` ``(T,)`` radians about unit ``axis`` ``(T, 3)``."""
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    kx = np.zeros(axis.shape[:-1] + (3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    return np.asarray(np.eye(3) + s * kx + (1.0 - c) * (kx @ kx), dtype=np.float64)


def _frame(primary: F64, secondary: F64) -> F64:
    """Orthonormal frames ``(3, 3)`` (columns) with ``primary`` first and ``secondary`` second."""
    e1 = primary / np.linalg.norm(primary)
    e2 = secondary - (secondary @ e1) * e1
    e2 = e2 / np.linalg.norm(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def rest_directions(body: npt.ArrayLike, iterations: int = 3) -> F64:
    """Unit rest directions ``(25, 3)`` of every bone, indexed by its child joint (row 0 zero).

    Args:
        body: ``(N, 25, 3)`` frames of the body whose arrangement the branching joints take
            (BVH frame, any unit); bones of zero length fall back on :data:`CANONICAL`.
    """
    x = np.asarray(body, dtype=np.float64)
    dirs = np.zeros((NTU25.num_joints, 3))
    for c, vec in CANONICAL.items():
        dirs[c] = np.asarray(vec) / np.linalg.norm(vec)
    for parent, main, (a, b), second in _UPRIGHT:
        kids = CHILDREN[parent]
        vecs, norms = _unit(x[:, kids] - x[:, parent : parent + 1])  # (N, K, 3)
        usable = np.all(norms > 1e-9, axis=1)
        if not np.any(usable):
            continue
        vecs = vecs[usable]
        ref = vecs[0]
        for _ in range(iterations):  # Procrustes mean: align every frame on the mean, average
            turn_each = _nearest_rotation(np.einsum("ki,nkj->nij", ref, vecs))  # vecs[n] -> ref
            aligned = np.einsum("nij,nkj->nki", turn_each, vecs)
            ref, _ = _unit(aligned.mean(axis=0))
        pos = {k: ref[i] for i, k in enumerate(kids)} | {parent: np.zeros(3)}
        found = _frame(pos[main], pos[a] - pos[b])
        target = _frame(dirs[main], second)
        turn = target @ found.T
        for i, k in enumerate(kids):
            dirs[k] = turn @ ref[i]
    return dirs


def _twist_vector(x: F64, pairs: tuple[tuple[int, int], ...]) -> F64:
    """The sum of the unit vectors ``x[..., a, :] - x[..., b, :]`` over ``pairs``: ``(..., 3)``."""
    return np.sum([_unit(x[..., a, :] - x[..., b, :])[0] for a, b in pairs], axis=0)


def global_rotations(positions: npt.ArrayLike, offsets: npt.ArrayLike) -> F64:
    """Each joint's rotation from the rest pose, in the BVH frame: ``(T, 25, 3, 3)``.

    Args:
        positions: ``(T, 25, 3)`` observed joints (BVH frame, the unit of ``offsets``).
        offsets: ``(25, 3)`` rest offsets of each joint from its parent (row 0 unused).

    With ``G`` the result, forward kinematics puts joint ``c`` at
    ``x[parent] + G[parent] @ offsets[c]``: exactly along the observed bone where the parent has
    one child, and by the best fit of all children where it has several (see the module).
    """
    x = np.asarray(positions, dtype=np.float64)
    off = np.asarray(offsets, dtype=np.float64)
    n_t = x.shape[0]
    rest = np.zeros_like(off)  # rest positions, for the twist references
    for j in ORDER[1:]:
        rest[j] = rest[PARENTS[j]] + off[j]
    g = np.zeros((n_t, NTU25.num_joints, 3, 3))
    for j in ORDER:
        p = PARENTS[j]
        g_parent = g[:, p] if p >= 0 else np.broadcast_to(np.eye(3), (n_t, 3, 3))
        kids = CHILDREN[j]
        if not kids:
            g[:, j] = g_parent
        elif len(kids) > 1:
            d = x[:, kids] - x[:, j : j + 1]
            g[:, j] = kabsch(d, off[list(kids)], [SUBTREE_SIZES[k] for k in kids], prior=g_parent)
        else:
            g[:, j] = _one_child(x, rest, off, j, kids[0], g_parent)
    return g


def _one_child(x: F64, rest: F64, off: F64, j: int, child: int, g_parent: F64) -> F64:
    """Swing onto the observed bone from the parent's rotation, then the twist about it."""
    o, _ = _unit(off[child])
    moved = np.einsum("tij,j->ti", g_parent, o)  # where the bone points with no rotation of its own
    d, n = _unit(x[:, child] - x[:, j])
    d = np.where(n[:, None] > 1e-12, d, moved)  # a bone of zero length keeps its parent's direction
    s = swing(moved, d) @ g_parent
    pairs, rest_dir = TWIST_REFERENCES.get(j, ((), None))
    if not pairs:
        return s
    v_rest = np.asarray(rest_dir, dtype=np.float64) if rest_dir is not None else _twist_vector(rest, pairs)
    v_rest = v_rest - (v_rest @ o) * o
    a, _ = _unit(np.einsum("tij,j->ti", s, _unit(v_rest)[0]))  # across the bone, as s carries it
    v = _twist_vector(x, pairs) / len(pairs)
    b = v - np.einsum("ti,ti->t", v, d)[:, None] * d  # the reference across the bone (length <= 1)
    sin = np.einsum("ti,ti->t", d, np.cross(a, b))
    cos = np.einsum("ti,ti->t", a, b) + TWIST_PRIOR
    return axis_angle(d, np.arctan2(sin, cos)) @ s


def local_rotations(global_rot: npt.ArrayLike) -> F64:
    """BVH's rotations ``(T, 25, 3, 3)``: each joint's relative to its parent's (the root's as is)."""
    g = np.asarray(global_rot, dtype=np.float64)
    local = g.copy()
    for j in ORDER[1:]:
        local[:, j] = np.swapaxes(g[:, PARENTS[j]], -1, -2) @ g[:, j]
    return local


#: Euler order of each joint's channels (``"ZXY"``: ``Zrotation Xrotation Yrotation``,
#: ``R = Rz Rx Ry``). An order is singular where its middle angle reaches 90 degrees, so the
#: middle axis is one the joint seldom turns far about: X (the bone's own axis in the T-pose) for
#: the arms, whose big turns are about Z (lowering an arm) and Y (the elbow's bend); Z (leaning
#: sideways) for the root, spine, head and legs, whose big turns are about Y (turning round) and
#: X (bowing, sitting, the knee's bend).
ROTATION_ORDERS: Final[dict[int, str]] = {
    j: "ZXY" if "Shoulder" in n and n != "SpineShoulder" or any(k in n for k in ("Elbow", "Wrist", "Hand", "Thumb"))
    else "YZX"
    for j, n in enumerate(NTU25.joint_names)
}  # fmt: skip
_AXIS: Final[dict[str, int]] = {"X": 0, "Y": 1, "Z": 2}


def _order_axes(order: str) -> tuple[int, int, int, float]:
    """Axis indices ``(i, j, k)`` of a Tait-Bryan order and its parity (+1 cyclic, -1 not)."""
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation order must be a permutation of XYZ, got {order!r}")
    i, j, k = (_AXIS[a] for a in order)
    return i, j, k, 1.0 if (j - i) % 3 == 1 else -1.0


def _axis_matrix(axis: int, angle: F64) -> F64:
    """Rotations ``(..., 3, 3)`` by ``angle`` ``(...)`` radians about coordinate axis ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(np.shape(angle) + (3, 3))
    a, b = (axis + 1) % 3, (axis + 2) % 3
    m[..., axis, axis] = 1.0
    m[..., a, a], m[..., b, b] = c, c
    m[..., a, b], m[..., b, a] = -s, s
    return m


def euler_matrix(angles_deg: npt.ArrayLike, order: str) -> F64:
    """Rotations ``(..., 3, 3)`` from angles ``(..., 3)`` in degrees, listed in ``order``:
    ``"ZXY"`` gives ``Rz(a0) @ Rx(a1) @ Ry(a2)`` (BVH's reading of its channels)."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    i, j, k, _ = _order_axes(order)
    return _axis_matrix(i, a[..., 0]) @ _axis_matrix(j, a[..., 1]) @ _axis_matrix(k, a[..., 2])


def euler_angles(rot: npt.ArrayLike, order: str) -> F64:
    """Angles ``(T, 3)`` in degrees, in ``order``, of rotations ``(T, 3, 3)`` (:func:`euler_matrix`'s inverse).

    Each frame takes, of the two angle triples that give the rotation, the one nearest the
    previous frame's, every angle unwrapped by whole turns, so the curves have no 360-degree
    jumps; where the middle angle is at 90 degrees (gimbal lock) the last angle is kept from
    the previous frame and the first one takes the rest.
    """
    r = np.asarray(rot, dtype=np.float64)
    i, j, k, e = _order_axes(order)
    sb = np.clip(e * r[:, i, k], -1.0, 1.0)
    mid = np.arcsin(sb)
    first = np.stack(
        [np.arctan2(-e * r[:, j, k], r[:, k, k]), mid, np.arctan2(-e * r[:, i, j], r[:, i, i])], -1
    )
    second = first + np.array([np.pi, 0.0, np.pi])
    second[:, 1] = np.pi - mid
    locked = np.cos(mid) < 1e-7
    cands = np.stack([first, second], axis=1)  # (T, 2, 3) the two triples of each frame
    # squared distance, by whole turns, of each triple of frame t to each of frame t - 1
    dist = _turn_distance(cands[1:, :, None, :], cands[:-1, None, :, :])  # (T - 1, 2, 2)
    pick = [0] * len(r)
    lock_rows = set(np.flatnonzero(locked).tolist())
    for t in range(len(r)):  # the branch of each frame: the one nearer the previous frame's
        if t in lock_rows or t == 0 or t - 1 in lock_rows:
            before = cands[t - 1, pick[t - 1]] if t > 0 else np.zeros(3)
            if t in lock_rows:  # r = Ri(a) Rj(+-90) Rk(c): keep c, solve a from r Rk(c)^T = Ri(a) Rj(b)
                m = r[t] @ _axis_matrix(k, np.array(before[2])).T
                cands[t, :] = [math.atan2(e * m[k, j], m[j, j]), mid[t], before[2]]
            pick[t] = int(_turn_distance(cands[t, 1], before) < _turn_distance(cands[t, 0], before))
        else:
            b = pick[t - 1]
            pick[t] = int(dist[t - 1, 1, b] < dist[t - 1, 0, b])
    chosen = cands[np.arange(len(r)), pick]
    return np.degrees(np.unwrap(chosen, axis=0))  # each step by whole turns to the nearest


def _turn_distance(a: F64, b: F64) -> F64:
    """Squared distance ``(...)`` of angle triples ``(..., 3)`` (radians), each angle modulo whole turns."""
    d = (a - b + np.pi) % (2 * np.pi) - np.pi
    return np.asarray(np.sum(d**2, axis=-1), dtype=np.float64)


def joint_angles(local: npt.ArrayLike) -> F64:
    """Every joint's channel angles ``(T, 25, 3)`` in degrees, each in its :data:`ROTATION_ORDERS`."""
    r = np.asarray(local, dtype=np.float64)
    return np.stack([euler_angles(r[:, j], ROTATION_ORDERS[j]) for j in range(r.shape[1])], axis=1)


__all__ = [
    "PARENTS", "CHILDREN", "ORDER", "CANONICAL", "TWIST_REFERENCES", "SUBTREE_SIZES", "rest_directions",
    "global_rotations", "local_rotations", "ROTATION_ORDERS", "euler_matrix", "euler_angles", "joint_angles", "kabsch", "swing", "axis_angle",
]  # fmt: skip
