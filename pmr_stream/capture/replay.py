"""Recording replay (source ``replay:FILE``, alias ``kinect:FILE``): a recorded skeleton file as a live source.

Reads an NTU ``.skeleton`` file or one of our ``.npz`` recordings (anything
:func:`~pmr_stream.formats.io.load_recording` reads) and yields its frames with their
recorded timestamps as media time; :class:`~pmr_stream.capture.producer.Producer`
paces them (30 fps for NTU, ``--speed N`` faster, 0 = as fast as possible). Every
body of the recording is its own person id (its slot in the recording); frames in
which nobody is present become gaps. With ``loop`` the recording starts over, frame
numbers and media time running on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pmr_stream.capture.source import PersonPose, SourceFrame, StreamInfo
from pmr_stream.formats.io import load_recording
from pmr_stream.formats.recording import Recording
from pmr_stream.skeleton import FPS

log = logging.getLogger(__name__)


class RecordingReplay:
    """Replay a :class:`~pmr_stream.formats.recording.Recording` (or a file) as one stream.

    Args:
        recording: the recording, or a path to a ``.skeleton`` / ``.npz`` file.
        stream: stream id.
        loop: start over at the end (forever, until stopped).

    The stream announces the recording's mean frame rate (30 fps when it has fewer than
    two frames), ``source = "kinect:<file name>"``, ``max_persons`` = the recording's
    person slots and the recording's metadata. Media time is the recording's timestamps
    (shifted to start at 0 if they begin below 0; the shift is announced as
    ``metadata["pts_origin_s"]``).
    """

    live = False

    def __init__(
        self, recording: Recording | str | os.PathLike[str], stream: str = "kinect", loop: bool = False
    ) -> None:
        if isinstance(recording, Recording):
            self.recording = recording
            name = str(recording.metadata.get("source", "<memory>"))
        else:
            self.recording = load_recording(recording)
            name = Path(recording).name
        rec = self.recording
        if rec.layout != "ntu25":
            raise ValueError(f"{name}: only ntu25 recordings can be streamed, this one is {rec.layout}")
        if rec.num_frames == 0:
            raise ValueError(f"{name}: the recording has no frames")
        self.loop = loop
        self.fps = round(rec.fps, 6) if rec.fps else FPS  # 30.000000000000004 -> 30.0
        t0 = float(rec.timestamps[0])
        self._pts = rec.timestamps - t0 if t0 < 0 else rec.timestamps.copy()
        metadata = dict(rec.metadata)
        if t0 < 0:
            metadata["pts_origin_s"] = t0
        self.streams = [
            StreamInfo(
                stream, float(self.fps), f"kinect:{Path(name).name}", max(rec.num_persons, 1), metadata
            )
        ]
        self.stream = stream

    @property
    def drops(self) -> int:
        return 0

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        rec = self.recording
        period = float(self._pts[-1] - self._pts[0]) + 1.0 / self.fps  # one pass, seconds
        n = rec.num_frames
        k = 0  # pass
        while True:
            offset = k * period
            for t in range(n):
                if stop.is_set():
                    return
                persons = tuple(
                    PersonPose(p, rec.joints[t, p], rec.confidence[t, p])
                    for p in np.flatnonzero(rec.present[t]).tolist()
                )
                yield SourceFrame(self.stream, k * n + t, float(self._pts[t]) + offset, persons)
            if not self.loop:
                return
            k += 1

    def close(self) -> None:
        pass


__all__ = ["RecordingReplay"]
