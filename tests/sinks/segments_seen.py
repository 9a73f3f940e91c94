"""What a running recorder has written so far, read from its parts folder (for tests to poll)."""

from __future__ import annotations

import os
from typing import Any

from pmr_stream.formats.recording import Recording
from pmr_stream.sinks.segments import parts_dir


def segment_infos(output: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ``pmr_segment`` metadata (take, topic, frame indices, ``ended``, ...) of every segment
    written so far for the recorder's ``output``, in take and segment order; ``[]`` before any.

    Segments are renamed into place whole, so each one listed is complete.
    """
    paths = sorted(parts_dir(output).glob("take-*/seg-*.npz"))
    return [Recording.load(p).metadata["pmr_segment"] for p in paths]
