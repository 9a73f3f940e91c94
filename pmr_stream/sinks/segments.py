"""Takes that survive a crash: the recorder's output check, file names, segments and recovery.

While ``pmr record --output take.npz`` runs, what it received is on disk within about a
second, in a folder beside the output that the recorder claims (creates exclusively)
before the first frame::

    take.npz.parts/
        take-0001/seg-000001.npz     one segment per take every ~1 s (``flush_s``)
        take-0001/seg-000002.npz
        take-0002/seg-000001.npz     a second take (another stream, or a restarted producer)

A segment is a valid :class:`~pmr_stream.formats.recording.Recording` (written to a
temporary name and renamed, so it is complete or absent) holding the frames that arrived
since the previous one; its metadata entry ``pmr_segment`` says which take it belongs to,
the frame number of every row and the person id of every column. On a clean stop the
segments of each take are merged into its final file and the folder is removed;
after a crash (``kill -9``, out of memory, power to the process lost) :func:`recover`
(``pmr record --recover --output take.npz``) does the same with what is there.

File names (:func:`take_names`): one take gives exactly ``--output``; several give
``<stem>.<stream>.npz``, take *n* > 1 of the same topic ``<stem>.<stream>~<n>.npz``, and,
when both ``raw/`` and ``anon/`` topics were recorded, ``<stem>.<raw|anon>.<stream>[~<n>].npz``.
``~`` cannot occur in a stream id, so a restarted ``cam`` (``take.cam~2.npz``) and a stream
``cam.2`` (``take.cam.2.npz``) never share a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import J

log = logging.getLogger(__name__)

#: Suffix of the folder of segments beside the output (``take.npz.parts``).
PARTS_SUFFIX: Final[str] = ".parts"
#: Version of the ``pmr_segment`` metadata entry.
SEGMENT_VERSION: Final[int] = 1
#: Name of the file (in the parts folder) that fixes the final names once a clean stop chose them.
NAMES_FILE: Final[str] = "names.json"
_TAKE_RE: Final[re.Pattern[str]] = re.compile(r"take-(\d{4,})")
_SEG_RE: Final[re.Pattern[str]] = re.compile(r"seg-(\d{6,})\.npz")


class OutputError(ValueError):
    """An output the recorder cannot use; the message names it and says why (one line)."""


def parts_dir(output: str | os.PathLike[str]) -> Path:
    """The folder of segments of ``output``: ``<output>.parts`` beside it."""
    p = Path(output)
    return p.with_name(p.name + PARTS_SUFFIX)


def check_output(output: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check ``--output`` before anything is recorded; returns it as a :class:`Path`.

    Refused (:class:`OutputError`): a name not ending in ``.npz``, a directory, an existing
    file unless ``overwrite``, a folder that does not exist and cannot be made, a folder
    this process cannot write in, and an existing ``<output>.parts`` folder (the segments of
    an earlier recording that did not finish: recover or remove them first). A missing
    folder is created.
    """
    out = Path(output)
    if out.is_dir():
        raise OutputError(f"output {out}: is a directory; give a file name such as {out / 'take.npz'}")
    if out.suffix != ".npz":
        raise OutputError(f"output {out}: must be a file name ending in .npz")
    if out.exists() and not overwrite:
        raise OutputError(f"output {out}: exists already; pass --overwrite to replace it")
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"output {out}: cannot create the folder {folder} ({exc.strerror or exc})"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output {out}: cannot write in the folder {folder} (permission denied)")
    parts = parts_dir(out)
    if os.path.lexists(parts):
        raise OutputError(
            f"output {out}: {parts} holds the segments of an earlier recording that did not finish; "
            f"recover them with `pmr record --recover --output {out}` (or remove the folder)"
        )
    return out


def claim_parts(output: str | os.PathLike[str]) -> Path:
    """Create ``<output>.parts`` exclusively (two recorders can never share it); returns it."""
    parts = parts_dir(output)
    try:
        parts.mkdir()
    except FileExistsError:
        raise OutputError(
            f"output {output}: {parts} exists (another recorder, or an unfinished one)"
        ) from None
    except OSError as exc:
        raise OutputError(f"output {output}: cannot create {parts} ({exc.strerror or exc})") from None
    fsync_dir(parts.parent)
    return parts


