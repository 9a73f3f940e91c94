"""One entry point for every skeleton file format pmr-stream reads and writes.

========== ============================================ =========================
format     files                                        module
========== ============================================ =========================
skeleton   NTU RGB+D ``.skeleton`` text                 :mod:`.ntu`
npz        pmr-stream recording ``.npz``                :mod:`.recording`
sgn        SGN ``(T, 150)`` / ``(N, T, 150)`` .npy/.npz  :mod:`.arrays`
stgcn      ST-GCN ``(3, T, 25, M)`` (+ batch) .npy/.npz  :mod:`.arrays`
bvh        Biovision Hierarchy ``.bvh`` (written only)   :mod:`.bvh`
========== ============================================ =========================
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from pmr_stream.formats.arrays import NPZ_KEY, check_array_capacity, load_array_file, save_array_file
from pmr_stream.formats.bvh import check_bvh, write_bvh_files
from pmr_stream.formats.files import atomic_write, check_input_file
from pmr_stream.formats.ntu import read_skeleton, write_skeleton
from pmr_stream.formats.ntu_text import format_arrays
from pmr_stream.formats.recording import RECORDING_KEYS, Recording
from pmr_stream.skeleton import J

logger = logging.getLogger(__name__)

#: Format names accepted by :func:`load_recording`, :func:`save_recording` and :func:`convert`.
FORMATS: Final[tuple[str, ...]] = ("skeleton", "npz", "sgn", "stgcn")
#: Format names :func:`save_recording` writes: :data:`FORMATS` and BVH (one person a file).
OUTPUT_FORMATS: Final[tuple[str, ...]] = FORMATS + ("bvh",)


def _unknown(path: str, why: str) -> ValueError:
    return ValueError(f"{path}: {why}; known formats: {', '.join(FORMATS)} (pass the format explicitly)")


def _kind_of_shape(shape: tuple[int, ...]) -> str | None:
    """``"sgn"`` for ``(T, 150)``/``(N, T, 150)``, ``"stgcn"`` for ``(3, T, 25, M)``/``(N, 3, T, 25, M)``."""
    if len(shape) in (2, 3) and shape[-1] == 2 * J * 3:
        return "sgn"
    if len(shape) in (4, 5) and shape[-4] == 3 and shape[-2] == J:
        return "stgcn"
    return None


def _npy_shape(path: str) -> tuple[int, ...]:
    """Shape from an ``.npy`` header, without reading the data."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, _ = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    return tuple(shape)


def _npz_shape_or_recording(path: str) -> str | tuple[int, ...]:
    """``"npz"`` for a recording archive, else the shape of its clip array."""
    with zipfile.ZipFile(path) as zf:
        keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
        if set(RECORDING_KEYS) <= keys:
            return "npz"
        if NPZ_KEY in keys:
            key = NPZ_KEY
        elif len(keys) == 1:
            key = next(iter(keys))
        else:
            raise ValueError(f"no recording keys and no clip array {NPZ_KEY!r} (keys {sorted(keys)})")
        with zf.open(key + ".npy") as fh:
            version = np.lib.format.read_magic(fh)
            header = (
                np.lib.format.read_array_header_1_0(fh)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(fh)
            )
    return tuple(header[0])


