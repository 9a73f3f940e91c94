"""pmr-stream's own recording format: dense skeleton arrays in a compressed ``.npz``.

A :class:`Recording` holds a multi-person skeleton sequence with per-joint confidence,
per-frame timestamps and free-form JSON metadata. On disk it is an ``np.savez_compressed``
archive with the keys of :data:`RECORDING_KEYS`; it never holds pickled objects, and
:meth:`Recording.load` refuses files that would need pickle.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.files import atomic_write, check_input_file, check_npz_members
from pmr_stream.formats.ntu import NtuSkeleton
from pmr_stream.formats.ntu_dataset import parse_ntu_name
from pmr_stream.skeleton import FPS, LAYOUTS

logger = logging.getLogger(__name__)

#: Version written by :meth:`Recording.save`; :meth:`Recording.load` reads up to this one.
FORMAT_VERSION: Final[int] = 1
#: Keys of a recording ``.npz``.
RECORDING_KEYS: Final[tuple[str, ...]] = (
    "joints", "confidence", "timestamps", "present", "layout", "metadata_json", "format_version",
)  # fmt: skip


def _real_array(value: Any, name: str, dtype: type) -> npt.NDArray:
    """``value`` as an array of ``dtype``; refuses object, string, complex and bool data."""
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


@dataclass
class Recording:
    """A skeleton recording.

    Attributes:
        joints: ``(T, P, J, 3)`` float32 metres, Kinect camera convention (J = 25 for
            the ``ntu25`` layout); zeros where a person is absent.
        confidence: ``(T, P, J)`` float32 in [0, 1].
        timestamps: ``(T,)`` float64 seconds from the recording's start, non-decreasing.
        present: ``(T, P)`` bool, which persons are in which frame.
        layout: skeleton layout name (see :data:`pmr_stream.skeleton.LAYOUTS`).
        metadata: JSON-serialisable dict (stored as a JSON string).

    Arrays are converted to the dtypes above; anything that cannot be (wrong shape,
    non-numeric data, NaN or infinite values, confidence outside [0, 1]) raises
    ``ValueError`` naming the field.
    """

    joints: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64]
    present: npt.NDArray[np.bool_]
    layout: str = "ntu25"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; known: {sorted(LAYOUTS)}")
        n_j = LAYOUTS[self.layout].num_joints
        self.joints = _real_array(self.joints, "joints", np.float32)
        if self.joints.ndim != 4 or self.joints.shape[2:] != (n_j, 3):
            raise ValueError(
                f"joints must have shape (T, P, {n_j}, 3) for layout {self.layout}, got {self.joints.shape}"
            )
        n_t, n_p = self.joints.shape[:2]
        if not np.all(np.isfinite(self.joints)):
            raise ValueError("joints contain NaN or infinite values")

        self.confidence = _real_array(self.confidence, "confidence", np.float32)
        if self.confidence.shape != (n_t, n_p, n_j):
            raise ValueError(f"confidence must have shape {(n_t, n_p, n_j)}, got {self.confidence.shape}")
        if not np.all(np.isfinite(self.confidence)):
            raise ValueError("confidence contains NaN or infinite values")
        if self.confidence.size and (self.confidence.min() < 0.0 or self.confidence.max() > 1.0):
            raise ValueError(
                f"confidence must lie in [0, 1], got values from {self.confidence.min()} to {self.confidence.max()}"
            )

        self.timestamps = _real_array(self.timestamps, "timestamps", np.float64)
        if self.timestamps.shape != (n_t,):
            raise ValueError(f"timestamps must have shape ({n_t},), got {self.timestamps.shape}")
        if not np.all(np.isfinite(self.timestamps)):
            raise ValueError("timestamps contain NaN or infinite values")
        if n_t > 1 and np.any(np.diff(self.timestamps) < 0):
            raise ValueError("timestamps must not decrease")

        pres = np.asarray(self.present)
        if pres.shape != (n_t, n_p):
            raise ValueError(f"present must have shape {(n_t, n_p)}, got {pres.shape}")
        if pres.dtype != bool:
            if not np.issubdtype(pres.dtype, np.integer) or not np.all((pres == 0) | (pres == 1)):
                raise ValueError(f"present must be bool (or 0/1 integers), got dtype {pres.dtype}")
            pres = pres.astype(bool)
        self.present = pres

        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(self.metadata).__name__}")
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from None

    # ------------------------------------------------------------------ properties

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.joints.shape[0])

    @property
    def num_persons(self) -> int:
        """P, the number of person slots."""
        return int(self.joints.shape[1])

    @property
    def fps(self) -> float | None:
        """Mean frame rate (frames per second) from the timestamps; ``None`` for fewer than
        two frames or a zero time span."""
        if self.num_frames < 2:
            return None
        span = float(self.timestamps[-1] - self.timestamps[0])
        if span <= 0.0:
            return None
        return (self.num_frames - 1) / span

    @property
    def duration(self) -> float:
        """Seconds from the first to the last timestamp (0 for fewer than two frames)."""
        return float(self.timestamps[-1] - self.timestamps[0]) if self.num_frames > 1 else 0.0

    def person(self, p: int) -> npt.NDArray[np.float32]:
        """Joints ``(T, J, 3)`` float32 metres of person ``p`` (zeros where absent)."""
        if not -self.num_persons <= p < self.num_persons:
            raise IndexError(f"person {p} out of range: the recording has {self.num_persons} persons")
        return self.joints[:, p]

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        """Write the recording as a compressed ``.npz`` at exactly ``path``, atomically (a
        temporary file in the same folder renamed into place; nothing partial is left on
        error). ``overwrite=False`` refuses an existing file (``ValueError``)."""
        with atomic_write(path, overwrite=overwrite) as fh:
            np.savez_compressed(
                fh,
                joints=self.joints,
                confidence=self.confidence,
                timestamps=self.timestamps,
                present=self.present,
                layout=np.array(self.layout),
                metadata_json=np.array(json.dumps(self.metadata, allow_nan=False)),
                format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            )
        logger.debug("saved %s: %d frames, %d persons", os.fspath(path), self.num_frames, self.num_persons)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        """Read a recording written by :meth:`save`.

        Raises:
            FileNotFoundError: there is no such file.
            ValueError: naming the file and the problem: not an ``.npz``, a directory, a
                missing key, an unsupported ``format_version``, a pickled (object) array, a
                member whose header declares more data than it holds or more than the
                memory limit, a wrong shape or dtype, NaN values, malformed metadata.
        """
        name = check_input_file(path)
        if os.path.exists(name):
            if zipfile.is_zipfile(name):
                check_npz_members(name, RECORDING_KEYS)  # declared sizes vs the file, before allocating
            else:
                with open(name, "rb") as fh:
                    if fh.read(6) == b"\x93NUMPY":
                        raise ValueError(f"{name}: not a recording .npz (it holds a single array)")
        try:
            archive = np.load(name, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{name}: not a readable recording .npz ({exc})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{name}: not a recording .npz (it holds a single array)")
        with archive:
            missing = [k for k in RECORDING_KEYS if k not in archive.files]
            if missing:
                raise ValueError(
                    f"{name}: not a pmr-stream recording, missing keys {missing} (has {archive.files})"
                )
            arrays: dict[str, npt.NDArray] = {}
            for key in RECORDING_KEYS:
                try:
                    arrays[key] = archive[key]
                except ValueError as exc:  # object arrays need pickle, which we never allow
                    raise ValueError(f"{name}: key {key!r} cannot be read without pickle ({exc})") from None
        version = arrays["format_version"]
        if version.shape != () or not np.issubdtype(version.dtype, np.integer):
            raise ValueError(
                f"{name}: format_version must be an integer scalar, got {version.dtype} {version.shape}"
            )
        if not 1 <= int(version) <= FORMAT_VERSION:
            raise ValueError(
                f"{name}: format_version {int(version)} is not supported (this reader knows 1..{FORMAT_VERSION})"
            )
        texts: dict[str, str] = {}
        for key in ("layout", "metadata_json"):
            a = arrays[key]
            if a.shape != () or a.dtype.kind != "U":
                raise ValueError(f"{name}: {key} must be a string scalar, got {a.dtype} {a.shape}")
            texts[key] = str(a)
        try:
            metadata = json.loads(texts["metadata_json"])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: metadata_json is not valid JSON ({exc})") from None
        if not isinstance(metadata, dict):
            raise ValueError(f"{name}: metadata_json must hold a JSON object, got {type(metadata).__name__}")
        try:
            rec = cls(
                joints=arrays["joints"],
                confidence=arrays["confidence"],
                timestamps=arrays["timestamps"],
                present=arrays["present"],
                layout=texts["layout"],
                metadata=metadata,
            )
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        logger.debug("loaded %s: %d frames, %d persons", name, rec.num_frames, rec.num_persons)
        return rec

    # ------------------------------------------------------------------ conversions

    @classmethod
    def from_ntu(cls, skel: NtuSkeleton, fps: float = FPS, max_persons: int | None = None) -> Recording:
        """A recording from an NTU ``.skeleton`` (see :meth:`NtuSkeleton.to_arrays`).

        Frame ``t`` gets timestamp ``t / fps`` seconds; ``max_persons`` is passed on to
        :meth:`NtuSkeleton.to_arrays`. The metadata records the source,
        the Kinect body IDs (``ntu_body_ids``, used again by :meth:`to_ntu`) and, when
        the source is named like an NTU file, its parts (``ntu_name``).
        """
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        joints, confidence, present, body_ids = skel.to_arrays(max_persons=max_persons)
        metadata: dict[str, Any] = {"source": skel.source, "ntu_body_ids": body_ids}
        try:
            name = parse_ntu_name(skel.source)
        except ValueError:
            pass
        else:
            metadata["ntu_name"] = {
                "stem": name.stem, "setup": name.setup, "camera": name.camera, "performer": name.performer,
                "replication": name.replication, "action": name.action,
            }  # fmt: skip
        return cls(
            joints=joints,
            confidence=confidence,
            timestamps=np.arange(skel.num_frames, dtype=np.float64) / fps,
            present=present,
            metadata=metadata,
        )

    def to_ntu(self) -> NtuSkeleton:
        """This recording as an NTU skeleton (see :meth:`NtuSkeleton.from_arrays`).

        Uses the body IDs in ``metadata["ntu_body_ids"]`` when there is one per person,
        else the default IDs. Timestamps are not part of the format and are dropped.
        """
        if self.layout != "ntu25":
            raise ValueError(f"only ntu25 recordings can become NTU skeletons, this one is {self.layout}")
        source = self.metadata.get("source")
        return NtuSkeleton.from_arrays(
            self.joints,
            self.confidence,
            self.present,
            body_ids=self.ntu_body_ids(),
            source=source if isinstance(source, str) else "<memory>",
        )

    def ntu_body_ids(self) -> list[int] | None:
        """The Kinect body IDs of ``metadata["ntu_body_ids"]`` when there is one valid, distinct ID
        per person, else ``None`` (a ``.skeleton`` then gets the default IDs)."""
        ids = self.metadata.get("ntu_body_ids")
        valid = (
            isinstance(ids, list)
            and len(ids) == self.num_persons
            and all(isinstance(i, int) and 0 <= i < 2**64 for i in ids)
            and len(set(ids)) == len(ids)
        )
        return list(ids) if valid else None  # type: ignore[arg-type]

    @classmethod
    def from_clip(
        cls,
        joints: npt.ArrayLike,
        fps: float = FPS,
        confidence: npt.ArrayLike | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Recording:
        """A recording from a bare clip.

        Args:
            joints: ``(T, 25, 3)`` (one person) or ``(T, P, 25, 3)`` metres.
            fps: frame rate; frame ``t`` gets timestamp ``t / fps`` seconds.
            confidence: ``(T, 25)`` or ``(T, P, 25)`` (matching ``joints``); default 1.0
                where the person is present.
            metadata: JSON-serialisable dict.

        A person counts as present in a frame where any coordinate is non-zero (all-zero
        frames are how padded and absent persons are stored by other toolkits).
        """
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        x = _real_array(joints, "joints", np.float32)
        single = x.ndim == 3
        if single:
            x = x[:, None]
        if x.ndim != 4 or x.shape[2:] != (25, 3):
            raise ValueError(f"joints must have shape (T, 25, 3) or (T, P, 25, 3), got {np.shape(joints)}")
        present = np.any(x != 0.0, axis=(2, 3))
        if confidence is None:
            conf = np.repeat(present[:, :, None], 25, axis=2).astype(np.float32)
        else:
            conf = _real_array(confidence, "confidence", np.float32)
            if single and conf.ndim == 2:
                conf = conf[:, None]
        return cls(
            joints=x,
            confidence=conf,
            timestamps=np.arange(x.shape[0], dtype=np.float64) / fps,
            present=present,
            metadata=dict(metadata) if metadata is not None else {},
        )


__all__ = ["Recording", "FORMAT_VERSION", "RECORDING_KEYS"]
