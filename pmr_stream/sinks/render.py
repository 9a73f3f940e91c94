"""Headless rendering of skeleton sequences (stick figures) with OpenCV.

Used by ``pmr visualize`` and ``pmr compare``, the streaming viewer and the video
writer. Everything here works without a display.

Conventions:

* Joints are metres in the Kinect camera convention of :mod:`pmr_stream.skeleton`
  (``+x`` the person's right for a person facing the camera, ``+y`` up, ``+z``
  away from the camera). Non-finite coordinates mark missing joints.
* Images are RGB ``uint8`` arrays ``(H, W, 3)``; clips of images are
  ``(T, H, W, 3)``. Conversion to BGR happens only inside :func:`write_video`.
* The projection is orthographic. At ``azimuth_deg = 0`` the view is the one the
  Kinect had: ``+x`` is screen-right (as in Kinect's mirrored colour image) and
  ``+y`` is screen-up. One :class:`Camera` is fitted to a whole clip, so a person
  walking across the room moves across the picture.
* Bones are coloured by side: joints whose name contains "left" (any case) are
  the left side (blue), "right" the right side (red/orange), the rest the centre
  (dark grey). Later persons get other shades (:func:`person_colors`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import NTU25, Layout

log = logging.getLogger(__name__)

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

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".gif", ".png")

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_MAX_PX = 1e5  # coordinates are clipped to +-this before drawing (int overflow guard)


# --------------------------------------------------------------------------- options


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


# --------------------------------------------------------------------------- colours


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


def _mix(color: Sequence[int], background: Sequence[int], alpha: float) -> Color:
    """``alpha * color + (1 - alpha) * background``, as ints."""
    a = float(np.clip(alpha, 0.0, 1.0))

    def one(k: int) -> int:
        return int(round(a * color[k] + (1.0 - a) * background[k]))

    return (one(0), one(1), one(2))


def _text_color(background: Sequence[int]) -> Color:
    lum = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (20, 20, 20) if lum > 128 else (235, 235, 235)


@functools.lru_cache(maxsize=16)
def _head_index(layout: Layout) -> int | None:
    for name in ("Head", "nose"):
        if name in layout.joint_names:
            return layout.joint_names.index(name)
    return None


# --------------------------------------------------------------------------- shapes


def _rotation(azimuth_deg: float, elevation_deg: float) -> npt.NDArray[np.float64]:
    """View rotation ``(3, 3)``: turn about y by the azimuth, then tilt about x by the elevation."""
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    ca, sa, ce, se = math.cos(a), math.sin(a), math.cos(e), math.sin(e)
    ry = np.array([[ca, 0.0, -sa], [0.0, 1.0, 0.0], [sa, 0.0, ca]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, ce, se], [0.0, -se, ce]])
    return rx @ ry


def _as_clip(
    joints: npt.ArrayLike,
    layout: Layout,
    confidence: npt.ArrayLike | None,
    present: npt.ArrayLike | None,
    what: str = "joints",
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None, npt.NDArray[np.bool_]]:
    """Bring a clip to ``(T, P, J, 3)``, confidence to ``(T, P, J)`` and presence to ``(T, P)``.

    A person counts as absent where ``present`` says so, where none of its
    joints is finite, or where all its joints are exactly zero (how NTU files
    pad a missing second body).
    """
    x = np.asarray(joints, dtype=np.float64)
    nj = layout.num_joints
    if x.ndim not in (3, 4) or x.shape[-2:] != (nj, 3):
        raise ValueError(f"{what}: expected shape (T, {nj}, 3) or (T, P, {nj}, 3), got {x.shape}")
    single = x.ndim == 3
    if single:
        x = x[:, None]
    tp = x.shape[:2]
    conf = None
    if confidence is not None:
        conf = np.asarray(confidence, dtype=np.float64)
        if single and conf.shape == (tp[0], nj):
            conf = conf[:, None]
        if conf.shape != (*tp, nj):
            want = f"({tp[0]}, {nj})" if single else f"({tp[0]}, {tp[1]}, {nj})"
            raise ValueError(f"{what}: confidence must have shape {want}, got {conf.shape}")
    pres = _presence(x, present, single, what)
    return x, conf, pres


def _auto_presence(x: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Persons ``x.shape[:-2]`` that have a finite joint and are not all zeros."""
    finite = np.isfinite(x).all(axis=-1)
    zero = np.all(np.where(np.isfinite(x), x, 0.0) == 0.0, axis=(-1, -2))
    return finite.any(axis=-1) & ~zero


