"""BVH (Biovision Hierarchy) export of a recording, for Blender, Unity and MotionBuilder.

A BVH file holds one skeleton, so each person becomes a file of its own
(:func:`write_bvh_files`; :func:`save_bvh` writes one). What a file holds:

* ``HIERARCHY``: the 25 NTU-25 joints of :mod:`pmr_stream.skeleton` under their Kinect names,
  rooted at SpineBase, each leaf (Head, HandTip, Thumb, Foot) closed by an ``End Site`` half its
  bone long. The ``OFFSET``\\ s are a T-pose (:mod:`.bvh_ik`) of one body's bone lengths: the
  dummy's (``body`` given: the same median lengths as ``--bones dummy``) or else the motion's own
  median lengths (a file anonymized with ``--bones dummy`` has the dummy's bones in every frame,
  so the two agree). The arrangement of the joints with several children (hips, shoulders,
  thumb) is that body's own mean.
* ``CHANNELS``: the root ``Xposition Yposition Zposition`` and three rotations, every other joint
  three rotations (degrees; ``Yrotation Zrotation Xrotation``, i.e. ``R = Ry Rz Rx``, for the
  trunk, head and legs, ``Zrotation Xrotation Yrotation`` for the arms and hands: each joint's
  gimbal lock where it seldom turns, see :data:`.bvh_ik.ROTATION_ORDERS`), computed per frame by
  inverse kinematics from the joint positions (:mod:`.bvh_ik`).
* ``MOTION``: one line per frame of the recording, ``Frame Time`` = 1 / its mean frame rate (30
  fps when it has fewer than two timestamps; uneven timestamps are not resampled). Frames where the person is absent hold the pose of the
  last frame they were present (before their first appearance: the first one), so every
  person's file has the recording's frame count and the files line up in time.

Axes and unit: the Kinect camera convention (metres, ``+x`` the sensor's left, ``+y`` up, ``+z``
depth) turned half a turn about the vertical: BVH ``(X, Y, Z) = scale * (-x, y, -z)``, a
right-handed, ``Y``-up frame in which a person facing the camera faces ``+Z`` (their left is
``+X``), as BVH files and the Blender and Unity importers expect; the camera stays at the
origin. ``scale`` is 100 for the default centimetres (:class:`BvhOptions`).

Nothing else is written: no metadata of the recording, no names, no comments (the privacy
allow-list; the joint names are the layout's).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.formats import bvh_ik
from pmr_stream.formats.files import atomic_write
from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import FPS, NTU25, NTU_JOINT_NAMES, median_bone_lengths

logger = logging.getLogger(__name__)

#: Length units of the file: metres per unit.
UNITS: Final[dict[str, float]] = {"cm": 100.0, "m": 1.0, "mm": 1000.0}
#: Kinect camera axes -> BVH axes (a half turn about the vertical).
KINECT_TO_BVH: Final[npt.NDArray[np.float64]] = np.diag([-1.0, 1.0, -1.0])
#: Position channels of the root (its rotation channels follow).
POSITION_CHANNELS: Final[tuple[str, ...]] = ("Xposition", "Yposition", "Zposition")
#: Length of a leaf's End Site, as a fraction of the leaf's own bone (for display only).
END_SITE_FRACTION: Final[float] = 0.5


@dataclass(frozen=True)
class BvhOptions:
    """How a BVH file is written.

    Attributes:
        unit: length unit of ``OFFSET`` and position channels: ``cm`` (default; Blender's and
            MotionBuilder's importers scale it), ``m`` or ``mm``.
        decimals: decimals of every number written (positions in ``unit``, angles in degrees).
    """

    unit: str = "cm"
    decimals: int = 6

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown BVH unit {self.unit!r}; known: {', '.join(UNITS)}")
        if not 1 <= self.decimals <= 12:
            raise ValueError(f"decimals must lie in 1..12, got {self.decimals}")

    @property
    def scale(self) -> float:
        """File units per metre."""
        return UNITS[self.unit]


def add_bvh_arguments(p: argparse.ArgumentParser) -> None:
    """``--person``, ``--dummy`` and ``--unit``: the BVH output's flags (defaults ``None``, so a
    command can tell that they were given for another format)."""
    g = p.add_argument_group("BVH output (--to bvh or a .bvh output)")
    g.add_argument("--person", type=int, default=None,
                   help="write only this person (0-based); default: a file per person present, "
                   "STEM_personN.bvh when there are several")  # fmt: skip
    g.add_argument("--dummy", default=None, metavar="DUMMY",
                   help="take the skeleton (bone lengths, hip/shoulder/hand arrangement) from this dummy: a "
                   "recording or .npy window as for pmr anonymize, or 'shipped' for the shipped dummy; "
                   "default: the motion's own (an anonymized file's are the dummy's)")  # fmt: skip
    g.add_argument("--unit", choices=tuple(UNITS), default=None, help="length unit of the file (default cm)")


def to_bvh_axes(joints: npt.ArrayLike, opts: BvhOptions = BvhOptions()) -> npt.NDArray[np.float64]:
    """Kinect-convention metres ``(..., 3)`` -> BVH axes in ``opts.unit`` ``(..., 3)`` float64."""
    return np.asarray(joints, dtype=np.float64) @ KINECT_TO_BVH.T * opts.scale


def from_bvh_axes(points: npt.ArrayLike, opts: BvhOptions = BvhOptions()) -> npt.NDArray[np.float64]:
    """Inverse of :func:`to_bvh_axes`: BVH positions ``(..., 3)`` -> Kinect-convention metres."""
    return np.asarray(points, dtype=np.float64) / opts.scale @ KINECT_TO_BVH


@dataclass(frozen=True)
class BvhSkeleton:
    """The hierarchy of a BVH file.

    Attributes:
        lengths: ``(24,)`` bone lengths in metres, ``NTU25.bones`` order.
        directions: ``(25, 3)`` unit rest direction of the bone ending at each joint (BVH
            axes; row 0, the root, zero).
    """

    lengths: npt.NDArray[np.float64]
    directions: npt.NDArray[np.float64]

    @classmethod
    def from_body(cls, body: npt.ArrayLike) -> BvhSkeleton:
        """The skeleton of a body's frames ``(N, 25, 3)`` (Kinect-convention metres): its median
        bone lengths and its mean arrangement at the branching joints.

        Raises:
            ValueError: wrong shape, no frame, a non-finite value, or a bone of zero median length.
        """
        x = np.asarray(body, dtype=np.float64)
        if x.ndim != 3 or x.shape[1:] != (NTU25.num_joints, 3) or len(x) == 0:
            raise ValueError(f"a body must be (N, {NTU25.num_joints}, 3) frames with N >= 1, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("the body holds NaN or infinite values")
        lengths = median_bone_lengths(x).astype(np.float64)
        if np.any(lengths <= 1e-6):
            zero = [NTU_JOINT_NAMES[c] for (c, _), n in zip(NTU25.bones, lengths, strict=True) if n <= 1e-6]
            raise ValueError(f"the body has bones of zero length (ending at {', '.join(zero)})")
        return cls(lengths=lengths, directions=bvh_ik.rest_directions(to_bvh_axes(x, BvhOptions(unit="m"))))

    def offsets(self, opts: BvhOptions = BvhOptions()) -> npt.NDArray[np.float64]:
        """``OFFSET`` of every joint from its parent ``(25, 3)`` in ``opts.unit`` (root: zero)."""
        out = np.zeros((NTU25.num_joints, 3))
        for b, (c, _) in enumerate(NTU25.bones):
            out[c] = self.directions[c] * self.lengths[b] * opts.scale
        return out


def fill_gaps(joints: npt.ArrayLike, present: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """Hold the last present pose through absent frames (the first one before it appears).

    Args:
        joints: ``(T, 25, 3)``; present: ``(T,)`` bool, at least one ``True``.

    Returns:
        ``(joints (T, 25, 3) float64 with every frame filled, number of frames filled)``.
    """
    x = np.asarray(joints, dtype=np.float64)
    pres = np.asarray(present, dtype=bool)
    idx = np.where(pres, np.arange(len(pres)), -1)
    idx = np.maximum.accumulate(idx)  # the last present frame at or before each frame
    idx = np.where(idx < 0, int(np.argmax(pres)), idx)
    return x[idx], int((~pres).sum())


def motion_channels(
    positions: npt.ArrayLike, skeleton: BvhSkeleton, opts: BvhOptions = BvhOptions()
) -> npt.NDArray[np.float64]:
    """The ``MOTION`` values ``(T, 3 + 3 * 25)``: root position, then each joint's three angles
    (degrees, in its channels' order) in the hierarchy's order (depth first, :func:`hierarchy_order`).

    Args:
        positions: ``(T, 25, 3)`` joints in BVH axes and ``opts.unit`` (:func:`to_bvh_axes`).
    """
    x = np.asarray(positions, dtype=np.float64)
    g = bvh_ik.global_rotations(x, skeleton.offsets(opts))
    angles = bvh_ik.joint_angles(bvh_ik.local_rotations(g))  # (T, 25, 3)
    order = hierarchy_order()
    return np.concatenate([x[:, order[0]], angles[:, order].reshape(len(x), -1)], axis=1)


def hierarchy_order() -> list[int]:
    """The joints in the order the hierarchy lists them (depth first from SpineBase)."""
    out: list[int] = []

    def visit(j: int) -> None:
        out.append(j)
        for c in bvh_ik.CHILDREN[j]:
            visit(c)

    visit(bvh_ik.ORDER[0])
    return out


def channel_names(joint: int) -> tuple[str, ...]:
    """The channels of ``joint``: its rotations in its :data:`bvh_ik.ROTATION_ORDERS`, after
    the three positions for the root."""
    rotations = tuple(f"{axis}rotation" for axis in bvh_ik.ROTATION_ORDERS[joint])
    return (POSITION_CHANNELS if joint == bvh_ik.ORDER[0] else ()) + rotations


def hierarchy_text(skeleton: BvhSkeleton, opts: BvhOptions = BvhOptions()) -> str:
    """The ``HIERARCHY`` section."""
    off = skeleton.offsets(opts)
    fmt = f"{{:.{opts.decimals}f}}"
    lines = ["HIERARCHY"]

    def vec(v: npt.NDArray[np.float64]) -> str:
        return " ".join(
            fmt.format(float(c)) for c in np.where(np.abs(v) < 0.5 * 10.0**-opts.decimals, 0.0, v)
        )

    def visit(j: int, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {NTU_JOINT_NAMES[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {vec(off[j])}")
        channels = channel_names(j)
        lines.append(f"{pad}  CHANNELS {len(channels)} {' '.join(channels)}")
        kids = bvh_ik.CHILDREN[j]
        for c in kids:
            visit(c, depth + 1)
        if not kids:
            lines.append(f"{pad}  End Site")
            lines.append(pad + "  {")
            lines.append(f"{pad}    OFFSET {vec(off[j] * END_SITE_FRACTION)}")
            lines.append(pad + "  }")
        lines.append(pad + "}")

    visit(bvh_ik.ORDER[0], 0)
    return "\n".join(lines) + "\n"


def bvh_text(
    joints: npt.ArrayLike,
    present: npt.ArrayLike,
    fps: float,
    skeleton: BvhSkeleton,
    opts: BvhOptions = BvhOptions(),
) -> tuple[str, int]:
    """One person's BVH file.

    Args:
        joints: ``(T, 25, 3)`` Kinect-convention metres.
        present: ``(T,)`` bool, the frames the person is in (at least one).
        fps: frames per second (``Frame Time`` = 1 / fps).

    Returns:
        ``(the file's text, the number of absent frames that hold a pose)``.
    """
    if not fps > 0 or not np.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    pres = np.asarray(present, dtype=bool)
    if not pres.any():
        raise ValueError("the person is in no frame")
    filled, held = fill_gaps(joints, pres)
    values = motion_channels(to_bvh_axes(filled, opts), skeleton, opts)
    values = np.where(np.abs(values) < 0.5 * 10.0**-opts.decimals, 0.0, values)  # no "-0.000000"
    fmt = f"%.{opts.decimals}f"
    body = "\n".join(" ".join(fmt % v for v in row) for row in values)
    head = f"MOTION\nFrames: {len(values)}\nFrame Time: {1.0 / fps:.8f}\n"
    return hierarchy_text(skeleton, opts) + head + body + "\n", held


@dataclass(frozen=True)
class BvhWritten:
    """One file written: its path, the person (index in the recording), its frames, the absent
    frames that hold a pose, and the frame rate (frames per second) it was written at."""

    path: str
    person: int
    frames: int
    held: int
    fps: float


def persons_present(rec: Recording) -> list[int]:
    """The persons of ``rec`` present in at least one frame."""
    return [int(p) for p in np.flatnonzero(rec.present.any(axis=0))]


def check_bvh(rec: Recording, person: int | None = None) -> list[int]:
    """The persons a BVH export of ``rec`` writes (``person`` alone when given).

    Raises:
        ValueError: not an ``ntu25`` recording, no person in any frame, ``person`` out of range
            or never present.
    """
    if rec.layout != NTU25.name:
        raise ValueError(f"BVH export needs an {NTU25.name} recording, this one is {rec.layout}")
    found = persons_present(rec)
    if person is None:
        if not found:
            raise ValueError("no person is present in any frame; nothing to export")
        return found
    if not 0 <= person < rec.num_persons:
        raise ValueError(
            f"--person {person} out of range: the recording has {rec.num_persons} person slot(s)"
        )
    if person not in found:
        raise ValueError(f"person {person} is present in no frame; present: {found or 'none'}")
    return [person]


def bvh_paths(path: str | os.PathLike[str], persons: list[int]) -> list[str]:
    """Output files: ``path`` itself for one person, else ``STEM_personN.bvh`` beside it."""
    name = os.fspath(path)
    if len(persons) == 1:
        return [name]
    p = Path(name)
    return [str(p.with_name(f"{p.stem}_person{n}{p.suffix or '.bvh'}")) for n in persons]


def write_bvh_files(
    rec: Recording,
    path: str | os.PathLike[str],
    *,
    person: int | None = None,
    body: npt.ArrayLike | None = None,
    opts: BvhOptions = BvhOptions(),
    overwrite: bool = True,
) -> list[BvhWritten]:
    """Write each person of ``rec`` (or ``person``) to a BVH file (see :func:`bvh_paths`), atomically.

    Args:
        body: ``(N, 25, 3)`` frames (Kinect-convention metres) of the body whose skeleton the
            hierarchy takes, e.g. the dummy's window; ``None``: each person's own present frames.
    """
    persons = check_bvh(rec, person)
    paths = bvh_paths(path, persons)
    if not overwrite:
        for out in paths:
            if os.path.lexists(out):
                raise ValueError(f"{out}: exists already; pass --overwrite to replace it")
    fps = rec.fps or FPS
    fixed = BvhSkeleton.from_body(body) if body is not None else None
    written = []
    for p, out in zip(persons, paths, strict=True):
        pres = rec.present[:, p]
        skeleton = fixed if fixed is not None else BvhSkeleton.from_body(rec.joints[pres, p])
        text, held = bvh_text(rec.joints[:, p], pres, fps, skeleton, opts)
        with atomic_write(out, overwrite=overwrite) as fh:
            fh.write(text.encode("ascii"))
        written.append(BvhWritten(path=out, person=p, frames=rec.num_frames, held=held, fps=fps))
        logger.info("wrote %s: person %d, %d frames (%d held)", out, p, rec.num_frames, held)
    return written


__all__ = [
    "UNITS", "KINECT_TO_BVH", "add_bvh_arguments", "POSITION_CHANNELS", "channel_names", "BvhOptions", "BvhSkeleton", "BvhWritten", "to_bvh_axes", "from_bvh_axes",
    "fill_gaps", "motion_channels", "hierarchy_order", "hierarchy_text", "bvh_text", "persons_present",
    "check_bvh", "bvh_paths", "write_bvh_files",
]  # fmt: skip
