"""The ``.skeleton`` text of dense arrays, fast: the same characters as
``format_skeleton(NtuSkeleton.from_arrays(...))`` (:mod:`pmr_stream.formats.ntu`), without a
Python object per body and with one number-to-text conversion per value instead of three.

Why the text is the same: ``from_arrays`` turns a float32 coordinate into the float64 of its
shortest decimal text and the writer prints that float64 with ``repr``; a decimal of at most 9
significant digits reads back from float64 to the same digits (float64 keeps 15), so printing the
float32's shortest text (NumPy's ``str``, Python's ``repr`` style) in the writer's style gives the
same characters. The pixel columns are rounded to 7 significant digits through ``%.7g`` text, which
in positional form already is the writer's text; the rare values ``%.7g`` prints with an exponent
go the writer's own way. A test compares both paths on the real samples and on random arrays of
every magnitude; anything non-finite goes the reference way (and fails there with its message).
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.ntu_dataset import COLOR_CAMERA, DEPTH_CAMERA, confidence_to_tracking_state
from pmr_stream.skeleton import J

#: First body ID of generated files (as :data:`pmr_stream.formats.ntu.DEFAULT_BODY_ID`).
_DEFAULT_BODY_ID: Final[int] = 72057594037927936
_TRAILING_ZERO: Final = re.compile(r"\.0(?=e|$)", re.MULTILINE)


def _writer_style(text: npt.NDArray[np.str_]) -> list[str]:
    """NumPy/``repr`` number texts in the writer's style: no trailing ``.0``, ``E`` exponents."""
    joined = "\n".join(text.ravel().tolist())
    return _TRAILING_ZERO.sub("", joined).replace("e", "E").split("\n")


def _pixels(xyz: npt.NDArray[np.float64], camera: tuple[int, int, float, float, float]) -> list[str]:
    """``(..., 3)`` metres -> texts of ``(..., 2)`` pixels, as ``project`` rounds and the writer prints them."""
    _, _, f, cx, cy = camera
    z = xyz[..., 2]
    ok = z > 1e-6
    safe_z = np.where(ok, z, 1.0)
    u = np.where(ok, cx + f * xyz[..., 0] / safe_z, 0.0)
    v = np.where(ok, cy - f * xyz[..., 1] / safe_z, 0.0)
    values = np.stack([u, v], axis=-1).ravel().tolist()
    out = (("%.7g\x00" * len(values)) % tuple(values)).split("\x00")[:-1]
    for i, s in enumerate(out):
        if "e" in s or "n" in s:  # an exponent (or inf/nan): the writer's own way, value by value
            out[i] = _format_float(float(s))
    return out


def _format_float(v: float) -> str:
    s = repr(float(v))
    if "e" in s:
        mantissa, exponent = s.split("e")
        return f"{mantissa.removesuffix('.0')}E{exponent}"
    return s.removesuffix(".0")


def format_arrays(
    joints: npt.NDArray[np.float32],
    confidence: npt.NDArray[np.float32],
    present: npt.NDArray[np.bool_],
    body_ids: list[int] | None = None,
) -> str | None:
    """The ``.skeleton`` text of ``joints`` ``(T, P, 25, 3)`` float32 metres, ``confidence``
    ``(T, P, 25)`` and ``present`` ``(T, P)`` (one body per present person and frame, IDs
    ``body_ids`` or the default ones), or ``None`` when these arrays need the reference path
    (not float32, non-finite values, bad shapes): then call ``NtuSkeleton.from_arrays``."""
    x = np.asarray(joints)
    n_t, n_p = x.shape[:2] if x.ndim == 4 else (0, 0)
    if (x.dtype != np.float32 or x.ndim != 4 or x.shape[2:] != (J, 3) or np.shape(present) != (n_t, n_p)
            or np.shape(confidence) != (n_t, n_p, J) or not np.isfinite(x).all()):  # fmt: skip
        return None
    ids = [_DEFAULT_BODY_ID + p for p in range(n_p)] if body_ids is None else [int(b) for b in body_ids]
    if len(ids) != n_p or len(set(ids)) != n_p:
        return None
    pres = np.asarray(present, dtype=bool)
    t_idx, p_idx = np.nonzero(pres)  # the bodies, frame by frame, persons in order
    sel = x[t_idx, p_idx]  # (B, 25, 3)
    xyz_text = sel.astype(str)
    xyz = xyz_text.astype(np.float64)  # the float64 of the shortest text, as from_arrays makes it
    xyz_s = _writer_style(xyz_text)
    depth = _pixels(xyz, DEPTH_CAMERA)
    color = _pixels(xyz, COLOR_CAMERA)
    states = confidence_to_tracking_state(np.asarray(confidence)[t_idx, p_idx]).ravel().tolist()
    state_s = {0: "0", 1: "1", 2: "2"}
    counts = pres.sum(axis=1).tolist()
    lines: list[str] = [str(n_t)]
    b = 0
    for t in range(n_t):
        lines.append(str(counts[t]))
        for _ in range(counts[t]):
            lines.append(f"{ids[p_idx[b]]} 0 0 0 0 0 0 0 0 2")
            lines.append(str(J))
            for j in range(J):
                k = b * J + j
                lines.append(f"{xyz_s[3 * k]} {xyz_s[3 * k + 1]} {xyz_s[3 * k + 2]} {depth[2 * k]} "
                             f"{depth[2 * k + 1]} {color[2 * k]} {color[2 * k + 1]} 0 0 0 0 {state_s[states[k]]}")  # fmt: skip
            b += 1
    lines.append("")
    return "\n".join(lines)


__all__ = ["format_arrays"]
