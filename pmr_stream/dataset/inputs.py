"""The files of a dataset run: folders (searched recursively), globs and files, each with its
path relative to the root it was found under (the tree the output mirrors)."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: Suffixes (lower case) of the files a folder is searched for: .skeleton, recordings and arrays.
DATASET_SUFFIXES: Final[tuple[str, ...]] = (".skeleton", ".npz", ".npy")
_GLOB_CHARS: Final[str] = "*?["


@dataclass(frozen=True)
class DatasetInput:
    """One input file: ``path`` as found, ``rel`` its path under the input's root (POSIX)."""

    path: str
    rel: str


def is_glob(text: str) -> bool:
    """Whether ``text`` holds glob characters (``*``, ``?``, ``[``)."""
    return any(c in text for c in _GLOB_CHARS)


def is_dataset_input(inputs: Sequence[str]) -> bool:
    """Whether ``--input`` asks for a dataset run: several inputs, a folder, or a glob that is
    not the name of an existing file."""
    if len(inputs) != 1:
        return True
    one = inputs[0]
    return os.path.isdir(one) or (is_glob(one) and not os.path.exists(one))


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in Path(rel).parts)  # temporary files, .git, ...


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if exclude is not None:
            dirnames[:] = [d for d in dirnames if not _same(here / d, exclude)]
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [here / f for f in sorted(filenames)
                  if not f.startswith(".") and Path(f).suffix.lower() in DATASET_SUFFIXES]  # fmt: skip
    return found


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _glob_root(pattern: str) -> Path:
    """The folder a glob's matches are made relative to: its leading part without glob characters."""
    parts = Path(pattern).parts
    lead: list[str] = []
    for part in parts[:-1]:
        if is_glob(part):
            break
        lead.append(part)
    return Path(*lead) if lead else Path(".")


def find_inputs(inputs: Sequence[str], exclude: str | os.PathLike[str] | None = None) -> list[DatasetInput]:
    """The files ``inputs`` name, in a stable order (each input's files sorted by path).

    A folder gives every ``.skeleton``, ``.npz`` and ``.npy`` file under it (hidden files and
    folders skipped, and ``exclude``, the output folder, when it lies inside), relative to the
    folder; a glob (``*``, ``?``, ``[..]``, ``**`` across folders) its matching files (folders it
    matches are searched), relative to its leading folder; a file itself, relative to its folder.

    Raises:
        ValueError: an input that is none of these, or no file at all (the message names it).
    """
    out: list[DatasetInput] = []
    ex = Path(exclude) if exclude is not None else None
    for item in inputs:
        if os.path.isdir(item):
            root = Path(item)
            out += [DatasetInput(str(p), p.relative_to(root).as_posix()) for p in _walk(root, ex)]
        elif os.path.isfile(item):
            out.append(DatasetInput(item, Path(item).name))
        elif is_glob(item):
            root = _glob_root(item)
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise ValueError(f"input {item}: the pattern matches no file")
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    out += [DatasetInput(str(p), p.relative_to(root).as_posix()) for p in _walk(mp, ex)]
                elif mp.is_file() and not _hidden(mp.relative_to(root).as_posix()):
                    out.append(DatasetInput(m, mp.relative_to(root).as_posix()))
        else:
            raise ValueError(f"input {item}: no such file or folder")
    if not out:
        raise ValueError(f"input {' '.join(inputs)}: no {', '.join(DATASET_SUFFIXES)} file found")
    seen: set[str] = set()
    unique = []
    for d in out:  # the same file named twice (a folder and a glob inside it) is done once
        key = os.path.abspath(d.path)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return unique


__all__ = ["DATASET_SUFFIXES", "DatasetInput", "is_glob", "is_dataset_input", "find_inputs"]
