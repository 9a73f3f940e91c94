"""Array forms used by other skeleton toolkits, to and from :class:`Recording`.

SGN (Zhang et al., CVPR 2020) style
    One clip is ``(T, 150)`` float32: person 1's 25 joints x (x, y, z), then person 2's
    (zeros when there is only one person). A file holds one clip ``(T, 150)`` or a batch
    ``(N, T, 150)``.

ST-GCN / pyskl style
    One clip is ``(C, T, V, M)`` = ``(3, T, 25, M)`` float32, usually ``M = 2`` persons;
    a batch is ``(N, 3, T, 25, M)``.

Both store metres in the Kinect convention and mark an absent person by all-zero joints;
neither holds confidence, timestamps or metadata. Files are ``.npy`` (one array) or ``.npz``
(the array under the key ``"x"``; an archive holding one array under another name is
accepted too). Pickled object arrays are refused, and so is a file whose header declares
more data than it holds (checked before anything is allocated).

:func:`save_array_file` never drops a person silently: an SGN file is refused for a
recording with more than two persons present, an ST-GCN file gets ``M`` = all of them
(at least 2). :func:`recording_to_sgn` and :func:`recording_to_stgcn` (in memory) keep
the persons present in the most frames, as training pipelines expect.
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.files import atomic_write, check_input_file, check_npy_file, check_npz_members
from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import FPS, J

logger = logging.getLogger(__name__)

ArrayKind = Literal["sgn", "stgcn"]
#: Array kinds :func:`load_array_file` and :func:`save_array_file` know.
ARRAY_KINDS: Final[tuple[str, ...]] = ("sgn", "stgcn")
#: Values per person in an SGN row (25 joints x 3 coordinates).
SGN_PERSON: Final[int] = J * 3
#: Persons in an SGN row.
SGN_PERSONS: Final[int] = 2
#: Key of the clip array in an ``.npz``.
NPZ_KEY: Final[str] = "x"


def _check_ntu(rec: Recording, what: str) -> None:
    if rec.layout != "ntu25":
        raise ValueError(f"{what} needs an ntu25 recording, got layout {rec.layout}")


def _select_persons(rec: Recording, count: int) -> list[int]:
    """Indices of at most ``count`` persons: those present in the most frames (ties: the
    earlier one), in their original order."""
    frames = rec.present.sum(axis=0)
    order = sorted(range(rec.num_persons), key=lambda p: (-int(frames[p]), p))[:count]
    return sorted(order)


def _masked_joints(rec: Recording, persons: list[int]) -> npt.NDArray[np.float32]:
    """``(T, len(persons), 25, 3)`` joints with absent frames set to zero."""
    x = rec.joints[:, persons].copy()
    x[~rec.present[:, persons]] = 0.0
    return x


def _from_dense(x: npt.NDArray[np.float32], fps: float) -> Recording:
    """Recording from ``(T, M, 25, 3)``; persons after the first that are zero throughout
    are dropped, and a person is present where any coordinate is non-zero."""
    present = np.any(x != 0.0, axis=(2, 3))
    keep = [0] + [m for m in range(1, x.shape[1]) if present[:, m].any()]
    return Recording.from_clip(x[:, keep], fps=fps)


# --------------------------------------------------------------------------- SGN


def recording_to_sgn(rec: Recording) -> npt.NDArray[np.float32]:
    """SGN row form ``(T, 150)`` float32 of the (at most) two main persons.

    With more than two persons the two present in the most frames are kept. Absent
    frames and a missing second person are zeros.
    """
    _check_ntu(rec, "SGN")
    persons = _select_persons(rec, SGN_PERSONS)
    out = np.zeros((rec.num_frames, SGN_PERSONS, J, 3), dtype=np.float32)
    out[:, : len(persons)] = _masked_joints(rec, persons)
    return out.reshape(rec.num_frames, SGN_PERSONS * SGN_PERSON)


def sgn_to_recording(arr: npt.ArrayLike, fps: float = FPS) -> Recording:
    """A recording from one SGN clip ``(T, 150)`` (metres).

    Person 2 is dropped when it is zero in every frame; otherwise a person is absent
    in the frames where all its values are zero. Confidence is 1 where present.
    """
    a = _numeric(np.asarray(arr), "SGN clip")
    if a.ndim != 2 or a.shape[1] != SGN_PERSONS * SGN_PERSON:
        raise ValueError(f"an SGN clip must have shape (T, {SGN_PERSONS * SGN_PERSON}), got {a.shape}")
    x = a.astype(np.float32).reshape(a.shape[0], SGN_PERSONS, J, 3)
    return _from_dense(x, fps)


# --------------------------------------------------------------------------- ST-GCN


def recording_to_stgcn(rec: Recording, max_persons: int = 2) -> npt.NDArray[np.float32]:
    """ST-GCN / pyskl form ``(3, T, 25, M)`` float32 with ``M = max_persons``.

    Keeps the ``max_persons`` persons present in the most frames, zeros elsewhere.
    """
    _check_ntu(rec, "ST-GCN")
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    persons = _select_persons(rec, max_persons)
    dense = np.zeros((rec.num_frames, max_persons, J, 3), dtype=np.float32)
    dense[:, : len(persons)] = _masked_joints(rec, persons)
    return np.ascontiguousarray(dense.transpose(3, 0, 2, 1))  # (T, M, V, C) -> (C, T, V, M)


def stgcn_to_recording(arr: npt.ArrayLike, fps: float = FPS) -> Recording:
    """A recording from one ST-GCN clip ``(3, T, 25, M)`` (metres).

    Persons after the first that are zero in every frame are dropped; a person is absent
    in the frames where all its values are zero. Confidence is 1 where present.
    """
    a = _numeric(np.asarray(arr), "ST-GCN clip")
    if a.ndim != 4 or a.shape[0] != 3 or a.shape[2] != J or a.shape[3] < 1:
        raise ValueError(f"an ST-GCN clip must have shape (3, T, {J}, M), got {a.shape}")
    x = a.astype(np.float32).transpose(1, 3, 2, 0)  # (C, T, V, M) -> (T, M, V, C)
    return _from_dense(np.ascontiguousarray(x), fps)


# --------------------------------------------------------------------------- files


def _numeric(a: npt.NDArray, what: str) -> npt.NDArray:
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a


def _check_kind(kind: str) -> None:
    if kind not in ARRAY_KINDS:
        raise ValueError(f"unknown array kind {kind!r}; use one of {ARRAY_KINDS}")


def read_array(path: str | os.PathLike[str]) -> npt.NDArray:
    """The clip array in a ``.npy`` or ``.npz`` file (without pickle).

    Before numpy allocates anything the sizes the file declares are checked against what
    it holds (see :func:`pmr_stream.formats.files.check_npy_file` and
    :func:`~pmr_stream.formats.files.check_npz_members`).

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: naming the file: unknown extension, a directory, unreadable file, an
            object (pickled) array, an ``.npz`` without key ``"x"`` that holds several
            arrays, a header declaring more data than the file holds or more than the
            memory limit.
    """
    name = check_input_file(path)
    suffix = Path(name).suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"{name}: array files must end in .npy or .npz")
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such file")
    try:
        if suffix == ".npy":
            check_npy_file(name)
        else:
            with zipfile.ZipFile(name) as zf:
                keys = list(dict.fromkeys(n[:-4] if n.endswith(".npy") else n for n in zf.namelist()))
            if NPZ_KEY in keys:
                key = NPZ_KEY
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise ValueError(f"{name}: expected the clip array under key {NPZ_KEY!r}, found keys {keys}")
            check_npz_members(name, [key])
        loaded = np.load(name, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return loaded[key]
        return loaded
    except FileNotFoundError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{name}: cannot read array file ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        raise ValueError(f"{name}: cannot read array file without pickle ({exc})") from None


def load_array_file(
    path: str | os.PathLike[str], kind: ArrayKind, index: int = 0, fps: float = FPS
) -> Recording:
    """Load one clip from an SGN or ST-GCN array file.

    Args:
        path: ``.npy`` or ``.npz`` (key ``"x"``).
        kind: ``"sgn"`` (``(T, 150)`` or ``(N, T, 150)``) or ``"stgcn"``
            (``(3, T, 25, M)`` or ``(N, 3, T, 25, M)``).
        index: which clip of a batch.
        fps: frame rate for the timestamps (the arrays carry none).

    Raises:
        ValueError: naming the file: wrong ndim or shape, index out of range, pickled
            object arrays, non-numeric data, NaN values.
    """
    _check_kind(kind)
    name = os.fspath(path)
    a = read_array(name)
    clip_ndim = 2 if kind == "sgn" else 4
    expected = "(T, 150) or (N, T, 150)" if kind == "sgn" else f"(3, T, {J}, M) or (N, 3, T, {J}, M)"
    if a.ndim == clip_ndim + 1:
        if not -a.shape[0] <= index < a.shape[0]:
            raise ValueError(f"{name}: clip index {index} out of range for a batch of {a.shape[0]}")
        a = a[index]
    elif a.ndim == clip_ndim:
        if index not in (0, -1):
            raise ValueError(f"{name}: clip index {index} out of range for a single clip")
    else:
        raise ValueError(f"{name}: a {kind} array must have shape {expected}, got {a.shape}")
    try:
        rec = sgn_to_recording(a, fps=fps) if kind == "sgn" else stgcn_to_recording(a, fps=fps)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    rec.metadata["source"] = name
    return rec


def persons_with_frames(rec: Recording) -> list[int]:
    """Indices of the persons present in at least one frame, in order (the others hold nothing)."""
    return [int(p) for p in np.flatnonzero(rec.present.any(axis=0))]


def save_array_file(
    rec: Recording, path: str | os.PathLike[str], kind: ArrayKind, *, overwrite: bool = True
) -> tuple[int, ...]:
    """Write ``rec`` as one SGN ``(T, 150)`` or ST-GCN ``(3, T, 25, M)`` clip, float32, atomically.

    Nothing is dropped silently: SGN holds two persons, so a recording with more persons
    present is refused; ST-GCN gets ``M = max(2, persons present)`` so every person is
    written. Persons never present (which hold nothing) are left out. Confidence,
    timestamps and metadata are not part of these formats.
    ``.npy`` holds the bare array, ``.npz`` the array under key ``"x"`` (compressed).

    Returns:
        the shape written.

    Raises:
        ValueError: naming the file: wrong extension, a layout other than ntu25, more
            persons than SGN holds, an existing file without ``overwrite``, a failed write.
    """
    _check_kind(kind)
    name = os.fspath(path)
    arr = array_for_file(rec, name, kind)
    suffix = Path(name).suffix.lower()
    with atomic_write(name, overwrite=overwrite) as fh:
        if suffix == ".npy":
            np.save(fh, arr, allow_pickle=False)
        else:
            np.savez_compressed(fh, **{NPZ_KEY: arr})
    logger.debug("wrote %s array %s %s", kind, name, arr.shape)
    return tuple(arr.shape)


def check_array_capacity(rec: Recording, path: str | os.PathLike[str], kind: ArrayKind) -> int:
    """The number of persons an SGN or ST-GCN file at ``path`` would hold for ``rec``; refuses
    (``ValueError`` naming the file and the reason) what the format cannot hold."""
    _check_kind(kind)
    name = os.fspath(path)
    if Path(name).suffix.lower() not in (".npy", ".npz"):
        raise ValueError(f"{name}: array files must end in .npy or .npz")
    if rec.layout != "ntu25":
        raise ValueError(
            f"{name}: the {kind} format holds ntu25 skeletons ({J} joints), this recording is {rec.layout}"
        )
    persons = persons_with_frames(rec)
    if kind == "sgn" and len(persons) > SGN_PERSONS:
        raise ValueError(
            f"{name}: the SGN format holds {SGN_PERSONS} persons, the recording has {len(persons)} present; "
            "write .npz or .skeleton (any number of persons) or stgcn (M persons) instead"
        )
    return len(persons)


def array_for_file(rec: Recording, path: str | os.PathLike[str], kind: ArrayKind) -> npt.NDArray[np.float32]:
    """The array :func:`save_array_file` writes for ``rec`` (every person present, in order)."""
    check_array_capacity(rec, path, kind)
    persons = persons_with_frames(rec)
    sub = Recording(
        joints=rec.joints[:, persons], confidence=rec.confidence[:, persons], timestamps=rec.timestamps,
        present=rec.present[:, persons], layout=rec.layout,
    )  # fmt: skip
    if kind == "sgn":
        return recording_to_sgn(sub)
    return recording_to_stgcn(sub, max_persons=max(SGN_PERSONS, len(persons)))


__all__ = [
    "recording_to_sgn", "sgn_to_recording", "recording_to_stgcn", "stgcn_to_recording",
    "load_array_file", "save_array_file", "read_array", "ARRAY_KINDS", "NPZ_KEY",
    "check_array_capacity", "array_for_file", "persons_with_frames",
]  # fmt: skip
