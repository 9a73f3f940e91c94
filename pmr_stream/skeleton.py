"""Skeleton layouts, joints and bones, normalisation and clip policies.

This is the one place that defines the skeletons pmr-stream handles; every other
module imports joint names, parents, bones and the window constants from here.

Coordinate convention (the "Kinect camera convention", used everywhere in the
project unless a function says otherwise): metres, camera at the origin,
``+x`` towards the sensor's left (for a person facing the camera: the person's
right hand side; it is image-right in Kinect's mirrored colour image),
``+y`` up, ``+z`` away from the camera (depth).

Array shapes follow the names ``T`` (frames), ``P`` (persons), ``J`` (25 joints),
``C`` (3 coordinates); e.g. a clip is ``(T, 25, 3)`` metres.

MediaPipe's 33 landmarks have a layout here (recordings may be stored in it); how
they become NTU-25 joints is capture's business (:mod:`pmr_stream.capture.mediapipe_map`).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
#: A NumPy array or a torch tensor of windows (the window convention is shared by both).
WindowT = TypeVar("WindowT")

#: Frames per window the PMR network works on.
T: Final[int] = 75
#: Joints of the NTU-25 (Kinect v2) skeleton.
J: Final[int] = 25
#: Coordinates per joint (x, y, z).
C: Final[int] = 3
#: Frame rate of Kinect v2 recordings and of the stand-in dataset, frames per second.
FPS: Final[float] = 30.0


@dataclass(frozen=True)
class Layout:
    """A skeleton layout: joint names and the kinematic tree.

    ``parents[j]`` is the parent joint of ``j`` (``-1`` for the root); ``bones``
    lists ``(child, parent)`` pairs in an order where a parent always comes
    before its children (usable for forward kinematics).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left_right_pairs: tuple[tuple[int, int], ...]
    bones: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.joint_names) != len(self.parents):
            raise ValueError(
                f"layout {self.name}: {len(self.joint_names)} names but {len(self.parents)} parents"
            )
        roots = [j for j, p in enumerate(self.parents) if p < 0]
        if len(roots) != 1:
            raise ValueError(f"layout {self.name}: expected exactly one root, found {roots}")
        # Breadth-first order from the root so that parents precede children.
        order: list[tuple[int, int]] = []
        frontier = roots
        while frontier:
            nxt = []
            for p in frontier:
                for c, pp in enumerate(self.parents):
                    if pp == p:
                        order.append((c, p))
                        nxt.append(c)
            frontier = nxt
        if len(order) != len(self.parents) - 1:
            raise ValueError(f"layout {self.name}: parents do not form a tree")
        object.__setattr__(self, "bones", tuple(order))

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        """Index of the joint called ``name`` (raises ``KeyError`` naming the layout)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"layout {self.name} has no joint {name!r}") from None

    @property
    def mirror_permutation(self) -> tuple[int, ...]:
        """Joint permutation that swaps left and right joints."""
        perm = list(range(self.num_joints))
        for a, b in self.left_right_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)


# --------------------------------------------------------------------------- NTU-25


class Joint(enum.IntEnum):
    """The 25 joints of the NTU-25 (Kinect v2) skeleton, by their index in a ``(..., 25, 3)`` array.

    Members are ints (``Joint.HEAD == 3``), so they index arrays directly:
    ``x[:, Joint.SPINE_MID]``. :data:`NTU_JOINT_NAMES` spells them as the Kinect SDK
    and the NTU files do (``Joint.HAND_TIP_LEFT`` is ``"HandTipLeft"``).
    """

    SPINE_BASE = 0
    SPINE_MID = 1
    NECK = 2
    HEAD = 3
    SHOULDER_LEFT = 4
    ELBOW_LEFT = 5
    WRIST_LEFT = 6
    HAND_LEFT = 7
    SHOULDER_RIGHT = 8
    ELBOW_RIGHT = 9
    WRIST_RIGHT = 10
    HAND_RIGHT = 11
    HIP_LEFT = 12
    KNEE_LEFT = 13
    ANKLE_LEFT = 14
    FOOT_LEFT = 15
    HIP_RIGHT = 16
    KNEE_RIGHT = 17
    ANKLE_RIGHT = 18
    FOOT_RIGHT = 19
    SPINE_SHOULDER = 20
    HAND_TIP_LEFT = 21
    THUMB_LEFT = 22
    HAND_TIP_RIGHT = 23
    THUMB_RIGHT = 24


#: The Kinect SDK's joint names, in index order ("SpineBase", ..., "ThumbRight").
NTU_JOINT_NAMES: Final[tuple[str, ...]] = tuple(
    "".join(word.capitalize() for word in j.name.split("_")) for j in Joint
)

#: The NTU authors' connectivity list (1-based, from show_skeleton.m). Joint 1's
#: entry points back at joint 2, closing the SpineBase-SpineMid bone twice.
NTU_PARENTS_1BASED: Final[tuple[int, ...]] = (
    2, 1, 21, 3, 21, 5, 6, 7, 21, 9, 10, 11, 1, 13, 14, 15, 1, 17, 18, 19, 2, 8, 8, 12, 12,
)  # fmt: skip

#: Parents as a tree rooted at SpineBase (0-based, -1 for the root); the same 24
#: bones as the official list.
NTU_PARENTS: Final[tuple[int, ...]] = (-1,) + tuple(p - 1 for p in NTU_PARENTS_1BASED[1:])

NTU_LEFT_RIGHT: Final[tuple[tuple[int, int], ...]] = (
    (4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24),
)  # fmt: skip

#: End effectors and the length (in joints) of their chain to the root, as the
#: paper's end-effector velocity loss uses them: FootRight, FootLeft,
#: HandTipRight, ThumbRight, HandTipLeft, ThumbLeft, Head.
NTU_END_EFFECTORS: Final[tuple[int, ...]] = (19, 15, 23, 24, 21, 22, 3)
NTU_END_EFFECTOR_CHAIN: Final[tuple[int, ...]] = (5, 5, 8, 8, 8, 8, 5)

NTU25: Final[Layout] = Layout("ntu25", NTU_JOINT_NAMES, NTU_PARENTS, NTU_LEFT_RIGHT)

#: The joints at the end of the six hand bones (hand, hand tip and thumb of each side):
#: small and noisy in Kinect's and MediaPipe's tracking alike.
NTU_HAND_JOINTS: Final[tuple[Joint, ...]] = (
    Joint.HAND_LEFT, Joint.HAND_TIP_LEFT, Joint.THUMB_LEFT,
    Joint.HAND_RIGHT, Joint.HAND_TIP_RIGHT, Joint.THUMB_RIGHT,
)  # fmt: skip


def _body_bones() -> slice:
    body = [b for b, (child, _) in enumerate(NTU25.bones) if child not in NTU_HAND_JOINTS]
    if body != list(range(len(body))):  # the breadth-first bone order puts the hand bones last
        raise RuntimeError(f"NTU25.bones: the body bones {body} are not the first {len(body)}")
    return slice(0, len(body))


#: The body bones (trunk, neck, head, shoulders, arms, hips, legs, feet): the 18 bones of
#: ``NTU25.bones`` that do not end at a :data:`NTU_HAND_JOINTS` joint, as a slice of the
#: bone axis (they come first): ``bone_lengths(x)[..., NTU_BODY_BONES]`` is ``(..., 18)``.
NTU_BODY_BONES: Final[slice] = _body_bones()

#: NTU RGB+D's cross-view protocol (the paper's split): train on cameras 2 and 3
#: (the 45-degree views), test on camera 1 (frontal). Also the stand-in's split.
CROSS_VIEW_TRAIN_CAMERAS: Final[tuple[int, ...]] = (2, 3)
CROSS_VIEW_TEST_CAMERAS: Final[tuple[int, ...]] = (1,)

# ------------------------------------------------------------------ MediaPipe Pose 33

MP_JOINT_NAMES: Final[tuple[str, ...]] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip

#: A tree over the 33 landmarks (rooted at the left hip), for drawing and bone lengths.
MP_PARENTS: Final[tuple[int, ...]] = (
    11, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0,  # the face hangs off the nose, the nose off the left shoulder
    23, 24, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
    -1, 23, 23, 24, 25, 26, 27, 28, 27, 28,
)  # fmt: skip
MP_LEFT_RIGHT: Final[tuple[tuple[int, int], ...]] = tuple(
    (i, i + 1) for i in (11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
) + ((1, 4), (2, 5), (3, 6), (7, 8), (9, 10))

MEDIAPIPE33: Final[Layout] = Layout("mediapipe33", MP_JOINT_NAMES, MP_PARENTS, MP_LEFT_RIGHT)

LAYOUTS: Final[dict[str, Layout]] = {NTU25.name: NTU25, MEDIAPIPE33.name: MEDIAPIPE33}


def get_layout(name: str) -> Layout:
    """The layout called ``name`` (``ntu25`` or ``mediapipe33``)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}") from None