def _bool_mask(present: npt.ArrayLike, what: str) -> npt.NDArray[np.bool_]:
    p = np.asarray(present)
    if p.dtype != np.bool_ and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{what}: present must be boolean, got dtype {p.dtype}")
    return p.astype(bool)


def _presence(
    x: npt.NDArray[np.float64], present: npt.ArrayLike | None, single: bool, what: str
) -> npt.NDArray[np.bool_]:
    """Presence ``(T, P)`` of a clip ``x`` ``(T, P, J, 3)``; ``single``: the input was ``(T, J, 3)``."""
    auto = _auto_presence(x)
    if present is None:
        return auto
    p = _bool_mask(present, what)
    if single and p.shape == x.shape[:1]:
        p = p[:, None]
    if p.shape != x.shape[:2]:
        want = x.shape[:1] if single else x.shape[:2]
        raise ValueError(f"{what}: present must have shape {tuple(want)}, got {p.shape}")
    return p & auto


def _valid_points(
    joints: npt.ArrayLike, present: npt.ArrayLike | None, layout: Layout
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """All finite joints of present persons of ``joints`` ``(..., J, 3)``.

    ``present`` has the shape ``joints.shape[:-2]``.

    Returns:
        ``(points (N, 3), heads (M, 3))``: every valid joint, and the valid head
        joints among them (the drawn head ring needs room around them).
    """
    x = np.asarray(joints, dtype=np.float64)
    nj = layout.num_joints
    if x.ndim < 2 or x.shape[-2:] != (nj, 3):
        raise ValueError(f"joints: expected shape (..., {nj}, 3), got {x.shape}")
    pres = _auto_presence(x)
    if present is not None:
        p = _bool_mask(present, "joints")
        if p.shape != x.shape[:-2]:
            raise ValueError(f"joints: present must have shape {x.shape[:-2]}, got {p.shape}")
        pres = pres & p
    persons = x[pres]  # (N_persons, J, 3)
    pts = persons.reshape(-1, 3)
    head = _head_index(layout)
    heads = persons[:, head] if head is not None else np.zeros((0, 3))
    return pts[np.isfinite(pts).all(axis=-1)], heads[np.isfinite(heads).all(axis=-1)]


# --------------------------------------------------------------------------- camera


@dataclass
class Camera:
    """A fixed orthographic camera for a whole clip.

    A point ``p`` (metres) is rotated into view coordinates ``v = rotation @ p``
    and drawn at column ``width / 2 + scale * (v_x - center[0])`` and row
    ``height / 2 - scale * (v_y - center[1])`` (so ``+y`` is up on screen and, at
    azimuth 0, ``+x`` is screen-right). The same ``scale`` (pixels per metre)
    applies to both screen axes.

    Attributes:
        width, height: image size the camera draws into, pixels.
        rotation: ``(3, 3)`` view rotation (see :class:`RenderOptions`).
        scale: pixels per metre.
        center: ``(2,)`` view-plane point (metres) shown at the image centre.
        floor_y: height (metres, world ``y``) of the floor, or ``None`` for no floor.
        floor_extent: ``(x_min, x_max, z_min, z_max)`` metres of the floor grid.
    """

    width: int
    height: int
    rotation: npt.NDArray[np.float64]
    scale: float
    center: npt.NDArray[np.float64]
    floor_y: float | None = None
    floor_extent: tuple[float, float, float, float] | None = None
    _background_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.center = np.asarray(self.center, dtype=np.float64).reshape(2)
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"Camera.scale must be positive and finite, got {self.scale}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"Camera size must be positive, got {self.width}x{self.height}")

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        joints: npt.ArrayLike,
        present: npt.ArrayLike | None = None,
        options: RenderOptions | None = None,
    ) -> Camera:
        """Fit a camera to every frame of a clip.

        Args:
            joints: ``(T, P, J, 3)``, ``(T, J, 3)`` or a single ``(J, 3)`` frame, metres.
                Non-finite joints are ignored.
            present: boolean mask of ``joints.shape[:-2]`` (``(T, P)`` or ``(T,)``);
                absent persons are ignored (so are all-zero persons).
            options: image size, view angles, margin, floor and layout.

        Returns:
            A camera whose image shows all valid joints of all frames inside the
            margin, the bounding box centred and as large as the aspect allows.
        """
        opts = options if options is not None else RenderOptions()
        return cls.fit_points(*_valid_points(joints, present, opts.layout), options=opts)

    @classmethod
    def fit_points(
        cls, points: npt.ArrayLike, heads: npt.ArrayLike | None = None, options: RenderOptions | None = None
    ) -> Camera:
        """Fit a camera to points ``(N, 3)`` metres; see :meth:`fit`.

        ``heads`` ``(M, 3)`` are head joints: the fit leaves :data:`HEAD_RADIUS_M`
        around them for the drawn head. Non-finite points are ignored. With a
        title, the top margin is at least the title's height.
        """
        opts = options if options is not None else RenderOptions()
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=-1)]
        hd = np.zeros((0, 3)) if heads is None else np.asarray(heads, dtype=np.float64).reshape(-1, 3)
        hd = hd[np.isfinite(hd).all(axis=-1)]
        rot = _rotation(opts.azimuth_deg, opts.elevation_deg)
        side = opts.width * opts.margin
        bottom = opts.height * opts.margin
        top = max(bottom, float(_text_height(opts.height, opts.width) + 4)) if opts.title else bottom
        inner_w = max(1.0, opts.width - 2.0 * side)
        inner_h = max(1.0, opts.height - top - bottom)
        if len(pts) == 0:
            log.warning("Camera.fit: no valid joints to fit to; using a 2 m view around the origin")
            return cls(opts.width, opts.height, rot, min(inner_w, inner_h) / 2.0, np.zeros(2))
        v = pts @ rot.T
        lo0, hi0 = v[:, :2].min(axis=0), v[:, :2].max(axis=0)
        vh = (hd @ rot.T)[:, :2]
        lo, hi = lo0, hi0
        scale = float("inf")
        # The head ring's radius is partly in pixels (_head_radius_px), so iterate a little.
        for _ in range(3 if len(vh) else 1):
            if len(vh):
                r = HEAD_RADIUS_M if not math.isfinite(scale) else _head_radius_px(scale, opts) / scale
                lo = np.minimum(lo0, vh.min(axis=0) - r)
                hi = np.maximum(hi0, vh.max(axis=0) + r)
            ext = np.maximum(hi - lo, MIN_EXTENT_M)
            scale = float(min(inner_w / ext[0], inner_h / ext[1]))
        center = (lo + hi) / 2.0
        center[1] += (top - bottom) / (2.0 * scale)  # the inner area's middle is below the image's
        floor_y = floor_extent = None
        if opts.floor:
            floor_y = float(pts[:, 1].min())
            cell = FLOOR_CELL_M
            x0 = math.floor((pts[:, 0].min() - FLOOR_PAD_M) / cell) * cell
            x1 = math.ceil((pts[:, 0].max() + FLOOR_PAD_M) / cell) * cell
            z0 = math.floor((pts[:, 2].min() - FLOOR_PAD_M) / cell) * cell
            z1 = math.ceil((pts[:, 2].max() + FLOOR_PAD_M) / cell) * cell
            floor_extent = (x0, x1, z0, z1)
        return cls(opts.width, opts.height, rot, scale, center, floor_y, floor_extent)

    # ------------------------------------------------------------------ projection

    def project(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Pixel coordinates ``(..., 2)`` (column, row; floats) of points ``(..., 3)`` metres."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (3,):
            raise ValueError(f"points must have shape (..., 3), got {p.shape}")
        v = p @ self.rotation[:2].T
        u = self.width / 2.0 + self.scale * (v[..., 0] - self.center[0])
        r = self.height / 2.0 - self.scale * (v[..., 1] - self.center[1])
        return np.stack([u, r], axis=-1)

    def depth(self, points: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Distance ``(...)`` of points ``(..., 3)`` along the viewing direction (larger = farther)."""
        return np.asarray(points, dtype=np.float64) @ self.rotation[2]

    def background(self, options: RenderOptions) -> ImageArray:
        """The empty image (background colour and floor grid) of this camera; a fresh copy."""
        key = (options.background, options.floor, options.line_width)
        img = self._background_cache.get(key)
        if img is None:
            img = np.empty((self.height, self.width, 3), dtype=np.uint8)
            img[:] = options.background
            if options.floor and self.floor_y is not None and self.floor_extent is not None:
                self._draw_floor(img, options, self.floor_y, self.floor_extent)
            self._background_cache[key] = img
        return img.copy()

    def _draw_floor(
        self, img: ImageArray, options: RenderOptions, y: float, extent: tuple[float, float, float, float]
    ) -> None:
        x0, x1, z0, z1 = extent
        grid = _mix((120, 120, 120), options.background, 0.45)
        edge = _mix((90, 90, 90), options.background, 0.7)
        segs = []
        for x in np.arange(x0, x1 + 1e-9, FLOOR_CELL_M):
            segs.append(((x, y, z0), (x, y, z1)))
        for z in np.arange(z0, z1 + 1e-9, FLOOR_CELL_M):
            segs.append(((x0, y, z), (x1, y, z)))
        px = self.project(np.array(segs, dtype=np.float64))  # (S, 2, 2)
        for a, b in px:
            _line(img, a, b, grid, 1)
        # The front edge (nearest the viewer) a little stronger, so a flat view still shows a floor line.
        corners = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])
        d = self.depth(corners)
        order = np.argsort(d)
        c = self.project(corners)
        near = sorted(order[:2])
        _line(img, c[near[0]], c[near[1]], edge, max(1, options.line_width // 2))


# --------------------------------------------------------------------------- drawing helpers


def _fix(p: npt.ArrayLike) -> tuple[int, int]:
    q = np.clip(np.asarray(p, dtype=np.float64), -_MAX_PX, _MAX_PX)
    return int(round(q[0] * _ONE)), int(round(q[1] * _ONE))


def _line(img: ImageArray, a: npt.ArrayLike, b: npt.ArrayLike, color: Color, thickness: int) -> None:
    cv2.line(img, _fix(a), _fix(b), color, thickness, cv2.LINE_AA, _SHIFT)


def _dashed_line(
    img: ImageArray,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    color: Color,
    thickness: int,
    dash: float = 7.0,
    gap: float = 5.0,
) -> None:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    length = float(np.hypot(*(b - a)))
    if length < 1e-6 or length > 4 * _MAX_PX:
        return
    d = (b - a) / length
    s = 0.0
    while s < length:
        e = min(s + dash, length)
        _line(img, a + d * s, a + d * e, color, thickness)
        s = e + gap


def _circle(img: ImageArray, c: npt.ArrayLike, radius: float, color: Color, thickness: int) -> None:
    center = _fix(c)
    cv2.circle(img, center, max(1, int(round(radius * _ONE))), color, thickness, cv2.LINE_AA, _SHIFT)


def _put_text(img: ImageArray, text: str, org: tuple[int, int], color: Color, anchor: str = "left") -> None:
    """Write ``text`` with its baseline at ``org`` (``anchor`` "left" or "center" horizontally)."""
    h, w = img.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    fs = max(0.35, min(w, h) / 480.0 * 0.6)
    th = 1 if fs < 0.9 else 2
    text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts are ASCII only
    (tw, _), _ = cv2.getTextSize(text, font, fs, th)
    x = org[0] - tw // 2 if anchor == "center" else org[0]
    cv2.putText(img, text, (max(0, x), org[1]), font, fs, color, th, cv2.LINE_AA)


def _text_height(img_h: int, img_w: int) -> int:
    fs = max(0.35, min(img_w, img_h) / 480.0 * 0.6)
    return int(round(22 * fs)) + 4


# --------------------------------------------------------------------------- frames


def _head_radius_px(scale: float, options: RenderOptions) -> float:
    """Radius (pixels) of the head ring at ``scale`` pixels per metre."""
    return max(HEAD_RADIUS_M * scale, 1.5 * options.joint_radius, 3.0)


def _draw_person(
    img: ImageArray,
    px: npt.NDArray[np.float64],
    depth: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    conf: npt.NDArray[np.float64] | None,
    person: int,
    camera: Camera,
    options: RenderOptions,
) -> None:
    """Draw one person: ``px`` ``(J, 2)`` pixels, ``depth`` ``(J,)``, ``valid`` ``(J,)``, ``conf`` ``(J,)``."""
    layout = options.layout
    bg = options.background
    palette = person_colors(person)
    sides = joint_sides(layout)
    head = _head_index(layout)
    use_conf = options.show_confidence and conf is not None
    if use_conf and conf is not None:
        c = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)
    else:
        c = np.ones(len(px))
    missing = c <= 0.0

    def fade(color: Color, conf_value: float) -> Color:
        return color if conf_value >= 1.0 else _mix(color, bg, 0.3 + 0.7 * conf_value)

    # Bones, far to near.
    bones = [(ch, pa) for ch, pa in layout.bones if valid[ch] and valid[pa]]
    bones.sort(key=lambda b: -(depth[b[0]] + depth[b[1]]))
    lw = options.line_width
    for ch, pa in bones:
        side = sides[ch]
        if missing[ch] or missing[pa]:
            _dashed_line(img, px[pa], px[ch], MISSING_COLOR, max(1, lw - 1))
        else:
            _line(img, px[pa], px[ch], fade(palette[side], min(c[ch], c[pa])), lw)

    # Head: a ring around the head joint so the figure reads as a person.
    if head is not None and valid[head]:
        r = _head_radius_px(camera.scale, options)
        if missing[head]:
            _circle(img, px[head], r, MISSING_COLOR, max(1, lw - 1))
        else:
            col = fade(palette[2], c[head])
            _circle(img, px[head], r, _mix(col, bg, 0.18), -1)
            _circle(img, px[head], r, col, max(1, lw - 1))

    # Joint dots.
    if options.joint_radius > 0:
        for j in np.flatnonzero(valid):
            if j == head:
                continue
            if missing[j]:
                _circle(img, px[j], options.joint_radius + 1, MISSING_COLOR, 1)
                continue
            radius = options.joint_radius * (0.5 + 0.5 * c[j]) if use_conf else options.joint_radius
            _circle(img, px[j], max(1.0, radius), fade(palette[sides[j]], c[j]), -1)


def render_frame(
    joints: npt.ArrayLike,
    camera: Camera,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    frame_index: int | None = None,
) -> ImageArray:
    """Draw one frame.

    Args:
        joints: ``(P, J, 3)`` or ``(J, 3)`` metres; non-finite joints are not drawn
            (nor their bones).
        camera: the clip's camera (:meth:`Camera.fit`); its size must match ``options``.
        options: drawing options (default: ``RenderOptions`` of the camera's size).
        confidence: ``(P, J)`` or ``(J,)`` in [0, 1]; used with ``options.show_confidence``.
        present: ``(P,)`` booleans (or one boolean for ``(J, 3)``); absent persons
            are not drawn. All-zero or all-non-finite persons are never drawn.
        frame_index: written in the corner when ``options.show_frame_index``.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.
    """
    opts = options if options is not None else RenderOptions(width=camera.width, height=camera.height)
    if (opts.width, opts.height) != (camera.width, camera.height):
        raise ValueError(
            f"camera is {camera.width}x{camera.height} but options ask for {opts.width}x{opts.height}; fit the camera with the same options"
        )
    x = np.asarray(joints, dtype=np.float64)
    nj = opts.layout.num_joints
    if x.ndim not in (2, 3) or x.shape[-2:] != (nj, 3):
        raise ValueError(f"joints: expected shape ({nj}, 3) or (P, {nj}, 3), got {x.shape}")
    if present is not None:
        present = np.asarray(present)
        if x.ndim == 2 and present.ndim == 0:
            present = present[None]
    clip, conf, pres = _as_clip(
        x[None],
        opts.layout,
        None if confidence is None else np.asarray(confidence)[None],
        None if present is None else present[None],
        "render_frame",
    )
    return _render(clip[0], conf[0] if conf is not None else None, pres[0], camera, opts, frame_index)


def _render(
    x: npt.NDArray[np.float64],
    conf: npt.NDArray[np.float64] | None,
    pres: npt.NDArray[np.bool_],
    camera: Camera,
    opts: RenderOptions,
    frame_index: int | None,
) -> ImageArray:
    """Draw validated ``x`` ``(P, J, 3)``, ``conf`` ``(P, J)`` or None, ``pres`` ``(P,)``."""
    img = camera.background(opts)
    finite = np.asarray(np.isfinite(x).all(axis=-1), dtype=bool)
    xs = np.where(finite[..., None], x, 0.0)
    px = camera.project(xs)
    depth = camera.depth(xs)
    persons = [p for p in range(x.shape[0]) if pres[p]]
    # Farther persons first, so the nearer one is drawn on top.
    persons.sort(key=lambda p: -float(depth[p][finite[p]].mean()))
    for p in persons:
        _draw_person(img, px[p], depth[p], finite[p], None if conf is None else conf[p], p, camera, opts)
    tc = _text_color(opts.background)
    th = _text_height(opts.height, opts.width)
    if opts.title:
        _put_text(img, opts.title, (opts.width // 2, th), tc, anchor="center")
    if opts.show_frame_index and frame_index is not None:
        _put_text(img, f"frame {frame_index}", (6, opts.height - 8), tc)
    return img


# --------------------------------------------------------------------------- clips


def iter_frames(
    joints: npt.ArrayLike,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    camera: Camera | None = None,
) -> Iterator[ImageArray]:
    """Render a clip frame by frame (for long clips).

    Args:
        joints: ``(T, J, 3)`` or ``(T, P, J, 3)`` metres.
        options: drawing options (default :class:`RenderOptions`).
        confidence: ``(T, J)`` or ``(T, P, J)``.
        present: ``(T,)`` or ``(T, P)`` booleans.
        camera: a camera to use instead of fitting one to this clip.

    Returns:
        An iterator of ``(H, W, 3)`` uint8 RGB frames. Shapes are checked when
        this function is called, not when iteration starts.
    """
    opts = options if options is not None else RenderOptions()
    x, conf, pres = _as_clip(joints, opts.layout, confidence, present)
    cam = camera if camera is not None else Camera.fit(x, pres, opts)
    if (cam.width, cam.height) != (opts.width, opts.height):
        raise ValueError(f"camera is {cam.width}x{cam.height} but options ask for {opts.width}x{opts.height}")
    return _iter(x, conf, pres, cam, opts)


def _iter(
    x: npt.NDArray[np.float64],
    conf: npt.NDArray[np.float64] | None,
    pres: npt.NDArray[np.bool_],
    cam: Camera,
    opts: RenderOptions,
) -> Iterator[ImageArray]:
    for t in range(x.shape[0]):
        yield _render(x[t], None if conf is None else conf[t], pres[t], cam, opts, t)


def render_clip(
    joints: npt.ArrayLike,
    options: RenderOptions | None = None,
    confidence: npt.ArrayLike | None = None,
    present: npt.ArrayLike | None = None,
    camera: Camera | None = None,
) -> ImageArray:
    """Render a whole clip ``(T, J, 3)`` or ``(T, P, J, 3)`` into ``(T, H, W, 3)`` uint8 RGB.

    See :func:`iter_frames` for the arguments; the camera is fixed for the clip.
    """
    opts = options if options is not None else RenderOptions()
    frames = list(iter_frames(joints, opts, confidence, present, camera))
    if not frames:
        return np.zeros((0, opts.height, opts.width, 3), dtype=np.uint8)
    return np.stack(frames)


def iter_compare_frames(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    labels: tuple[str, str] = ("original", "anonymized"),
    options: RenderOptions | None = None,
    shared_camera: bool = True,
    confidence_a: npt.ArrayLike | None = None,
    confidence_b: npt.ArrayLike | None = None,
    present_a: npt.ArrayLike | None = None,
    present_b: npt.ArrayLike | None = None,
) -> Iterator[ImageArray]:
    """Side-by-side frames ``(H, 2W, 3)`` of two clips; see :func:`compare_clips`."""
    opts = options if options is not None else RenderOptions()
    if len(labels) != 2:
        raise ValueError(f"labels must be two strings, got {labels!r}")
    xa, ca, pa = _as_clip(a, opts.layout, confidence_a, present_a, "clip a")
    xb, cb, pb = _as_clip(b, opts.layout, confidence_b, present_b, "clip b")
    n = min(xa.shape[0], xb.shape[0])
    if xa.shape[0] != xb.shape[0]:
        log.warning(
            "compare_clips: clips differ in length (%d vs %d frames); using the first %d",
            xa.shape[0],
            xb.shape[0],
            n,
        )
    xa, pa, xb, pb = xa[:n], pa[:n], xb[:n], pb[:n]
    ca = None if ca is None else ca[:n]
    cb = None if cb is None else cb[:n]
    if shared_camera:
        pts_a, heads_a = _valid_points(xa, pa, opts.layout)
        pts_b, heads_b = _valid_points(xb, pb, opts.layout)
        # Fit with the panels' titles so the labels get their room.
        fit_opts = replace(opts, title=opts.title or labels[0] or labels[1] or None)
        cam_a = cam_b = Camera.fit_points(
            np.concatenate([pts_a, pts_b]), np.concatenate([heads_a, heads_b]), options=fit_opts
        )
    else:
        cam_a = Camera.fit(xa, pa, replace(opts, title=opts.title or labels[0] or None))
        cam_b = Camera.fit(xb, pb, replace(opts, title=opts.title or labels[1] or None))

    def titled(label: str) -> RenderOptions:
        return replace(opts, title=f"{opts.title} | {label}" if opts.title else label)

    oa, ob = titled(labels[0]), titled(labels[1])
    sep = _mix((150, 150, 150), opts.background, 1.0)

    def gen() -> Iterator[ImageArray]:
        for t in range(n):
            left = _render(xa[t], None if ca is None else ca[t], pa[t], cam_a, oa, t)
            right = _render(xb[t], None if cb is None else cb[t], pb[t], cam_b, ob, t)
            right[:, 0] = sep
            yield np.concatenate([left, right], axis=1)

    return gen()


def compare_clips(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    labels: tuple[str, str] = ("original", "anonymized"),
    options: RenderOptions | None = None,
    shared_camera: bool = True,
    confidence_a: npt.ArrayLike | None = None,
    confidence_b: npt.ArrayLike | None = None,
    present_a: npt.ArrayLike | None = None,
    present_b: npt.ArrayLike | None = None,
) -> ImageArray:
    """Render two clips side by side, each panel titled with its label.

    Args:
        a, b: ``(T, J, 3)`` or ``(T, P, J, 3)`` metres (e.g. original and anonymized).
            If their lengths differ the shorter length is used and a warning logged.
        labels: panel titles (left, right).
        options: per-panel options; each panel is ``options.width`` wide.
        shared_camera: fit one camera on both clips so sizes are comparable;
            otherwise each panel fits its own.
        confidence_a, confidence_b, present_a, present_b: as in :func:`iter_frames`.

    Returns:
        ``(T, H, 2W, 3)`` uint8 RGB.
    """
    opts = options if options is not None else RenderOptions()
    frames = list(
        iter_compare_frames(
            a, b, labels, opts, shared_camera, confidence_a, confidence_b, present_a, present_b
        )
    )
    if not frames:
        return np.zeros((0, opts.height, 2 * opts.width, 3), dtype=np.uint8)
    return np.stack(frames)


# --------------------------------------------------------------------------- output


def _check_frame(f: npt.ArrayLike, i: int, shape: tuple[int, ...] | None) -> ImageArray:
    a = np.asarray(f)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(
            f"frame {i}: expected a (H, W, 3) uint8 RGB image, got shape {a.shape} dtype {a.dtype}"
        )
    if shape is not None and a.shape != shape:
        raise ValueError(f"frame {i}: size {a.shape} differs from the first frame's {shape}")
    return a


def _frame_list(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike]) -> list[ImageArray]:
    out: list[ImageArray] = []
    shape = None
    for i, f in enumerate(_frame_source(frames)):
        a = _check_frame(f, i, shape)
        shape = a.shape
        out.append(a)
    if not out:
        raise ValueError("no frames given")
    return out


def _frame_source(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike]) -> Iterable[npt.ArrayLike]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames: expected (T, H, W, 3) uint8, got shape {frames.shape}")
        return frames
    return frames


def contact_sheet(
    frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike],
    columns: int = 4,
    max_frames: int = 12,
    gap: int = 4,
) -> ImageArray:
    """Tile up to ``max_frames`` evenly spaced frames into one picture.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB or an iterable of ``(H, W, 3)`` frames.
        columns: tiles per row (fewer if there are fewer frames).
        max_frames: most frames shown; first and last are always included.
        gap: pixels of light grey between tiles.

    Returns:
        ``(rows * H + (rows - 1) * gap, cols * W + (cols - 1) * gap, 3)`` uint8 RGB.
    """
    if columns < 1 or max_frames < 1 or gap < 0:
        raise ValueError(
            f"columns and max_frames must be >= 1 and gap >= 0, got {columns}, {max_frames}, {gap}"
        )
    fl = _frame_list(frames)
    n = min(len(fl), max_frames)
    idx = np.unique(np.round(np.linspace(0, len(fl) - 1, n)).astype(int))
    n = len(idx)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    h, w = fl[0].shape[:2]
    sheet = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 215, dtype=np.uint8)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = fl[i]
    return sheet


def write_video(
    frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike], path: str | Path, fps: float = 30.0
) -> Path:
    """Write RGB frames to ``path``; the format follows the extension.

    * ``.mp4`` / ``.avi``: OpenCV ``VideoWriter`` with fourcc ``mp4v``; frames
      are streamed, so an iterator of frames keeps memory flat.
    * ``.gif``: Pillow, looping forever, ``1000 / fps`` ms per frame. Pillow merges
      consecutive identical frames (adding up their durations).
    * ``.png``: a :func:`contact_sheet` of up to 12 evenly spaced frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB or an iterable of ``(H, W, 3)`` frames.
        path: output file; parent directories are created.
        fps: frames per second (> 0).

    Returns:
        The path written.

    Raises:
        ValueError: unknown extension, bad frames, no frames or bad fps.
        OSError: the writer could not open the file or wrote nothing.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise ValueError(
            f"unsupported output extension {path.suffix!r} for {path}; supported: {', '.join(VIDEO_EXTENSIONS)}"
        )
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in (".mp4", ".avi"):
        _write_cv2(frames, path, fps)
    elif ext == ".gif":
        _write_gif(_frame_list(frames), path, fps)
    else:
        _write_png(contact_sheet(frames), path)
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"writing {path} produced no data")
    log.info("wrote %s", path)
    return path


def _write_cv2(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike], path: Path, fps: float) -> None:
    writer = None
    shape = None
    count = 0
    try:
        for i, f in enumerate(_frame_source(frames)):
            a = _check_frame(f, i, shape)
            if writer is None:
                shape = a.shape
                writer = cv2.VideoWriter(
                    str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (a.shape[1], a.shape[0])
                )
                if not writer.isOpened():
                    raise OSError(
                        f"cv2.VideoWriter could not open {path} (fourcc mp4v, {a.shape[1]}x{a.shape[0]})"
                    )
            writer.write(cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise ValueError("no frames given")


def _write_gif(frames: list[ImageArray], path: Path, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], loop=0, duration=max(1, int(round(1000.0 / fps)))
    )


def _write_png(image: ImageArray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image)).save(path)


__all__ = [
    "RenderOptions", "Camera", "render_frame", "render_clip", "iter_frames", "compare_clips",
    "iter_compare_frames", "write_video", "contact_sheet", "person_colors", "joint_sides",
    "LEFT_COLOR", "RIGHT_COLOR", "CENTER_COLOR", "MISSING_COLOR", "PERSON_PALETTES", "VIDEO_EXTENSIONS",
]  # fmt: skip