def take_names(output: str | os.PathLike[str], topics: Sequence[str]) -> list[Path]:
    """The final file of each take, in take order, given the take's topic (``raw/<stream>``)."""
    out = Path(output)
    if len(topics) == 1:
        return [out]
    prefixes = {t.split("/", 1)[0] for t in topics}
    count: Counter[str] = Counter()
    names: list[Path] = []
    for topic in topics:
        prefix, _, stream = topic.partition("/")
        count[topic] += 1
        part = f"{prefix}.{stream}" if len(prefixes) > 1 else stream
        if count[topic] > 1:
            part += f"~{count[topic]}"
        names.append(out.with_name(f"{out.stem}.{part}.npz"))
    return names


def write_recording(rec: Recording, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``rec`` at ``path`` all or nothing (:meth:`Recording.save`: a temporary file
    flushed to disk and renamed). With ``overwrite=False`` an existing ``path`` is refused
    (``ValueError``) at the moment of the rename, without a window."""
    p = Path(path)
    rec.save(p, overwrite=overwrite)
    return p


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush ``folder``'s entries to disk (so a new file or folder in it survives a power cut)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- segments


def take_dir(parts: Path, take: int) -> Path:
    """The folder of take number ``take`` (from 1) in ``parts``."""
    return parts / f"take-{take:04d}"


def segment_path(parts: Path, take: int, index: int) -> Path:
    """Segment ``index`` (from 1) of take ``take``."""
    return take_dir(parts, take) / f"seg-{index:06d}.npz"


@dataclass
class TakeSummary:
    """What :func:`merge_take` found in one take's folder."""

    folder: Path
    take: int = 0
    topic: str = ""
    stream: str = ""
    segments: int = 0
    bad_segments: list[str] = field(default_factory=list)  # files skipped, with the reason
    duplicates: int = 0  # (frame, person) received twice; the first is kept
    refused_persons: int = 0  # frame messages of persons beyond the cap


def _check_info(meta: object, name: str) -> dict[str, Any]:
    """The ``pmr_segment`` entry of a segment's metadata, checked for its types."""
    info = meta.get("pmr_segment") if isinstance(meta, dict) else None
    if not isinstance(info, dict) or info.get("version") != SEGMENT_VERSION:
        raise ValueError(
            f"{name}: not a recorder segment (no pmr_segment entry of version {SEGMENT_VERSION})"
        )
    for key, what in (("frames", "frame numbers"), ("person_ids", "person ids")):
        v = info.get(key)
        if not (isinstance(v, list) and all(type(x) is int and x >= 0 for x in v) and len(set(v)) == len(v)):
            raise ValueError(f"{name}: pmr_segment.{key} must be a list of distinct {what}")
    for key in ("topic", "stream"):
        if not isinstance(info.get(key), str):
            raise ValueError(f"{name}: pmr_segment.{key} must be a string")
    return info


def _peek(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A segment's ``pmr_segment`` info and ``start`` entry, from its metadata alone (no arrays read)."""
    try:
        with (
            open(path, "rb") as fh,
            np.load(fh, allow_pickle=False) as z,
        ):  # fh: closed even when np.load fails
            text = str(z["metadata_json"][()])
        meta = json.loads(text)
    except (ValueError, OSError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable segment ({exc})") from None
    info = _check_info(meta, str(path))
    start = meta.get("start")
    return info, start if isinstance(start, dict) else None


def _peek_segments(
    folder: Path, summary: TakeSummary, skip: dict[Path, str]
) -> list[tuple[Path, dict[str, Any]]]:
    """Every segment of ``folder`` (but ``skip``) whose metadata reads, in order, with its info."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(folder.iterdir()):
        if not _SEG_RE.fullmatch(path.name) or path in skip:
            continue  # temporary files of a write that was cut short, anything else
        try:
            info, start = _peek(path)
        except ValueError as exc:
            log.warning("skipped %s", exc)
            summary.bad_segments.append(f"{path.name}: {exc}")
            continue
        if out and (info["topic"], info.get("session")) != (out[0][1]["topic"], out[0][1].get("session")):
            summary.bad_segments.append(f"{path.name}: belongs to another take ({info['topic']})")
            continue
        out.append((path, {**info, "_start": start}))
    return out


class _BadSegment(Exception):
    def __init__(self, path: Path, why: str) -> None:
        super().__init__(why)
        self.path = path


def merge_take(folder: str | os.PathLike[str]) -> tuple[Recording, TakeSummary]:
    """The take of one folder of segments as one :class:`Recording` ``(T, P, 25, 3)``.

    Rows are the distinct frame numbers of all segments in increasing order, columns the
    distinct person ids in increasing order (``metadata["wire"]["person_ids"]`` lists them);
    a frame whose persons arrived in two segments is one row; a (frame, person) met twice
    keeps the first. Timestamps are each frame's media time (``pts_s``), made non-decreasing,
    plus the stream's ``pts_origin_s`` when its start metadata has one. A segment that cannot
    be read is skipped and listed in the summary; ``ValueError`` when none can.
    """
    d = Path(folder)
    skip: dict[Path, str] = {}  # segments whose arrays did not read, with the reason
    while True:
        summary = TakeSummary(d)
        m = _TAKE_RE.fullmatch(d.name)
        summary.take = int(m.group(1)) if m else 0
        try:
            return _merge(d, summary, skip)
        except _BadSegment as bad:  # its metadata read but its arrays did not: again without it
            log.warning("skipped %s: %s", bad.path, bad)
            skip[bad.path] = str(bad)


def _merge(d: Path, summary: TakeSummary, skip: dict[Path, str]) -> tuple[Recording, TakeSummary]:
    segs = _peek_segments(d, summary, skip)
    summary.bad_segments += [f"{p.name}: {why}" for p, why in sorted(skip.items())]
    if not segs:
        why = "; ".join(summary.bad_segments) or "no segments"
        raise ValueError(f"{d}: no readable segment ({why})")
    frames = sorted({f for _, info in segs for f in info["frames"]})
    ids = sorted({i for _, info in segs for i in info["person_ids"]}) or [0]
    row = {f: r for r, f in enumerate(frames)}
    col = {i: c for c, i in enumerate(ids)}
    n_t, n_p = len(frames), len(ids)
    joints_a = np.zeros((n_t, n_p, J, 3), np.float32)
    conf_a = np.zeros((n_t, n_p, J), np.float32)
    present_a = np.zeros((n_t, n_p), bool)
    ts = np.zeros(n_t, np.float64)
    ts_set = np.zeros(n_t, bool)
    start: dict[str, Any] | None = None
    ended: str | None = None
    for path, info in segs:
        try:
            rec = Recording.load(path)
        except (ValueError, OSError) as exc:
            raise _BadSegment(path, str(exc)) from None
        if rec.num_frames != len(info["frames"]) or rec.num_persons != len(info["person_ids"]):
            raise _BadSegment(
                path, f"{rec.num_frames} x {rec.num_persons} arrays for the rows and columns it names"
            )
        r = np.fromiter((row[f] for f in info["frames"]), np.int64, len(info["frames"]))
        c = np.fromiter((col[i] for i in info["person_ids"]), np.int64, len(info["person_ids"]))
        if len(r) and len(c):
            block = np.ix_(r, c)
            have = present_a[block]
            new = rec.present & ~have
            summary.duplicates += int((rec.present & have).sum())
            j, cf = joints_a[block], conf_a[block]
            j[new], cf[new] = rec.joints[new], rec.confidence[new]
            joints_a[block], conf_a[block], present_a[block] = j, cf, have | new
        fresh = ~ts_set[r]
        ts[r[fresh]] = rec.timestamps[fresh]
        ts_set[r] = True
        summary.segments += 1
        summary.duplicates += int(info.get("duplicates", 0))
        summary.refused_persons += int(info.get("refused_persons", 0))
        if info["_start"] is not None:
            start = info["_start"]
        if info.get("ended") is not None:
            ended = str(info["ended"])
    first = segs[0][1]
    summary.topic, summary.stream = first["topic"], first["stream"]
    if n_t > 1 and np.any(np.diff(ts) < 0):
        log.warning("%s: media times go backwards in places; made non-decreasing", summary.topic)
        ts = np.maximum.accumulate(ts)
    meta: dict[str, Any] = {}
    wire: dict[str, Any] = {
        "topic": first["topic"],
        "stream": first["stream"],
        "session": first.get("session"),
    }
    if start is not None:
        user = start.get("metadata")
        meta.update(user if isinstance(user, dict) else {})
        origin = meta.get("pts_origin_s")
        if isinstance(origin, (int, float)) and not isinstance(origin, bool):
            ts = ts + float(meta.pop("pts_origin_s"))
        wire.update({k: start.get(k) for k in ("source", "fps", "anonymized", "model_id")})
    wire.update(ended=ended, duplicates=summary.duplicates, person_ids=ids,
                refused_persons=summary.refused_persons, segments=summary.segments)  # fmt: skip
    meta["wire"] = wire
    rec = Recording(joints=joints_a, confidence=conf_a, timestamps=ts, present=present_a, metadata=meta)
    return rec, summary


# ----------------------------------------------------------------------------- recovery


@dataclass
class Finished:
    """One take :func:`finish_parts` handled: written to ``path``, or kept (``error`` says why)."""

    path: Path
    summary: TakeSummary
    frames: int = 0
    error: str | None = None


def take_folders(parts: Path) -> list[Path]:
    """The take folders of ``parts`` in take order."""
    found = [
        (int(m.group(1)), p) for p in parts.iterdir() if p.is_dir() and (m := _TAKE_RE.fullmatch(p.name))
    ]
    return [p for _, p in sorted(found)]


def finish_parts(
    output: str | os.PathLike[str], *, overwrite: bool = False, parts: str | os.PathLike[str] | None = None
) -> list[Finished]:
    """Merge every take in ``parts`` (default ``<output>.parts``) into its final file
    (named by :func:`take_names`).

    A take whose file was written loses its folder; the parts folder goes once it is empty.
    A take that cannot be written (its file exists and ``overwrite`` is off, a write error,
    no readable segment) keeps its folder, so nothing is lost; its :class:`Finished` says why.
    The names are fixed in ``names.json`` the first time, so finishing again later (after
    fixing the cause) gives each take the same file.
    """
    out = Path(output)
    parts = parts_dir(out) if parts is None else Path(parts)
    if not parts.is_dir():
        raise FileNotFoundError(f"{parts}: no segments to recover (no such folder)")
    if out.is_dir():
        raise OutputError(f"output {out}: is a directory; give a file name")
    folders = take_folders(parts)
    names_file = parts / NAMES_FILE
    names: dict[str, str] = {}
    if names_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(names_file.read_text())
            names = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    merged: list[tuple[Path, Recording | None, TakeSummary, str | None]] = []
    for folder in folders:
        try:
            take, summary = merge_take(folder)
            merged.append((folder, take, summary, None))
        except (ValueError, OSError) as exc:
            merged.append((folder, None, TakeSummary(folder), str(exc)))
    if not all(f.name in names for f in folders):
        good = [(f, s) for f, rec, s, _ in merged if rec is not None]
        for (f, _), path in zip(good, take_names(out, [s.topic for _, s in good]), strict=True):
            names.setdefault(f.name, path.name)
        write_text_atomic(names_file, json.dumps(names, indent=1))
    done: list[Finished] = []
    for folder, rec, summary, err in merged:
        target = out.with_name(names.get(folder.name, f"{out.stem}.{folder.name}.npz"))
        if rec is None:
            done.append(Finished(target, summary, error=f"kept {folder}: {err}"))
            continue
        try:
            write_recording(rec, target, overwrite=overwrite)
        except (ValueError, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            done.append(Finished(target, summary, rec.num_frames, f"kept {folder}: {why}"))
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("wrote %s: %d frames of %s", target, rec.num_frames, summary.topic)
        done.append(Finished(target, summary, rec.num_frames))
    if not take_folders(parts):
        shutil.rmtree(parts, ignore_errors=True)
    return done


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


__all__ = [
    "PARTS_SUFFIX", "SEGMENT_VERSION", "OutputError", "parts_dir", "check_output", "claim_parts",
    "take_names", "write_recording", "fsync_dir", "take_dir", "segment_path", "TakeSummary",
    "merge_take", "Finished", "take_folders", "finish_parts", "write_text_atomic",
]  # fmt: skip
