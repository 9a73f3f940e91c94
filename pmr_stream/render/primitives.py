"""Anti-aliased cv2 drawing primitives with sub-pixel coordinates, on RGB ``(H, W, 3)`` uint8 images.

Points are ``(column, row)`` pixels as floats; they are clipped to ``+-1e5`` before
drawing (cv2 takes integers).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from pmr_stream.render.options import Color, ImageArray

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_MAX_PX = 1e5  # coordinates are clipped to +-this before drawing (int overflow guard)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fix(p: npt.ArrayLike) -> tuple[int, int]:
    q = np.clip(np.asarray(p, dtype=np.float64), -_MAX_PX, _MAX_PX)
    return int(round(q[0] * _ONE)), int(round(q[1] * _ONE))


def line(img: ImageArray, a: npt.ArrayLike, b: npt.ArrayLike, color: Color, thickness: int) -> None:
    """Draw a line from ``a`` to ``b`` (pixels ``(2,)``), ``thickness`` pixels."""
    cv2.line(img, _fix(a), _fix(b), color, thickness, cv2.LINE_AA, _SHIFT)


def dashed_line(
    img: ImageArray,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    color: Color,
    thickness: int,
    dash: float = 7.0,
    gap: float = 5.0,
) -> None:
    """Draw a line from ``a`` to ``b`` as ``dash``-pixel dashes ``gap`` pixels apart."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    length = float(np.hypot(*(b - a)))
    if length < 1e-6 or length > 4 * _MAX_PX:
        return
    d = (b - a) / length
    s = 0.0
    while s < length:
        e = min(s + dash, length)
        line(img, a + d * s, a + d * e, color, thickness)
        s = e + gap


def circle(img: ImageArray, c: npt.ArrayLike, radius: float, color: Color, thickness: int) -> None:
    """Draw a circle around ``c`` (pixels), ``radius`` pixels; ``thickness`` -1 fills it."""
    center = _fix(c)
    cv2.circle(img, center, max(1, int(round(radius * _ONE))), color, thickness, cv2.LINE_AA, _SHIFT)


def put_text(img: ImageArray, text: str, org: tuple[int, int], color: Color, anchor: str = "left") -> None:
    """Write ``text`` with its baseline at ``org`` (``anchor`` "left" or "center" horizontally)."""
    h, w = img.shape[:2]
    fs = _font_scale(h, w)
    th = 1 if fs < 0.9 else 2
    text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts are ASCII only
    (tw, _), _ = cv2.getTextSize(text, _FONT, fs, th)
    x = org[0] - tw // 2 if anchor == "center" else org[0]
    cv2.putText(img, text, (max(0, x), org[1]), _FONT, fs, color, th, cv2.LINE_AA)


def text_height(img_h: int, img_w: int) -> int:
    """Pixels a line of :func:`put_text` text takes on an ``img_h`` x ``img_w`` image."""
    return int(round(22 * _font_scale(img_h, img_w))) + 4


def _font_scale(img_h: int, img_w: int) -> float:
    """cv2 font scale of the text on an ``img_h`` x ``img_w`` image (0.6 at 480 pixels)."""
    return max(0.35, min(img_w, img_h) / 480.0 * 0.6)