# ------------------------------------------------------------------ geometry helpers


def bone_lengths(joints: npt.ArrayLike, layout: Layout = NTU25) -> npt.NDArray[np.float32]:
    """Bone lengths ``(..., B)`` (metres) of joints ``(..., J, 3)``, in ``layout.bones`` order."""
    x = np.asarray(joints, dtype=np.float32)
    child = [c for c, _ in layout.bones]
    parent = [p for _, p in layout.bones]
    return np.linalg.norm(x[..., child, :] - x[..., parent, :], axis=-1)


def retarget_bones(
    joints: npt.ArrayLike, lengths: npt.ArrayLike, layout: Layout = NTU25
) -> npt.NDArray[np.float32]:
    """``joints`` ``(..., J, 3)`` with every bone set to ``lengths`` ``(..., B)`` or ``(B,)`` metres
    (``layout.bones`` order), by forward kinematics from the root.

    The root keeps its position and every bone its direction
    (``out[child] = out[parent] + length * unit(joints[child] - joints[parent])``), so joint
    angles are unchanged; a zero-length bone leaves the child on its parent.
    """
    x = np.asarray(joints, dtype=np.float32)
    if x.shape[-2:] != (layout.num_joints, 3):
        raise ValueError(f"joints must have shape (..., {layout.num_joints}, 3), got {x.shape}")
    lens = np.broadcast_to(np.asarray(lengths, dtype=np.float32), x.shape[:-2] + (len(layout.bones),))
    child, parent, paths = _bone_paths(layout)
    d = x[..., child, :] - x[..., parent, :]  # (..., B, 3) every bone at once
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    v = np.divide(d, n, out=np.zeros_like(d), where=n > 1e-9) * lens[..., None]
    root = layout.parents.index(-1)
    return (x[..., root : root + 1, :] + np.matmul(paths, v)).astype(
        np.float32
    )  # sum of the bones root -> joint


