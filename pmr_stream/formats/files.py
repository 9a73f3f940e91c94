"""Safe file handling shared by every format: inputs checked before they are read, outputs
written atomically.

Reading
    :func:`check_input_file` refuses a directory or a special file (FIFO, device) by name.
    :func:`check_npy_file` and :func:`check_npz_members` compare the sizes an ``.npy``
    header (or each ``.npz`` member's header) declares with what the file holds *before*
    numpy allocates anything, and refuse arrays that would need more than
    :func:`memory_limit_bytes`; :func:`check_dense_size` does the same for arrays that a
    reader builds from a smaller file (a ``.skeleton`` file's ``(T, P, 25, 3)`` arrays).

Writing
    :func:`atomic_write` writes to a temporary file in the destination's folder, flushes it
    to disk and renames it over the destination (``os.replace``): a reader sees the old
    file or the complete new one, never a partial one, and nothing is left behind on error.
    :func:`check_output_file` is the CLI's check before any work: the output is not a
    directory, its folder exists, it is not one of the inputs, and it does not exist yet
    unless replacing it was asked for.

Every refusal is a ``ValueError`` whose message names the file (one line).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import stat
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final

import numpy as np

logger = logging.getLogger(__name__)

#: Most bytes a reader may allocate for the arrays of one file; ``None``: half of this host's
#: memory (or of the container's limit), see :func:`memory_limit_bytes`.
MAX_LOAD_BYTES: int | None = None
#: Deflate never expands data by more than about 1032:1, so a deflated ``.npz`` member that
#: claims more is lying about its size.
DEFLATE_MAX_RATIO: Final[int] = 1032
_GIB: Final[float] = float(2**30)


def _gib(n: int) -> str:
    return f"{n / _GIB:.3g} GiB"


def memory_limit_bytes() -> int:
    """Bytes a reader may allocate for one file: :data:`MAX_LOAD_BYTES` when set, else half of
    the smaller of the host's physical memory and the cgroup (container) memory limit."""
    if MAX_LOAD_BYTES is not None:
        return int(MAX_LOAD_BYTES)
    total = 16 * 2**30
    with contextlib.suppress(ValueError, OSError, AttributeError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            with open(limit_file) as fh:
                text = fh.read().strip()
            if text.isdigit() and 0 < int(text) < total:
                total = int(text)
    return total // 2


def _check_budget(name: str, needed: int, what: str) -> None:
    limit = memory_limit_bytes()
    if needed > limit:
        raise ValueError(
            f"{name}: {what} would need {_gib(needed)} of memory, more than the limit of {_gib(limit)} "
            "(half of this host's memory)"
        )


def check_dense_size(name: str, shape: Sequence[int], bytes_per_item: int, what: str) -> None:
    """Refuse building arrays of ``prod(shape) * bytes_per_item`` bytes beyond the memory limit.

    Args:
        name: the file, for the message.
        shape: e.g. ``(T, P)``.
        bytes_per_item: bytes all arrays together need per element of ``shape``.
        what: a few words on what would be built, e.g. ``"103 frames x 2 persons"``.
    """
    _check_budget(name, math.prod(int(s) for s in shape) * int(bytes_per_item), what)


# --------------------------------------------------------------------------- inputs


def check_input_file(path: str | os.PathLike[str]) -> str:
    """``path`` as a string; refuses a directory or a file that is not a regular file.

    A missing file is left to the reader (``FileNotFoundError``).
    """
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return name
    except OSError as exc:
        raise ValueError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{name}: is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name}: not a regular file")
    return name


@dataclass(frozen=True)
class ArrayHeader:
    """What an ``.npy`` header declares: ``shape``, ``dtype``, and the data's size in bytes."""

    shape: tuple[int, ...]
    dtype: np.dtype
    data_offset: int

    @property
    def nbytes(self) -> int:
        """Bytes of data the header declares (``prod(shape) * itemsize``)."""
        return math.prod(self.shape) * self.dtype.itemsize