def guess_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` (one of :data:`FORMATS`).

    ``.skeleton`` -> ``skeleton``. ``.npz`` -> ``npz`` when it holds the recording keys,
    else ``sgn`` or ``stgcn`` by the shape of its clip array. ``.npy`` -> ``sgn`` when the
    last dimension is 150, ``stgcn`` for ``(..., 3, T, 25, M)``. A ``.npz`` that does not
    exist yet (a file about to be written) is a recording; a new ``.npy`` is ambiguous.

    Raises:
        ValueError: unknown extension or array shape, naming the path and the formats.
    """
    name = check_input_file(path)
    suffix = Path(name).suffix.lower()
    if suffix == ".skeleton":
        return "skeleton"
    if suffix == ".bvh":
        raise ValueError(f"{name}: BVH files are written, not read (pmr convert --to bvh)")
    if suffix not in (".npz", ".npy"):
        raise _unknown(name, f"cannot tell the format from the extension {suffix or '(none)'!r}")
    if not os.path.exists(name):
        if suffix == ".npz":
            return "npz"
        raise _unknown(name, "a new .npy file can be sgn or stgcn")
    try:
        found = _npy_shape(name) if suffix == ".npy" else _npz_shape_or_recording(name)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise _unknown(name, f"cannot read the array header ({exc})") from None
    if isinstance(found, str):
        return found
    kind = _kind_of_shape(found)
    if kind is None:
        raise _unknown(
            name,
            f"array shape {found} is neither SGN (T, 150) nor ST-GCN (3, T, {J}, M), with optional batch axis",
        )
    return kind


def _resolve(path: str, fmt: str | None, writing: bool = False) -> str:
    if fmt is None:
        if writing and Path(path).suffix.lower() in (".npz", ".bvh"):
            return Path(path).suffix.lower()[1:]  # a .npz written is a recording, whatever was there
        return guess_format(path)
    known = OUTPUT_FORMATS if writing else FORMATS
    if fmt not in known:
        raise ValueError(f"{path}: unknown format {fmt!r}; known formats: {', '.join(known)}")
    return fmt


def load_recording(path: str | os.PathLike[str], fmt: str | None = None) -> Recording:
    """Load any supported file as a :class:`Recording` (``fmt`` guessed when ``None``).

    Array files give their first clip at 30 fps.
    """
    name = check_input_file(path)
    kind = _resolve(name, fmt)
    if kind == "skeleton":
        return Recording.from_ntu(read_skeleton(name))
    if kind == "npz":
        return Recording.load(name)
    return load_array_file(name, kind)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Written:
    """What :func:`save_recording` wrote: the file, its format, and the frames and persons it
    holds (for array and ``.skeleton`` files the persons present in at least one frame)."""

    path: str
    format: str
    frames: int
    persons: int


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format :func:`save_recording` writes ``path`` in (``fmt``, or by the extension:
    ``.skeleton``, ``.npz`` -> a recording, an existing ``.npy`` -> its format)."""
    return _resolve(os.fspath(path), fmt, writing=True)


def check_fits(rec: Recording, path: str | os.PathLike[str], fmt: str | None = None) -> tuple[str, int]:
    """Check that the format of ``path`` holds all of ``rec`` before anything is written.

    Returns:
        ``(format, persons)``: the format and the number of persons the file will hold.

    Raises:
        ValueError: naming the file and the reason: SGN holds two persons; SGN, ST-GCN and
            ``.skeleton`` hold ntu25 skeletons only (25 joints).
    """
    name = os.fspath(path)
    kind = _resolve(name, fmt, writing=True)
    if kind == "npz":
        return kind, rec.num_persons
    if kind == "bvh":
        persons = check_bvh(rec)
        if len(persons) > 1:
            raise ValueError(
                f"{name}: a BVH file holds one skeleton, this recording has {len(persons)} persons; "
                "pmr convert --to bvh writes a file per person (or one: --person N)"
            )
        return kind, 1
    if kind == "skeleton":
        if rec.layout != "ntu25":
            raise ValueError(
                f"{name}: the .skeleton format holds ntu25 skeletons ({J} joints), this recording is {rec.layout}"
            )
        return kind, int(rec.present.any(axis=0).sum())
    return kind, check_array_capacity(rec, name, kind)  # type: ignore[arg-type]


def save_recording(
    rec: Recording, path: str | os.PathLike[str], fmt: str | None = None, *, overwrite: bool = True
) -> Written:
    """Save ``rec`` in any supported format, atomically, without losing a person or a frame.

    With ``fmt=None``: ``.skeleton`` -> skeleton, ``.npz`` -> recording, ``.npy`` -> the
    format of the file already there (a new ``.npy`` needs ``fmt``). What a format cannot
    hold is refused before anything is written (see :func:`check_fits`): every format holds
    every frame; ``.npz`` holds everything; ``.skeleton`` any number of bodies (confidence as
    Kinect tracking states, no timestamps); ST-GCN every person (``M`` = persons present, at
    least 2); SGN two persons; ``.bvh`` one person (:mod:`.bvh`; several persons:
    :func:`~pmr_stream.formats.bvh.write_bvh_files`, a file each). The file is written to a temporary file beside ``path`` and
    renamed into place; ``overwrite=False`` refuses an existing file.

    Returns:
        what was written (:class:`Written`).
    """
    name = os.fspath(path)
    kind, persons = check_fits(rec, name, fmt)
    if kind == "skeleton":
        text = format_arrays(rec.joints, rec.confidence, rec.present, rec.ntu_body_ids())
        if text is None:  # what the fast writer leaves to the reference one (and its errors)
            write_skeleton(name, rec.to_ntu(), overwrite=overwrite)
        else:
            with atomic_write(name, overwrite=overwrite) as fh:
                fh.write(text.encode("ascii"))
    elif kind == "bvh":
        write_bvh_files(rec, name, overwrite=overwrite)  # the motion's own skeleton, centimetres
    elif kind == "npz":
        rec.save(name, overwrite=overwrite)
    else:
        save_array_file(rec, name, kind, overwrite=overwrite)  # type: ignore[arg-type]
    return Written(path=name, format=kind, frames=rec.num_frames, persons=persons)


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    src_fmt: str | None = None,
    dst_fmt: str | None = None,
    *,
    overwrite: bool = True,
) -> Recording:
    """Read ``src`` and write it to ``dst`` (see :func:`save_recording`); returns the recording read."""
    rec = load_recording(src, src_fmt)
    written = save_recording(rec, dst, dst_fmt, overwrite=overwrite)
    logger.info(
        "converted %s -> %s (%d frames, %d persons)",
        os.fspath(src),
        written.path,
        written.frames,
        written.persons,
    )
    return rec


__all__ = [
    "FORMATS", "OUTPUT_FORMATS", "Written", "guess_format", "load_recording", "save_recording", "convert", "check_fits", "output_format",
]  # fmt: skip
