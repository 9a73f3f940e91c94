"""Reading an ``.rrd`` back with rerun's own dataframe API (``rerun.dataframe.load_recording``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class LoggedPerson:
    """What one ``<kind>/<stream>/person<k>`` entity holds, row by row in frame order.

    ``joints``: ``(N, 25, 3)``; ``bones``: ``(N, B, 2, 3)`` (child, parent per strip);
    ``cleared``: frames where the person was cleared (not in that frame).
    """

    frames: list[int]
    capture_ns: list[int]
    joints: npt.NDArray[np.float32]
    bones: npt.NDArray[np.float32]
    cleared: list[int]


def _column(table: object, name: str) -> list[object]:
    return table.column(name).to_pylist()  # type: ignore[attr-defined]


def timelines(path: Path) -> set[str]:
    """The timelines (index columns) of the recording."""
    import rerun.dataframe as rd

    return {c.name for c in rd.load_recording(str(path)).schema().index_columns()}


def logged_persons(path: Path) -> dict[str, LoggedPerson]:
    """Every person entity (``/kind/stream/personK``, from its ``joints`` child) and what it holds."""
    import rerun.dataframe as rd

    rec = rd.load_recording(str(path))
    people = sorted(
        {c.entity_path.removesuffix("/joints") for c in rec.schema().component_columns()
         if c.entity_path.endswith("/joints")}
    )  # fmt: skip
    out = {}
    for person in people:
        joints = rec.view(index="frame", contents=f"{person}/joints").select().read_all()
        bones = rec.view(index="frame", contents=f"{person}/bones").select().read_all()
        clears = rec.view(index="frame", contents=person, include_tombstone_columns=True).select().read_all()
        frames = [int(f) for f in _column(joints, "frame")]  # type: ignore[call-overload]
        assert frames == [int(f) for f in _column(bones, "frame")]  # type: ignore[call-overload]
        capture = [int(v) for v in joints.column("capture_time").cast("int64").to_pylist()]
        out[person] = LoggedPerson(
            frames=frames,
            capture_ns=capture,
            joints=np.asarray(_column(joints, f"{person}/joints:Position3D"), np.float32),
            bones=np.asarray(_column(bones, f"{person}/bones:LineStrip3D"), np.float32),
            cleared=[int(f) for f in _column(clears, "frame")],  # type: ignore[call-overload]
        )
    return out