@functools.lru_cache(maxsize=8)
def _bone_paths(layout: Layout) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Children ``(B,)``, parents ``(B,)`` and ``paths`` ``(J, B)``: 1 where bone b lies on the path root -> j."""
    child = np.array([c for c, _ in layout.bones])
    parent = np.array([p for _, p in layout.bones])
    paths = np.zeros((layout.num_joints, len(layout.bones)), np.float32)
    for b, (c, p) in enumerate(layout.bones):  # parents come first
        paths[c] = paths[p]
        paths[c, b] = 1.0
    return child, parent, paths


def median_bone_lengths(joints: npt.ArrayLike, layout: Layout = NTU25) -> npt.NDArray[np.float32]:
    """Median over frames of the bone lengths: ``(..., T, J, 3)`` -> ``(..., B)`` metres (a body's build)."""
    return np.median(bone_lengths(joints, layout), axis=-2).astype(np.float32)


def bone_directions(joints: npt.ArrayLike, layout: Layout = NTU25) -> npt.NDArray[np.float32]:
    """Unit bone vectors ``(..., B, 3)`` from parent to child (zero for a zero-length bone)."""
    x = np.asarray(joints, dtype=np.float32)
    v = x[..., [c for c, _ in layout.bones], :] - x[..., [p for _, p in layout.bones], :]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > 1e-9, v / np.maximum(n, 1e-9), 0.0).astype(np.float32)


def mirror(joints: npt.ArrayLike, layout: Layout = NTU25) -> npt.NDArray[np.float32]:
    """Mirror a skeleton ``(..., J, 3)`` through the x = 0 plane, swapping left and right."""
    x = np.asarray(joints, dtype=np.float32)[..., list(layout.mirror_permutation), :].copy()
    x[..., 0] *= -1.0
    return x


# ------------------------------------------------------------------ normalisation


