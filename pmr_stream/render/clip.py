"""Validation of clips to draw: shapes, confidence and which persons are present.

Joints are metres ``(T, J, 3)`` or ``(T, P, J, 3)``; non-finite coordinates mark missing
joints, and an all-zero person (how NTU files pad a missing second body) is absent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pmr_stream.render.options import head_index
from pmr_stream.skeleton import Layout


def as_clip(
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


def valid_points(
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
    head = head_index(layout)
    heads = persons[:, head] if head is not None else np.zeros((0, 3))
    return pts[np.isfinite(pts).all(axis=-1)], heads[np.isfinite(heads).all(axis=-1)]
