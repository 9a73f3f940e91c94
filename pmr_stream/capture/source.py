"""What every capture source yields, and the protocol the producer runs them by.

A source (:mod:`.replay`, :mod:`.camera`, :mod:`.synthetic`) announces its streams as
:class:`StreamInfo` and yields :class:`SourceFrame` objects holding one :class:`PersonPose`
per person found; :class:`~pmr_stream.capture.producer.Producer` publishes them. This module
imports nothing of the sources or the producer, so both depend on it and not on each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class PersonPose:
    """One person in a frame: ``joints`` ``(25, 3)`` float32 metres (Kinect camera
    convention), ``confidence`` ``(25,)`` in [0, 1]."""

    person: int
    joints: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]


@dataclass(frozen=True)
class SourceFrame:
    """A captured frame of one stream.

    Attributes:
        stream: stream id.
        frame: index of the frame in the source (camera frame number, recording row).
        pts_s: media time, seconds from the stream's start.
        persons: the persons found (empty: nobody, published as a gap).
        t_mono_ns, t_wall_ns: capture time; ``None`` for file sources, stamped by the
            producer when the frame is released (after pacing).
        pose_s: seconds the pose estimator took for this frame (``None``: no estimator).
    """

    stream: str
    frame: int
    pts_s: float
    persons: tuple[PersonPose, ...]
    t_mono_ns: int | None = None
    t_wall_ns: int | None = None
    pose_s: float | None = None


@dataclass(frozen=True)
class StreamInfo:
    """What a stream announces: nominal ``fps``, ``source`` description, the number of
    person slots and JSON-like ``metadata``."""

    stream: str
    fps: float
    source: str
    max_persons: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)


class Source(Protocol):
    """What :class:`Producer` needs from a source."""

    #: the streams this source produces
    streams: list[StreamInfo]
    #: ``True``: frames arrive in real time (cameras); ``False``: the producer paces them
    live: bool

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        """Frames until the source ends or ``stop`` is set."""
        ...

    @property
    def drops(self) -> int:
        """Frames the source captured but dropped (newest frame wins)."""
        ...

    def close(self) -> None: ...


__all__ = ["PersonPose", "SourceFrame", "StreamInfo", "Source"]