@dataclass(frozen=True)
class NormTransform:
    """What :func:`normalize` did, so :func:`denormalize` can undo it.

    ``normalised = (joints - offset) @ rotation.T``; ``offset`` is ``(3,)``
    metres, ``rotation`` a ``(3, 3)`` rotation about the vertical axis.
    """

    offset: npt.NDArray[np.float64]
    rotation: npt.NDArray[np.float64]


def view_rotation(frame: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rotation ``(3, 3)`` about the y axis that turns a skeleton ``(25, 3)`` to face the camera.

    After it, the horizontal part of the left-hip to right-hip vector points
    along +x (the Kinect convention for a person facing the camera).
    """
    f = np.asarray(frame, dtype=np.float64)
    v = f[Joint.HIP_RIGHT] - f[Joint.HIP_LEFT] + f[Joint.SHOULDER_RIGHT] - f[Joint.SHOULDER_LEFT]
    angle = np.arctan2(v[2], v[0])  # angle of v from +x towards +z
    if not np.isfinite(angle) or np.hypot(v[0], v[2]) < 1e-9:
        return np.eye(3)
    c, s = np.cos(angle), np.sin(angle)
    # Rotation about y by +angle maps (cos a, 0, sin a) onto +x.
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def normalize(
    joints: npt.ArrayLike, *, align_view: bool = False, reference: npt.ArrayLike | None = None
) -> tuple[npt.NDArray[np.float32], NormTransform]:
    """Normalise a clip the way the paper does: subtract SpineMid of the first frame.

    Args:
        joints: ``(T, 25, 3)`` or ``(T, P, 25, 3)`` metres. For several persons the
            offset is taken from the first person (persons keep their relative
            placement).
        align_view: also rotate about the vertical axis so that the first frame
            faces the camera (:func:`view_rotation`). The paper does not.
        reference: ``(25, 3)`` skeleton to take the offset and view from instead
            of the first frame (e.g. the first *valid* frame).

    Returns:
        ``(normalised clip of the input's shape, float32; the transform)``.
    """
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim not in (3, 4) or x.shape[-2:] != (J, C):
        raise ValueError(f"joints must be (T, 25, 3) or (T, P, 25, 3), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("cannot normalise an empty clip (T = 0)")
    if reference is None:
        ref = x[0] if x.ndim == 3 else x[0, 0]
    else:
        ref = np.asarray(reference, dtype=np.float64)
    offset = window_origin(ref[None]).reshape(C).copy()
    rotation = view_rotation(ref) if align_view else np.eye(3)
    out = (x - offset) @ rotation.T
    return out.astype(np.float32), NormTransform(offset=offset, rotation=rotation)


def denormalize(normalised: npt.ArrayLike, transform: NormTransform) -> npt.NDArray[np.float32]:
    """Inverse of :func:`normalize`: put a normalised clip ``(..., 25, 3)`` back in the scene."""
    x = np.asarray(normalised, dtype=np.float64)
    return (x @ transform.rotation + transform.offset).astype(np.float32)


def window_origin(windows: WindowT) -> WindowT:
    """The window convention's origin: SpineMid of each window's first frame.

    ``windows`` ``(..., T, 25, 3)`` metres (one window, a batch), a NumPy array or a torch
    tensor -> ``(..., 1, 1, 3)``, the same type and dtype (a view of ``windows``).
    """
    w: Any = windows
    return cast(WindowT, w[..., :1, Joint.SPINE_MID : Joint.SPINE_MID + 1, :])


def center_windows(windows: WindowT) -> tuple[WindowT, WindowT]:
    """Put windows ``(..., T, 25, 3)`` in the window convention the network works in.

    Returns ``(windows - origin, origin)``: :func:`window_origin` (a copy for NumPy) subtracted
    from every frame, in the input's own type and dtype (float32 stays float32; a torch tensor
    stays differentiable). :func:`uncenter_windows` undoes it; :func:`normalize` is the same
    for a whole clip (in float64, optionally view-aligned).
    """
    origin: Any = window_origin(windows)
    origin = origin.copy() if isinstance(origin, np.ndarray) else origin
    return cast(WindowT, cast(Any, windows) - origin), cast(WindowT, origin)


def uncenter_windows(centered: WindowT, origin: Any) -> WindowT:
    """Inverse of :func:`center_windows`: ``centered + origin``, back where the person stood.

    ``centered`` may be any part of the windows that broadcasts with ``origin``: the whole
    ``(..., T, 25, 3)`` with ``(..., 1, 1, 3)``, or one frame ``(25, 3)`` with ``(3,)``.
    """
    return cast(WindowT, cast(Any, centered) + origin)


# ------------------------------------------------------------------ clip policies

CropPolicy = Literal["random", "centre", "all"]


def pad_to_length(clip: npt.ArrayLike, length: int = T) -> npt.NDArray[np.float32]:
    """Pad a clip ``(T', ...)`` to ``length`` frames by repeating its last frame.

    Clips already at least ``length`` long are returned unchanged.
    """
    x = np.asarray(clip, dtype=np.float32)
    if x.shape[0] == 0:
        raise ValueError("cannot pad an empty clip (T = 0)")
    if x.shape[0] >= length:
        return x
    pad = np.repeat(x[-1:], length - x.shape[0], axis=0)
    return np.concatenate([x, pad], axis=0)


def window_starts(num_frames: int, length: int = T, stride: int | None = None) -> list[int]:
    """Start frames of sliding windows covering ``num_frames`` frames.

    The last window is aligned to the end so no frame is left out; a clip
    shorter than ``length`` gets the single start 0 (pad it first).
    """
    if stride is None:
        stride = length
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    if num_frames <= length:
        return [0]
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return starts


def crop_clip(
    clip: npt.ArrayLike,
    policy: CropPolicy = "centre",
    *,
    length: int = T,
    stride: int | None = None,
    rng: np.random.Generator | None = None,
) -> npt.NDArray[np.float32]:
    """Bring a clip ``(T', ...)`` to ``length`` frames.

    Shorter clips are padded (:func:`pad_to_length`). Longer clips are cropped:
    ``"random"`` one random window (the paper's training policy), ``"centre"``
    the middle window, ``"all"`` every sliding window (``stride`` frames apart,
    default ``length``; the last one ends at the clip's end).

    Returns:
        ``(length, ...)`` for ``"random"``/``"centre"``; ``(N, length, ...)`` for ``"all"``.
    """
    x = pad_to_length(clip, length)
    n = x.shape[0]
    if policy == "all":
        return np.stack([x[s : s + length] for s in window_starts(n, length, stride)])
    if policy == "centre":
        s = (n - length) // 2
    elif policy == "random":
        gen = rng if rng is not None else np.random.default_rng()
        s = int(gen.integers(0, n - length + 1))
    else:
        raise ValueError(f"unknown crop policy {policy!r}; use 'random', 'centre' or 'all'")
    return x[s : s + length]


def chain_to_root(joint: int, layout: Layout = NTU25) -> list[int]:
    """Joints from ``joint`` up to the root, inclusive: e.g. Head -> Neck -> SpineShoulder -> SpineMid -> SpineBase."""
    chain = [joint]
    while layout.parents[chain[-1]] >= 0:
        chain.append(layout.parents[chain[-1]])
    return chain


def check_clip(joints: npt.ArrayLike, what: str = "clip") -> npt.NDArray[np.float32]:
    """Validate a clip ``(T, 25, 3)`` or ``(T, P, 25, 3)``: shape and finite values."""
    x = np.asarray(joints, dtype=np.float32)
    if x.ndim not in (3, 4) or x.shape[-2:] != (J, C):
        raise ValueError(f"{what}: expected shape (T, 25, 3) or (T, P, 25, 3), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what}: contains NaN or infinite coordinates")
    return x


__all__: Sequence[str] = [
    "T", "J", "C", "FPS", "Layout", "NTU25", "MEDIAPIPE33", "LAYOUTS", "get_layout", "Joint",
    "NTU_JOINT_NAMES", "NTU_PARENTS", "NTU_PARENTS_1BASED", "NTU_LEFT_RIGHT",
    "NTU_END_EFFECTORS", "NTU_END_EFFECTOR_CHAIN", "NTU_HAND_JOINTS", "NTU_BODY_BONES",
    "CROSS_VIEW_TRAIN_CAMERAS", "CROSS_VIEW_TEST_CAMERAS", "MP_JOINT_NAMES",
    "bone_lengths", "bone_directions", "mirror",
    "NormTransform", "view_rotation", "normalize", "denormalize", "window_origin",
    "center_windows", "uncenter_windows", "pad_to_length",
    "window_starts", "crop_clip", "chain_to_root", "check_clip",
]  # fmt: skip
