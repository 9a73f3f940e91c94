"""One entry point for every skeleton file format pmr-stream reads and writes.

========== ============================================ =========================
format     files                                        module
========== ============================================ =========================
skeleton   NTU RGB+D ``.skeleton`` text                 :mod:`.ntu`
npz        pmr-stream recording ``.npz``                :mod:`.recording`
sgn        SGN ``(T, 150)`` / ``(N, T, 150)`` .npy/.npz  :mod:`.arrays`
stgcn      ST-GCN ``(3, T, 25, M)`` (+ batch) .npy/.npz  :mod:`.arrays`
========== ============================================ =========================
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Final

import numpy as np

from pmr_stream.formats.arrays import NPZ_KEY, load_array_file, save_array_file
from pmr_stream.formats.ntu import read_skeleton, write_skeleton
from pmr_stream.formats.recording import RECORDING_KEYS, Recording
from pmr_stream.skeleton import J

logger = logging.getLogger(__name__)

#: Format names accepted by :func:`load_recording`, :func:`save_recording` and :func:`convert`.
FORMATS: Final[tuple[str, ...]] = ("skeleton", "npz", "sgn", "stgcn")


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
    name = os.fspath(path)
    suffix = Path(name).suffix.lower()
    if suffix == ".skeleton":
        return "skeleton"
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
            name, f"array shape {found} is neither SGN (T, 150) nor ST-GCN (3, T, {J}, M), with optional batch axis"
        )
    return kind


def _resolve(path: str, fmt: str | None, writing: bool = False) -> str:
    if fmt is None:
        if writing and Path(path).suffix.lower() == ".npz":
            return "npz"  # writing a .npz means a recording, whatever an old file there held
        return guess_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return fmt


def load_recording(path: str | os.PathLike[str], fmt: str | None = None) -> Recording:
    """Load any supported file as a :class:`Recording` (``fmt`` guessed when ``None``).

    Array files give their first clip at 30 fps.
    """
    name = os.fspath(path)
    kind = _resolve(name, fmt)
    if kind == "skeleton":
        return Recording.from_ntu(read_skeleton(name))
    if kind == "npz":
        return Recording.load(name)
    return load_array_file(name, kind)  # type: ignore[arg-type]


def save_recording(rec: Recording, path: str | os.PathLike[str], fmt: str | None = None) -> None:
    """Save ``rec`` in any supported format.

    With ``fmt=None``: ``.skeleton`` -> skeleton, ``.npz`` -> recording, ``.npy`` -> the
    format of the file already there (a new ``.npy`` needs ``fmt``).
    """
    name = os.fspath(path)
    kind = _resolve(name, fmt, writing=True)
    if kind == "skeleton":
        write_skeleton(name, rec.to_ntu())
    elif kind == "npz":
        rec.save(name)
    else:
        save_array_file(rec, name, kind)  # type: ignore[arg-type]


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    src_fmt: str | None = None,
    dst_fmt: str | None = None,
) -> Recording:
    """Read ``src`` and write it to ``dst``; returns the recording read."""
    rec = load_recording(src, src_fmt)
    save_recording(rec, dst, dst_fmt)
    logger.info("converted %s -> %s (%d frames, %d persons)", os.fspath(src), os.fspath(dst), rec.num_frames, rec.num_persons)
    return rec


__all__ = ["FORMATS", "guess_format", "load_recording", "save_recording", "convert"]
