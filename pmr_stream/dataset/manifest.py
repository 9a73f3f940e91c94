"""The manifest of a dataset run: ``manifest.json`` in the output folder, what was done to each file.

It lies in the output tree, so it carries no more than the output names do: per file the output's
path relative to the output folder, its frames and persons, a status (``done``: written by this
run; ``skipped``: there already, from an earlier run; ``failed``) and the error (one line, the
input named by its output name), and the run's settings (model id, mode, bones, names policy,
backend). Input paths only with ``--names keep`` (then they are no secret). Written atomically,
every few seconds while the run goes and at its end, so an interrupted run leaves one that says
what was finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Final

from pmr_stream.formats.files import atomic_write

#: The manifest's file name in the output folder.
MANIFEST_NAME: Final[str] = "manifest.json"
#: File statuses.
STATUSES: Final[tuple[str, ...]] = ("done", "skipped", "failed")


@dataclass
class FileEntry:
    """One file of the run (see the module doc); ``input`` is set only with ``--names keep``."""

    output: str
    status: str
    frames: int | None = None
    persons: int | None = None
    error: str | None = None
    input: str | None = None

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        if d["input"] is None:
            del d["input"]
        return d


def read_previous(path: str | os.PathLike[str]) -> dict[str, FileEntry]:
    """The entries of an earlier run's manifest by output name (``{}`` when there is none or it
    cannot be read: the outputs themselves say what is done, the manifest only adds counts)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        files = data["files"]
        return {str(f["output"]): FileEntry(output=str(f["output"]), status=str(f["status"]),
                                            frames=f.get("frames"), persons=f.get("persons"))
                for f in files if isinstance(f, dict) and "output" in f and "status" in f}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(path: str | os.PathLike[str], settings: dict[str, Any], entries: list[FileEntry]) -> None:
    """Write the manifest (``settings`` and a count per status beside the entries), atomically."""
    totals = {s: sum(e.status == s for e in entries) for s in STATUSES}
    totals["files"] = len(entries)
    totals["frames"] = sum(e.frames or 0 for e in entries if e.status != "failed")
    doc = {"manifest": 1, **settings, "totals": totals, "files": [e.as_json() for e in entries]}
    with atomic_write(path, overwrite=True) as fh:
        fh.write((json.dumps(doc, indent=1) + "\n").encode("utf-8"))


__all__ = ["MANIFEST_NAME", "STATUSES", "FileEntry", "read_previous", "write_manifest"]
