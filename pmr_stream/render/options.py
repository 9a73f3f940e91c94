"""How a skeleton clip is drawn: :class:`RenderOptions`, the colours and the sizes in metres.

Colours are RGB. Bones are coloured by side: joints whose name contains "left" (any
case) are the left side (blue), "right" the right side (red/orange), the rest the
centre (dark grey). Later persons get other shades (:func:`person_colors`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import NTU25, Layout

Color = tuple[int, int, int]
ImageArray = npt.NDArray[np.uint8]

#: RGB colours ``(left, right, centre)`` for persons 0, 1, 2 (then repeating).
PERSON_PALETTES: tuple[tuple[Color, Color, Color], ...] = (
    ((35, 95, 225), (225, 65, 35), (45, 45, 45)),
    ((40, 170, 215), (240, 150, 25), (105, 105, 105)),
    ((120, 75, 210), (200, 35, 110), (75, 75, 75)),
)
#: Person 0's colours, for tests and legends.
LEFT_COLOR: Color = PERSON_PALETTES[0][0]
RIGHT_COLOR: Color = PERSON_PALETTES[0][1]
CENTER_COLOR: Color = PERSON_PALETTES[0][2]
#: Colour of joints with confidence 0 (hollow circles) and of their bones (dashed).
MISSING_COLOR: Color = (160, 160, 160)

#: Smallest extent (metres) a clip's bounding box is given when fitting a camera,
#: so a single point or a flat pose does not blow up the scale.
MIN_EXTENT_M: float = 0.5
#: Radius of the drawn head, metres.
HEAD_RADIUS_M: float = 0.09
#: Spacing of the floor grid, metres, and how far it reaches beyond the clip.
FLOOR_CELL_M: float = 0.5
FLOOR_PAD_M: float = 0.5


@dataclass
class RenderOptions:
    """How a skeleton clip is drawn.

    Attributes:
        width, height: image size, pixels.
        azimuth_deg: rotation of the view about the vertical axis, degrees.
            0 looks from the camera (as the Kinect saw the scene); 90 looks from
            the ``-x`` side (a person facing the camera is then seen from their left).
        elevation_deg: how far the viewpoint is raised above the horizontal,
            degrees in [-90, 90] (positive: looking down on the scene).
        margin: fraction of the width (left and right) and of the height (top and
            bottom) kept free around the skeletons, in [0, 0.5).
        background: RGB background colour.
        line_width: bone thickness, pixels (>= 1).
        joint_radius: joint dot radius, pixels (>= 0; 0 draws no dots).
        show_confidence: draw joints and bones by confidence: the colour fades
            towards the background and dots shrink with lower confidence;
            confidence-0 joints are hollow grey circles and their bones grey and
            dashed. Without it a given confidence is ignored.
        title: text drawn at the top centre, or ``None``.
        show_frame_index: write "frame N" in the bottom-left corner when the
            frame index is known.
        floor: draw a floor grid under the lowest joint of the clip.
        layout: skeleton layout of the joints (NTU-25 by default).
    """

    width: int = 640
    height: int = 480
    azimuth_deg: float = 0.0
    elevation_deg: float = 10.0
    margin: float = 0.08
    background: tuple = (255, 255, 255)
    line_width: int = 3
    joint_radius: int = 4
    show_confidence: bool = False
    title: str | None = None
    show_frame_index: bool = True
    floor: bool = True
    layout: Layout = NTU25

    def __post_init__(self) -> None:
        for name in ("width", "height", "line_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"RenderOptions.{name} must be a positive integer, got {v!r}")
        if isinstance(self.joint_radius, bool) or not isinstance(self.joint_radius, (int, np.integer)):
            raise ValueError(f"RenderOptions.joint_radius must be an integer >= 0, got {self.joint_radius!r}")
        if self.joint_radius < 0:
            raise ValueError(f"RenderOptions.joint_radius must be >= 0, got {self.joint_radius}")
        if not math.isfinite(self.azimuth_deg):
            raise ValueError(f"RenderOptions.azimuth_deg must be finite, got {self.azimuth_deg}")
        if not (math.isfinite(self.elevation_deg) and -90.0 <= self.elevation_deg <= 90.0):
            raise ValueError(f"RenderOptions.elevation_deg must be in [-90, 90], got {self.elevation_deg}")
        if not (math.isfinite(self.margin) and 0.0 <= self.margin < 0.5):
            raise ValueError(f"RenderOptions.margin must be in [0, 0.5), got {self.margin}")
        bg = tuple(self.background)
        if len(bg) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in bg):
            raise ValueError(
                f"RenderOptions.background must be three integers in [0, 255] (RGB), got {self.background!r}"
            )
        self.background = tuple(int(c) for c in bg)
        if not isinstance(self.layout, Layout):
            raise ValueError(
                f"RenderOptions.layout must be a skeleton Layout, got {type(self.layout).__name__}"
            )


def person_colors(person: int) -> tuple[Color, Color, Color]:
    """RGB ``(left, right, centre)`` bone colours of person number ``person`` (0-based)."""
    return PERSON_PALETTES[person % len(PERSON_PALETTES)]


@functools.lru_cache(maxsize=16)
def joint_sides(layout: Layout) -> tuple[int, ...]:
    """Side of each joint of ``layout``: ``0`` left, ``1`` right, ``2`` centre (from the names)."""
    sides = []
    for name in layout.joint_names:
        low = name.lower()
        sides.append(0 if "left" in low else 1 if "right" in low else 2)
    return tuple(sides)


def mix(color: Sequence[int], background: Sequence[int], alpha: float) -> Color:
    """``alpha * color + (1 - alpha) * background``, as ints."""
    a = float(np.clip(alpha, 0.0, 1.0))

    def one(k: int) -> int:
        return int(round(a * color[k] + (1.0 - a) * background[k]))

    return (one(0), one(1), one(2))


def text_color(background: Sequence[int]) -> Color:
    """Near-black on a light RGB ``background``, near-white on a dark one."""
    lum = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (20, 20, 20) if lum > 128 else (235, 235, 235)


@functools.lru_cache(maxsize=16)
def head_index(layout: Layout) -> int | None:
    """Index of the head joint of ``layout`` ("Head" in NTU-25, "nose" in MediaPipe-33), or None."""
    for name in ("Head", "nose"):
        if name in layout.joint_names:
            return layout.joint_names.index(name)
    return None


def head_radius_px(scale: float, options: RenderOptions) -> float:
    """Radius (pixels) of the head ring at ``scale`` pixels per metre."""
    return max(HEAD_RADIUS_M * scale, 1.5 * options.joint_radius, 3.0)


__all__ = [
    "Color", "ImageArray", "RenderOptions", "person_colors", "joint_sides", "PERSON_PALETTES", "LEFT_COLOR",
    "RIGHT_COLOR", "CENTER_COLOR", "MISSING_COLOR", "MIN_EXTENT_M", "HEAD_RADIUS_M", "FLOOR_CELL_M", "FLOOR_PAD_M",
]  # fmt: skip
