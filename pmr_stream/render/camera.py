"""The orthographic :class:`Camera` fitted to a whole clip: projection, depth and the floor.

At ``azimuth_deg = 0`` the view is the one the Kinect had: ``+x`` is screen-right (as in
Kinect's mirrored colour image) and ``+y`` is screen-up. One camera is fitted to a whole
clip, so a person walking across the room moves across the picture.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pmr_stream.render.clip import valid_points
from pmr_stream.render.options import (
    FLOOR_CELL_M,
    FLOOR_PAD_M,
    HEAD_RADIUS_M,
    MIN_EXTENT_M,
    ImageArray,
    RenderOptions,
    head_radius_px,
    mix,
)
from pmr_stream.render.primitives import line, text_height

log = logging.getLogger(__name__)


def _rotation(azimuth_deg: float, elevation_deg: float) -> npt.NDArray[np.float64]:
    """View rotation ``(3, 3)``: turn about y by the azimuth, then tilt about x by the elevation."""
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    ca, sa, ce, se = math.cos(a), math.sin(a), math.cos(e), math.sin(e)
    ry = np.array([[ca, 0.0, -sa], [0.0, 1.0, 0.0], [sa, 0.0, ca]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, ce, se], [0.0, -se, ce]])
    return rx @ ry


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
        return cls.fit_points(*valid_points(joints, present, opts.layout), options=opts)

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
        top = max(bottom, float(text_height(opts.height, opts.width) + 4)) if opts.title else bottom
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
        # The head ring's radius is partly in pixels (head_radius_px), so iterate a little.
        for _ in range(3 if len(vh) else 1):
            if len(vh):
                r = HEAD_RADIUS_M if not math.isfinite(scale) else head_radius_px(scale, opts) / scale
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
        grid = mix((120, 120, 120), options.background, 0.45)
        edge = mix((90, 90, 90), options.background, 0.7)
        segs = []
        for x in np.arange(x0, x1 + 1e-9, FLOOR_CELL_M):
            segs.append(((x, y, z0), (x, y, z1)))
        for z in np.arange(z0, z1 + 1e-9, FLOOR_CELL_M):
            segs.append(((x0, y, z), (x1, y, z)))
        px = self.project(np.array(segs, dtype=np.float64))  # (S, 2, 2)
        for a, b in px:
            line(img, a, b, grid, 1)
        # The front edge (nearest the viewer) a little stronger, so a flat view still shows a floor line.
        corners = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])
        d = self.depth(corners)
        order = np.argsort(d)
        c = self.project(corners)
        near = sorted(order[:2])
        line(img, c[near[0]], c[near[1]], edge, max(1, options.line_width // 2))


__all__ = ["Camera"]
