"""Reader and writer for NTU RGB+D ``.skeleton`` files (Kinect v2, 25 joints).

The format is line based text (see ``../shared/docs/PMR_FACTS.md``, section Data)::

    <frame count>
    per frame:
        <body count>
        per body:
            bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
                handRightState isRestricted leanX leanY trackingState
            <joint count, always 25>
            25 lines: x y z depthX depthY colorX colorY
                      orientationW orientationX orientationY orientationZ trackingState

``x y z`` are metres in the Kinect camera convention (see :mod:`pmr_stream.skeleton`),
``depthX depthY`` pixels in the 512x424 depth image, ``colorX colorY`` pixels in the
1920x1080 colour image, the orientation a unit quaternion (or ``0 0 0 0`` for the end
joints), and the joint tracking state 0 (not tracked), 1 (inferred) or 2 (tracked).

The reader is strict: every deviation (wrong count of numbers on a line, a value that is
not a number, a joint count other than 25, a truncated file, text after the last frame)
raises :class:`SkeletonFormatError` naming the file, the 1-based line and what was
expected. It accepts LF and CRLF line endings, a missing final newline, a UTF-8 byte
order mark and trailing blank lines. The writer uses LF line endings and the shortest
decimal text that reads back as the same float64 (``repr``), which for the real files is
the text they were written with (Kinect's 7 significant digits), so read -> write -> read
gives identical numbers.

NTU's file names, the tracking states' confidences and the Kinect cameras' pixel
projection are in :mod:`pmr_stream.formats.ntu_dataset`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.files import atomic_write, check_dense_size, check_input_file
from pmr_stream.formats.ntu_dataset import (
    COLOR_CAMERA,
    DEPTH_CAMERA,
    TRACKED,
    confidence_to_tracking_state,
    project,
    tracking_state_to_confidence,
)
from pmr_stream.skeleton import J

logger = logging.getLogger(__name__)

#: Columns of a joint line, in file order.
JOINT_COLUMNS: Final[tuple[str, ...]] = (
    "x", "y", "z", "depthX", "depthY", "colorX", "colorY",
    "orientationW", "orientationX", "orientationY", "orientationZ", "trackingState",
)  # fmt: skip
#: Fields of a body line, in file order.
BODY_FIELDS: Final[tuple[str, ...]] = (
    "bodyID", "clippedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
    "handRightState", "isRestricted", "leanX", "leanY", "trackingState",
)  # fmt: skip

#: First body ID handed out by :meth:`NtuSkeleton.from_arrays` (Kinect's IDs start near 2**56).
DEFAULT_BODY_ID: Final[int] = 72057594037927936

_UINT64_LIMIT: Final[int] = 2**64
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")


class SkeletonFormatError(ValueError):
    """A ``.skeleton`` file does not follow the format.

    Attributes:
        path: the file (or the ``source`` name given to :func:`parse_skeleton`).
        line: 1-based line number where the problem is (one past the last line for a
            truncated file).
        expected: what the reader expected there, e.g. ``"12 numbers for a joint"``.
        got: what it found instead (may be empty).
    """

    def __init__(self, path: str, line: int, expected: str, got: str = "") -> None:
        self.path = str(path)
        self.line = int(line)
        self.expected = expected
        self.got = got
        message = f"{self.path} line {self.line}: expected {expected}"
        if got:
            message += f", got {got}"
        super().__init__(message)


# --------------------------------------------------------------------------- data classes


@dataclass
class NtuBody:
    """One tracked body in one frame.

    ``joints`` is ``(25, 12)`` float64 with the columns of :data:`JOINT_COLUMNS`:
    x y z (metres), depthX depthY (depth-image pixels), colorX colorY (colour-image
    pixels), orientation W X Y Z (quaternion), trackingState (0, 1 or 2).
    ``body_id`` is Kinect's 64-bit unsigned tracking ID, kept as a Python int.
    """

    body_id: int
    clipped_edges: int
    hand_left_confidence: int
    hand_left_state: int
    hand_right_confidence: int
    hand_right_state: int
    is_restricted: int
    lean_x: float
    lean_y: float
    tracking_state: int
    joints: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        self.body_id = int(self.body_id)
        if not 0 <= self.body_id < _UINT64_LIMIT:
            raise ValueError(f"body_id must be a 64-bit unsigned integer, got {self.body_id}")
        self.joints = np.asarray(self.joints, dtype=np.float64)
        if self.joints.shape != (J, len(JOINT_COLUMNS)):
            raise ValueError(
                f"body joints must have shape ({J}, {len(JOINT_COLUMNS)}), got {self.joints.shape}"
            )

    @property
    def xyz(self) -> npt.NDArray[np.float64]:
        """Joint positions ``(25, 3)`` float64 metres (a view into ``joints``)."""
        return self.joints[:, :3]


@dataclass
class NtuFrame:
    """One frame: the bodies Kinect tracked in it (possibly none)."""

    bodies: list[NtuBody] = field(default_factory=list)


@dataclass
class NtuSkeleton:
    """A whole ``.skeleton`` file: its frames in order, and where it came from."""

    frames: list[NtuFrame]
    source: str = "<memory>"

    @property
    def num_frames(self) -> int:
        """Number of frames (the file's first line)."""
        return len(self.frames)

    def body_ids(self) -> list[int]:
        """Distinct body IDs in order of first appearance."""
        seen: dict[int, None] = {}
        for frame in self.frames:
            for body in frame.bodies:
                seen.setdefault(body.body_id, None)
        return list(seen)

    def max_bodies(self) -> int:
        """Largest number of bodies in any one frame (0 for an empty file)."""
        return max((len(f.bodies) for f in self.frames), default=0)

    def to_arrays(
        self, max_persons: int | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_], list[int]]:
        """Dense arrays with bodies followed across frames by their body ID.

        Person ``p`` is the ``p``-th distinct body ID in order of first appearance. Should a
        body ID occur twice in one frame (corrupt files), its second occurrence becomes a
        person of its own (the ID then appears twice in the returned list).

        Args:
            max_persons: keep at most this many persons: those present in the most frames
                (ties: the earlier one), returned in order of first appearance.

        Returns:
            ``(joints, confidence, present, body_ids)``: joints ``(T, P, 25, 3)`` float32
            metres; confidence ``(T, P, 25)`` float32 from the joint tracking state
            (2 -> 1.0, 1 -> 0.5, anything else -> 0.0); present ``(T, P)`` bool; the body
            ID of each person. Absent persons have zero joints and confidence.
        """
        if max_persons is not None and max_persons < 0:
            raise ValueError(f"max_persons must be >= 0, got {max_persons}")
        keys: dict[tuple[int, int], int] = {}
        counts: list[int] = []
        slots: list[list[tuple[int, NtuBody]]] = []  # per frame: (person index, body)
        for t, frame in enumerate(self.frames):
            occurrences: dict[int, int] = {}
            row: list[tuple[int, NtuBody]] = []
            for body in frame.bodies:
                k = occurrences.get(body.body_id, 0)
                occurrences[body.body_id] = k + 1
                if k:
                    logger.warning(
                        "%s frame %d: body ID %d occurs %d times", self.source, t, body.body_id, k + 1
                    )
                key = (body.body_id, k)
                if key not in keys:
                    keys[key] = len(keys)
                    counts.append(0)
                counts[keys[key]] += 1
                row.append((keys[key], body))
            slots.append(row)
        order = list(range(len(keys)))
        if max_persons is not None and len(order) > max_persons:
            order = sorted(sorted(order, key=lambda i: (-counts[i], i))[:max_persons])
        # joints + confidence float32 and present bool per (frame, person), before allocating
        check_dense_size(
            self.source, (len(self.frames), len(order)), J * 3 * 4 + J * 4 + 1,
            f"{len(self.frames)} frames x {len(order)} persons as dense arrays",
        )  # fmt: skip
        column = {person: p for p, person in enumerate(order)}
        key_list = list(keys)
        n_t, n_p = len(self.frames), len(order)
        joints = np.zeros((n_t, n_p, J, 3), dtype=np.float32)
        confidence = np.zeros((n_t, n_p, J), dtype=np.float32)
        present = np.zeros((n_t, n_p), dtype=bool)
        for t, row in enumerate(slots):
            for person, body in row:
                p = column.get(person)
                if p is None:
                    continue
                joints[t, p] = body.joints[:, :3]
                confidence[t, p] = tracking_state_to_confidence(body.joints[:, 11])
                present[t, p] = True
        return joints, confidence, present, [key_list[i][0] for i in order]

    @classmethod
    def from_arrays(
        cls,
        joints: npt.ArrayLike,
        confidence: npt.ArrayLike | None = None,
        present: npt.ArrayLike | None = None,
        body_ids: list[int] | None = None,
        source: str = "<memory>",
    ) -> NtuSkeleton:
        """Build a skeleton file from dense arrays (the inverse of :meth:`to_arrays`).

        Args:
            joints: ``(T, P, 25, 3)`` (or ``(T, 25, 3)`` for one person) metres, Kinect
                convention. float32 input is written with its shortest decimal text, so
                reading the file back gives the same float32 values.
            confidence: ``(T, P, 25)`` in [0, 1]; joint tracking state 2 where >= 0.75,
                1 where > 0, else 0. Default: all tracked.
            present: ``(T, P)`` bool, which persons are in which frame. Default: a person
                is present in a frame where any of its coordinates is non-zero.
            body_ids: one distinct 64-bit ID per person; default
                ``72057594037927936 + p``.
            source: name stored in the result.

        Other fields get defaults: body tracking state 2, the hand, lean, clipping and
        restriction fields 0, orientation ``0 0 0 0`` (as Kinect writes for end joints).
        The pixel columns are projected with typical Kinect v2 intrinsics
        (:data:`~pmr_stream.formats.ntu_dataset.DEPTH_CAMERA`,
        :data:`~pmr_stream.formats.ntu_dataset.COLOR_CAMERA`): ``u = cx + f * x / z`` and
        ``v = cy - f * y / z`` (pixel y grows downwards), rounded to 7 significant digits;
        joints with ``z <= 0`` get pixel coordinates 0. The sign of ``u`` was checked
        against the six real files in ``shared/data/ntu``: a least-squares fit of their
        depthX on ``x / z`` gives ``f = +366`` px, centre 258 px (residual 3 px), and of
        colorX ``f = +1049`` px, centre 976 px, so +x (the sensor's left) is image-right
        in Kinect's mirrored images. Real colour pixels are a few tens of pixels off the
        plain pinhole model because the colour camera sits about 5 cm beside the depth
        camera; generated files ignore that offset.
        """
        x = np.asarray(joints)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[2:] != (J, 3):
            raise ValueError(f"joints must have shape (T, P, 25, 3) or (T, 25, 3), got {np.shape(joints)}")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ValueError(f"joints must be real numbers, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError("joints contain NaN or infinite values")
        n_t, n_p = x.shape[:2]
        xyz = _shortest_float64(x)

        if present is None:
            pres = np.any(xyz != 0.0, axis=(2, 3))
        else:
            pres = np.asarray(present)
            if pres.shape != (n_t, n_p):
                raise ValueError(f"present must have shape {(n_t, n_p)}, got {pres.shape}")
            pres = pres.astype(bool)
        if confidence is None:
            states = np.full((n_t, n_p, J), float(TRACKED))
        else:
            conf = np.asarray(confidence, dtype=np.float64)
            if conf.shape != (n_t, n_p, J):
                raise ValueError(f"confidence must have shape {(n_t, n_p, J)}, got {conf.shape}")
            states = confidence_to_tracking_state(conf).astype(np.float64)
        if body_ids is None:
            ids = [DEFAULT_BODY_ID + p for p in range(n_p)]
        else:
            ids = [int(b) for b in body_ids]
            if len(ids) != n_p:
                raise ValueError(f"body_ids must have one ID per person ({n_p}), got {len(ids)}")
            if len(set(ids)) != len(ids):
                raise ValueError(f"body_ids must be distinct, got {ids}")

        depth = project(xyz, DEPTH_CAMERA)
        color = project(xyz, COLOR_CAMERA)
        table = np.zeros((n_t, n_p, J, len(JOINT_COLUMNS)), dtype=np.float64)
        table[..., 0:3] = xyz
        table[..., 3:5] = depth
        table[..., 5:7] = color
        table[..., 11] = states
        frames = []
        for t in range(n_t):
            bodies = [
                NtuBody(
                    body_id=ids[p],
                    clipped_edges=0,
                    hand_left_confidence=0,
                    hand_left_state=0,
                    hand_right_confidence=0,
                    hand_right_state=0,
                    is_restricted=0,
                    lean_x=0.0,
                    lean_y=0.0,
                    tracking_state=TRACKED,
                    joints=table[t, p],
                )  # fmt: skip
                for p in range(n_p)
                if pres[t, p]
            ]
            frames.append(NtuFrame(bodies))
        return cls(frames=frames, source=source)


# --------------------------------------------------------------------------- helpers


def _shortest_float64(a: npt.NDArray) -> npt.NDArray[np.float64]:
    """Values as float64; float32 (and float16) input goes through its shortest decimal text.

    This makes a float32 value 0.2181153 become the float64 0.2181153 rather than
    0.21811529994010925, so files look like Kinect's and read back to the same float32.
    """
    if a.dtype in (np.float32, np.float16):
        flat = [float(np.format_float_positional(v, unique=True, trim="-")) for v in a.ravel()]
        return np.asarray(flat, dtype=np.float64).reshape(a.shape)
    return a.astype(np.float64)


def _format_float(v: float) -> str:
    """Shortest text that reads back as the same float64, Kinect style: ``2``, ``-7.257856E-05``."""
    s = repr(float(v))
    if "e" in s:
        mantissa, exponent = s.split("e")
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return f"{mantissa}E{exponent}"
    if s.endswith(".0"):
        s = s[:-2]
    return s


# --------------------------------------------------------------------------- reading


class _Cursor:
    """Walks the lines of a file, keeping 1-based line numbers for error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the empty piece after a final newline is not a line
        self.lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        self.pos = 0

    def error(self, expected: str, got: str, line: int | None = None) -> SkeletonFormatError:
        return SkeletonFormatError(self.source, self.pos if line is None else line, expected, got)

    def next_tokens(self, expected: str) -> list[str]:
        if self.pos >= len(self.lines):
            self.pos += 1
            raise self.error(expected, "end of file (the file is truncated)")
        line = self.lines[self.pos]
        self.pos += 1
        tokens = line.split()
        if not tokens:
            raise self.error(expected, "an empty line")
        if not line.isascii():
            raise self.error(expected, f"non-ASCII text {_shorten(line)!r}")
        return tokens

    def count(self, what: str) -> int:
        expected = f"a {what} (one integer >= 0)"
        tokens = self.next_tokens(expected)
        if len(tokens) != 1:
            raise self.error(expected, f"{len(tokens)} fields {_shorten(' '.join(tokens))!r}")
        if not _INT_RE.fullmatch(tokens[0]):
            raise self.error(expected, f"non-integer value {_shorten(tokens[0])!r}")
        value = int(tokens[0])
        if value < 0:
            raise self.error(expected, f"{value}")
        return value

    def count_within(self, what: str) -> int:
        """A count that cannot exceed the lines left (each item takes at least one line), so a
        declared count is checked against the file before the reader relies on it."""
        value = self.count(what)
        left = len(self.lines) - self.pos
        if 0 < left < value:  # (no line left at all: reported as a truncated file)
            raise self.error(
                f"a {what} the rest of the file can hold (at most {left}, the lines that follow)", f"{value}"
            )
        return value

    def body(self) -> NtuBody:
        expected = f"{len(BODY_FIELDS)} fields for a body ({' '.join(BODY_FIELDS)})"
        tokens = self.next_tokens(expected)
        if len(tokens) != len(BODY_FIELDS):
            raise self.error(expected, f"{len(tokens)}")
        ints: list[int] = []
        for i in (0, 1, 2, 3, 4, 5, 6, 9):
            if not _INT_RE.fullmatch(tokens[i]):
                raise self.error(expected, f"non-integer {BODY_FIELDS[i]} {_shorten(tokens[i])!r}")
            ints.append(int(tokens[i]))
        if not 0 <= ints[0] < _UINT64_LIMIT:
            raise self.error(expected, f"bodyID {ints[0]} outside the 64-bit unsigned range")
        lean = [self._float(tokens[i], BODY_FIELDS[i], expected) for i in (7, 8)]
        num_joints = self.count("joint count")
        if num_joints != J:
            raise self.error(f"joint count {J}", f"{num_joints}")
        rows = self._joints()
        return NtuBody(
            body_id=ints[0], clipped_edges=ints[1], hand_left_confidence=ints[2], hand_left_state=ints[3],
            hand_right_confidence=ints[4], hand_right_state=ints[5], is_restricted=ints[6],
            lean_x=lean[0], lean_y=lean[1], tracking_state=ints[7], joints=np.array(rows, dtype=np.float64),
        )  # fmt: skip

    def _joints(self) -> npt.NDArray[np.float64] | list[list[float]]:
        """The 25 joint lines: all at once when they are plainly well formed (12 ASCII numbers each,
        finite, integer states: the values the line-by-line reader gives), else line by line (which
        names the first bad line)."""
        block = self.lines[self.pos : self.pos + J]
        rows = [line.split() for line in block]
        if len(rows) == J and all(len(r) == len(JOINT_COLUMNS) for r in rows):
            text = "".join(block)
            if text.isascii() and "_" not in text:
                try:
                    values = np.array(rows, dtype=np.float64)
                except ValueError:
                    values = None
                if values is not None and np.isfinite(values).all() and (values[:, -1] % 1 == 0).all():
                    self.pos += J
                    return values
        return [self._joint() for _ in range(J)]

    def _joint(self) -> list[float]:
        expected = f"{len(JOINT_COLUMNS)} numbers for a joint"
        tokens = self.next_tokens(expected)
        if len(tokens) != len(JOINT_COLUMNS):
            raise self.error(expected, f"{len(tokens)}")
        values = [self._float(tok, name, expected) for tok, name in zip(tokens, JOINT_COLUMNS, strict=True)]
        if not values[-1].is_integer():
            raise self.error(expected, f"non-integer trackingState {tokens[-1]!r}")
        return values

    def _float(self, token: str, name: str, expected: str) -> float:
        try:
            value = float(token) if "_" not in token else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise self.error(expected, f"non-numeric {name} {_shorten(token)!r}")
        return value

    def finish(self) -> None:
        """Only blank lines may follow the last frame."""
        for i in range(self.pos, len(self.lines)):
            if self.lines[i].strip():
                raise self.error(
                    "end of file after the last frame", f"{_shorten(self.lines[i].strip())!r}", line=i + 1
                )


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_skeleton(text: str, source: str = "<string>") -> NtuSkeleton:
    """Parse the text of a ``.skeleton`` file.

    Raises:
        SkeletonFormatError: the text does not follow the format (names ``source``,
            the 1-based line and what was expected there).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    cur = _Cursor(text, source)
    num_frames = cur.count_within("frame count")
    frames: list[NtuFrame] = []
    for _ in range(num_frames):
        num_bodies = cur.count_within("body count")
        frames.append(NtuFrame([cur.body() for _ in range(num_bodies)]))
    cur.finish()
    return NtuSkeleton(frames=frames, source=source)


def read_skeleton(path: str | os.PathLike[str]) -> NtuSkeleton:
    """Read a ``.skeleton`` file (see :func:`parse_skeleton`).

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: naming the file: a directory or special file, an unreadable file.
        SkeletonFormatError: the text does not follow the format.
    """
    source = check_input_file(path)
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"{source}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SkeletonFormatError(
            source, line, "ASCII text", f"undecodable byte 0x{data[exc.start]:02x}"
        ) from None
    skel = parse_skeleton(text, source=source)
    logger.debug("read %s: %d frames, up to %d bodies", source, skel.num_frames, skel.max_bodies())
    return skel