def read_npy_header(fh: IO[bytes], where: str) -> ArrayHeader:
    """The header of the ``.npy`` data at ``fh``'s position (left just after the header).

    A dtype holding Python objects is returned as it is (its data is a pickle, which
    ``np.load(..., allow_pickle=False)`` refuses); :func:`check_npy_file` and
    :func:`check_npz_members` leave it to that refusal.

    Raises:
        ValueError: not an ``.npy`` header or an unsupported version, naming ``where``.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
    except (ValueError, EOFError, OSError, SyntaxError) as exc:
        raise ValueError(f"{where}: cannot read array file ({exc})") from None
    return ArrayHeader(shape=tuple(int(s) for s in shape), dtype=dtype, data_offset=fh.tell())


def check_npy_file(path: str | os.PathLike[str]) -> ArrayHeader:
    """Check an ``.npy`` file before it is loaded: its header's shape x itemsize must be the
    size of the data that follows, and within :func:`memory_limit_bytes`.

    Raises:
        ValueError: naming the file and the sizes.
    """
    name = check_input_file(path)
    with open(name, "rb") as fh:
        header = read_npy_header(fh, name)
        size = os.fstat(fh.fileno()).st_size
    if header.dtype.hasobject:
        return header  # a pickle: np.load(allow_pickle=False) refuses it without reading it
    data = size - header.data_offset
    if data != header.nbytes:
        raise ValueError(
            f"{name}: the header declares shape {header.shape} of {header.dtype} ({header.nbytes} bytes) "
            f"but the file holds {data} bytes of data"
        )
    _check_budget(name, header.nbytes, f"the array {header.shape} of {header.dtype}")
    return header


def check_npz_members(
    path: str | os.PathLike[str], keys: Iterable[str] | None = None
) -> dict[str, ArrayHeader]:
    """Check the members of an ``.npz`` (a zip of ``.npy``) before numpy reads them.

    For each member that ``np.load`` reads for ``keys`` (``KEY``, else ``KEY.npy``; default
    every ``.npy`` member): it must be stored
    or deflated (as numpy writes), not encrypted, its compressed size must fit in the file
    and its declared uncompressed size must be possible (deflate expands at most 1032:1);
    its ``.npy`` header's shape x itemsize must equal the member's data size. The members
    together must fit in :func:`memory_limit_bytes`.

    Returns:
        ``{key: header}`` of the checked members (keys without ``.npy``).

    Raises:
        ValueError: naming the file, the member and what is wrong.
    """
    name = check_input_file(path)
    file_size = os.path.getsize(name)
    headers: dict[str, ArrayHeader] = {}
    try:
        with zipfile.ZipFile(name) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if keys is None:
                members = [n for n in infos if n.endswith(".npy")]
            else:  # the member np.load reads for a key: the bare name if there is one, else KEY.npy
                members = [k if k in infos else k + ".npy" for k in keys if k in infos or k + ".npy" in infos]
            for member in members:
                info = infos[member]
                key = member[:-4] if member.endswith(".npy") else member
                where = f"{name}: member {info.filename!r}"
                if info.flag_bits & 0x1:
                    raise ValueError(f"{where} is encrypted")
                if info.compress_size > file_size:
                    raise ValueError(
                        f"{where} claims {info.compress_size} compressed bytes in a {file_size}-byte file"
                    )
                if info.compress_type == zipfile.ZIP_STORED:
                    if info.file_size != info.compress_size:
                        raise ValueError(
                            f"{where} is stored but claims {info.file_size} bytes in {info.compress_size}"
                        )
                elif info.compress_type == zipfile.ZIP_DEFLATED:
                    if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
                        raise ValueError(
                            f"{where} claims {info.file_size} bytes from {info.compress_size} deflated bytes,"
                            " more than deflate can hold"
                        )
                else:
                    raise ValueError(
                        f"{where} uses zip compression method {info.compress_type}; only stored or deflated"
                    )
                with zf.open(info) as fh:
                    header = read_npy_header(fh, where)
                if header.dtype.hasobject:
                    continue  # a pickle: np.load(allow_pickle=False) refuses it without reading it
                data = info.file_size - header.data_offset
                if data != header.nbytes:
                    raise ValueError(
                        f"{where} declares shape {header.shape} of {header.dtype} ({header.nbytes} bytes) "
                        f"but holds {data} bytes of data"
                    )
                headers[key] = header
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ValueError(f"{name}: not a readable .npz archive ({exc})") from None
    total = sum(h.nbytes for h in headers.values())
    _check_budget(name, total, f"its arrays ({', '.join(f'{k} {h.shape}' for k, h in headers.items())})")
    return headers


# --------------------------------------------------------------------------- outputs


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_file(
    path: str | os.PathLike[str], *, overwrite: bool = False, inputs: Sequence[str | os.PathLike[str]] = ()
) -> str:
    """Check an output path before any work is done (the CLI's ``--output``).

    Refused: a directory; a missing folder; one of ``inputs`` (also through a symlink, ``..``
    or a hard link), even with ``overwrite``: the input is never replaced; an existing file
    unless ``overwrite``.

    Returns:
        ``path`` as a string.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise ValueError(f"output {name}: is a directory; give a file name")
    parent = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(parent):
        raise ValueError(f"output {name}: the folder {parent} does not exist")
    for src in inputs:
        if os.path.exists(name) and _same_file(name, os.fspath(src)):
            raise ValueError(f"output {name}: is the input file {os.fspath(src)}; write to another file")
    if os.path.lexists(name) and not overwrite:
        raise ValueError(f"output {name}: exists already; pass --overwrite to replace it")
    return name


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through, all or nothing.

    The data goes to a temporary file ``.NAME.PID.RANDOM.tmp`` in the same folder (created
    with the usual ``0o666 & ~umask`` permissions, or the replaced file's), and on leaving the
    block replaces ``path`` in one rename; on any error the temporary file is removed and
    ``path`` is as it was. When a file is replaced, the new data is flushed to disk
    (``fsync``) before the rename, so even a power cut leaves the old file or the new one;
    a new file is not flushed (there is nothing to lose, and writing thousands of files
    stays fast). A symlink at ``path`` keeps pointing to the (new) file.

    Args:
        path: the destination.
        overwrite: replace an existing file; with ``False`` an existing file is refused
            (checked again at the rename, without a window).

    Raises:
        ValueError: naming ``path``: a directory, a missing folder, an existing file
            without ``overwrite``, or a write that failed (e.g. disk full, no permission).
    """
    name = os.fspath(path)
    target = os.path.realpath(name) if os.path.islink(name) else name
    if os.path.isdir(target):
        raise ValueError(f"{name}: is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise ValueError(f"{name}: the folder {folder} does not exist")
    if not overwrite and os.path.lexists(name):
        raise ValueError(f"{name}: exists already; pass --overwrite to replace it")
    base = os.path.basename(target)
    try:
        replaced_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        replaced_mode = None
    while True:
        tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ValueError(f"{name}: cannot write in {folder} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if replaced_mode is not None:
                os.fchmod(fh.fileno(), replaced_mode)
                os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _place_new(tmp, target, name)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write ({exc.strerror or exc}); the file is unchanged") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    logger.debug("wrote %s atomically", name)


def _place_new(tmp: str, target: str, name: str) -> None:
    """Rename ``tmp`` to ``target`` only if ``target`` does not exist (a hard link fails
    when it does; filesystems without hard links fall back to a check and a rename)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise ValueError(f"{name}: exists already; pass --overwrite to replace it") from None
    except OSError:
        if os.path.lexists(target):
            raise ValueError(f"{name}: exists already; pass --overwrite to replace it") from None
        os.replace(tmp, target)


__all__ = [
    "MAX_LOAD_BYTES", "ArrayHeader", "memory_limit_bytes", "check_dense_size", "check_input_file",
    "read_npy_header", "check_npy_file", "check_npz_members", "check_output_file", "atomic_write",
]  # fmt: skip
