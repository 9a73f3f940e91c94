"""What NTU RGB+D fixes besides the ``.skeleton`` syntax: file names and Kinect v2 conventions.

* File names ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication, action;
  all 1-based): :class:`NtuName`, :func:`parse_ntu_name`.
* Kinect v2 joint tracking states (0 not tracked, 1 inferred, 2 tracked) and the
  confidences they stand for: :func:`tracking_state_to_confidence`,
  :func:`confidence_to_tracking_state`.
* Typical Kinect v2 intrinsics of the depth and colour cameras, and the pinhole
  projection that fills a file's pixel columns: :data:`DEPTH_CAMERA`,
  :data:`COLOR_CAMERA`, :func:`project`.

The reader and writer of the files themselves are in :mod:`pmr_stream.formats.ntu`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

#: Kinect v2 joint tracking states.
NOT_TRACKED: Final[int] = 0
INFERRED: Final[int] = 1
TRACKED: Final[int] = 2

#: Typical Kinect v2 intrinsics used to fill the pixel columns of generated files:
#: (width, height, focal length in pixels, principal point x, principal point y).
DEPTH_CAMERA: Final[tuple[int, int, float, float, float]] = (512, 424, 365.5, 256.0, 212.0)
COLOR_CAMERA: Final[tuple[int, int, float, float, float]] = (1920, 1080, 1081.4, 960.0, 540.0)


# --------------------------------------------------------------------------- tracking states and pixels


def tracking_state_to_confidence(states: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Joint tracking states (any shape) to confidences: 2 -> 1.0, 1 -> 0.5, else 0.0."""
    s = np.asarray(states)
    return np.where(s == TRACKED, 1.0, np.where(s == INFERRED, 0.5, 0.0)).astype(np.float32)


def confidence_to_tracking_state(confidence: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Confidences in [0, 1] (any shape) to tracking states: >= 0.75 -> 2, > 0 -> 1, else 0."""
    c = np.asarray(confidence, dtype=np.float64)
    return np.where(c >= 0.75, TRACKED, np.where(c > 0.0, INFERRED, NOT_TRACKED)).astype(np.int64)


def project(xyz: npt.ArrayLike, camera: tuple[int, int, float, float, float]) -> npt.NDArray[np.float64]:
    """Pinhole projection of ``(..., 3)`` metres to ``(..., 2)`` pixels of ``camera``.

    ``camera`` is ``(width, height, f, cx, cy)``; ``u = cx + f x / z``, ``v = cy - f y / z``,
    rounded to 7 significant digits as Kinect writes them; 0 where ``z <= 0``.
    """
    p = np.asarray(xyz, dtype=np.float64)
    _, _, f, cx, cy = camera
    z = p[..., 2]
    ok = z > 1e-6
    safe_z = np.where(ok, z, 1.0)
    u = np.where(ok, cx + f * p[..., 0] / safe_z, 0.0)
    v = np.where(ok, cy - f * p[..., 1] / safe_z, 0.0)
    return _round_significant(np.stack([u, v], axis=-1), 7)


def _round_significant(a: npt.NDArray[np.float64], digits: int) -> npt.NDArray[np.float64]:
    """Round to ``digits`` significant decimal digits (via text, so the value is the decimal one)."""
    flat = [float(f"{v:.{digits}g}") for v in a.ravel().tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(a.shape)


# --------------------------------------------------------------------------- file names

_NAME_RE: Final = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})(?:_rgb)?(?:\.[A-Za-z0-9]+)?")


@dataclass(frozen=True)
class NtuName:
    """The parts of an NTU file name ``SsssCcccPpppRrrrAaaa`` (all 1-based as in the name)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def stem(self) -> str:
        """The name without suffix, e.g. ``"S001C001P001R001A001"``."""
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
            f"R{self.replication:03d}A{self.action:03d}"
        )


def parse_ntu_name(name_or_path: str | os.PathLike[str]) -> NtuName:
    """Parse an NTU file name such as ``S001C001P001R001A001`` (a path and a suffix such
    as ``.skeleton`` or ``_rgb.avi`` are allowed).

    Raises:
        ValueError: the name does not have the NTU form (the message names it).
    """
    name = Path(os.fspath(name_or_path)).name
    m = _NAME_RE.fullmatch(name)
    if m is None:
        raise ValueError(f"not an NTU file name (expected SsssCcccPpppRrrrAaaa[.skeleton]): {name!r}")
    return NtuName(*(int(g) for g in m.groups()))


__all__ = [
    "NtuName", "parse_ntu_name", "tracking_state_to_confidence", "confidence_to_tracking_state", "project",
    "DEPTH_CAMERA", "COLOR_CAMERA", "NOT_TRACKED", "INFERRED", "TRACKED",
]  # fmt: skip