# --------------------------------------------------------------------------- writing


def format_skeleton(data: NtuSkeleton) -> str:
    """The ``.skeleton`` text of ``data`` (LF line endings, final newline).

    Numbers are written with the shortest text that reads back to the same float64, so
    :func:`parse_skeleton` of the result gives identical values.

    Raises:
        ValueError: a body holds NaN or infinite values.
    """
    out: list[str] = [str(data.num_frames)]
    for t, frame in enumerate(data.frames):
        out.append(str(len(frame.bodies)))
        for body in frame.bodies:
            if not (
                np.all(np.isfinite(body.joints)) and math.isfinite(body.lean_x) and math.isfinite(body.lean_y)
            ):
                raise ValueError(f"{data.source} frame {t}: body {body.body_id} holds NaN or infinite values")
            out.append(
                f"{int(body.body_id)} {int(body.clipped_edges)} {int(body.hand_left_confidence)} "
                f"{int(body.hand_left_state)} {int(body.hand_right_confidence)} {int(body.hand_right_state)} "
                f"{int(body.is_restricted)} {_format_float(body.lean_x)} {_format_float(body.lean_y)} "
                f"{int(body.tracking_state)}"
            )
            out.append(str(J))
            for row in body.joints.tolist():
                out.append(" ".join(_format_float(v) for v in row))
    out.append("")
    return "\n".join(out)


def write_skeleton(path: str | os.PathLike[str], data: NtuSkeleton, *, overwrite: bool = True) -> None:
    """Write ``data`` as a ``.skeleton`` file (see :func:`format_skeleton`), atomically: a
    temporary file in the same folder renamed into place, nothing partial left on error.
    The format holds any number of frames and of bodies per frame. ``overwrite=False``
    refuses an existing file (``ValueError``)."""
    text = format_skeleton(data).encode("ascii")
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(text)
    logger.debug("wrote %s: %d frames", os.fspath(path), data.num_frames)


__all__ = [
    "SkeletonFormatError", "NtuBody", "NtuFrame", "NtuSkeleton",
    "read_skeleton", "parse_skeleton", "write_skeleton", "format_skeleton",
    "JOINT_COLUMNS", "BODY_FIELDS", "DEFAULT_BODY_ID",
]  # fmt: skip
