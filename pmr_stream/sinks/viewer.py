"""Live viewer and video writer of skeleton streams (anonymized by default).

    pmr view --endpoint tcp://127.0.0.1:5556                      # a window if there is a display
    pmr view --endpoint tcp://127.0.0.1:5556 --output anon.mp4    # the writer: MP4 or GIF
    pmr view --endpoint tcp://127.0.0.1:5556 --raw-endpoint tcp://127.0.0.1:5555 --show-original

Frames are drawn as they arrive: each completed captured frame of an ``anon/`` stream
(all its persons) becomes one picture. The original is drawn beside it only when
``show_original`` is asked for (it subscribes to ``raw/`` then). Without a display
(``cv2.imshow`` would abort the process) the same pictures go to a video file.
The camera is fixed per stream from its first frame, widened so a person can move.
With ``show_original``, a raw stream is paired with its anonymized one through
``stream_ids`` (the anonymizer's key and declared-public ids, :mod:`pmr_stream.wire.privacy`):
on ``anon/`` a stream goes by its keyed pseudonym, not its raw id.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pmr_stream.render import Camera, RenderOptions, render_frame, write_video
from pmr_stream.wire.privacy import StreamIds
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd
from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)


def has_display() -> bool:
    """Whether a window can be opened (an X11 or Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass
class ViewerOptions:
    """``room_m``: how far (metres) around the first frame's person the fixed camera reaches.
    ``stream_ids``: how raw stream ids appear on ``anon/`` (to pair them with ``show_original``;
    ``None``: by equal ids, i.e. declared-public ones only)."""

    width: int = 640
    height: int = 480
    show_original: bool = False
    room_m: float = 0.8
    until_end: bool = False
    duration_s: float | None = None
    stream_ids: StreamIds | None = None

    def __post_init__(self) -> None:
        if self.width < 64 or self.height < 64:
            raise ValueError(f"viewer size must be at least 64x64, got {self.width}x{self.height}")


@dataclass
class _Panel:
    """The frame being collected and the fixed camera of one stream of one kind (raw/anon)."""

    camera: Camera | None = None
    frame: int | None = None
    persons: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)
    last: npt.NDArray[np.uint8] | None = None
    title: str = ""


class Viewer:
    """Turns received messages into pictures: ``(H, W, 3)`` RGB, or ``(H, 2W, 3)`` with the original."""

    def __init__(self, subscriber: Subscriber, options: ViewerOptions | None = None) -> None:
        self.sub = subscriber
        self.options = options or ViewerOptions()
        self.panels: dict[tuple[str, str], _Panel] = {}  # (kind, stream) -> panel
        self.ended: set[str] = set()
        self.seen: set[str] = set()
        self.pictures = 0

    def _render(self, kind: str, stream: str, panel: _Panel) -> npt.NDArray[np.uint8]:
        o = self.options
        joints = np.stack([panel.persons[p] for p in sorted(panel.persons)])  # (P, 25, 3)
        ropts = RenderOptions(width=o.width, height=o.height, title=f"{kind} {panel.title or stream}")
        if panel.camera is None:
            # one fixed camera per stream: the first frame widened by room_m on every side
            pad = np.array([[o.room_m, 0.0, o.room_m], [-o.room_m, 0.0, -o.room_m]], np.float32)
            pts = np.concatenate(
                [joints[None], joints[None] + pad[0], joints[None] + pad[1]]
            )  # (3, P, 25, 3)
            panel.camera = Camera.fit(pts, options=ropts)
        return render_frame(joints, panel.camera, ropts, frame_index=panel.frame)

    def _flush(self, kind: str, stream: str) -> npt.NDArray[np.uint8] | None:
        panel = self.panels.get((kind, stream))
        if panel is None or not panel.persons:
            return None
        panel.last = self._render(kind, stream, panel)
        panel.persons = {}
        if kind == "raw":
            return None
        if not self.options.show_original:
            return panel.last
        raw = self.panels.get(("raw", stream))
        left = raw.last if raw is not None and raw.last is not None else np.full_like(panel.last, 255)
        return np.concatenate([left, panel.last], axis=1)

    def add(self, r: Received) -> npt.NDArray[np.uint8] | None:
        """Take one message; return a picture when an anonymized frame is complete."""
        m = r.message
        kind = "anon" if r.topic.startswith("anon/") else "raw"
        stream = m.stream
        if kind == "raw" and self.options.stream_ids is not None:
            stream = self.options.stream_ids.anon(m.stream)  # paired under its anon/ id, titled by its own
        self.seen.add(stream)
        key = (kind, stream)
        panel = self.panels.get(key)
        if panel is None:
            panel = self.panels[key] = _Panel(title=m.stream)
        out = None
        if isinstance(m, FrameMessage | FrameGap):
            frame = m.frame
            if panel.frame is not None and frame != panel.frame:
                out = self._flush(kind, stream)
            panel.frame = frame
            if isinstance(m, FrameMessage):
                panel.persons[m.person] = np.asarray(m.joints, dtype=np.float32).copy()
        elif isinstance(m, StreamEnd):
            out = self._flush(kind, stream)
            if kind == "anon":
                self.ended.add(stream)
        return out

    def pictures_iter(self, stop: threading.Event | None = None) -> Iterator[npt.NDArray[np.uint8]]:
        """Pictures until ``stop``, the duration, or (``until_end``) every anonymized stream ended."""
        o = self.options
        t_end = None if o.duration_s is None else time.monotonic() + o.duration_s
        while not (stop is not None and stop.is_set()):
            if t_end is not None and time.monotonic() >= t_end:
                break
            r = self.sub.receive(0.1)
            if r is not None:
                pic = self.add(r)
                if pic is not None:
                    self.pictures += 1
                    yield pic
            anon_streams = {s for (k, s) in self.panels if k == "anon"}
            if o.until_end and anon_streams and anon_streams <= self.ended:
                break
        for kind, stream in list(self.panels):  # what was still being collected
            if kind == "anon":
                pic = self._flush(kind, stream)
                if pic is not None:
                    self.pictures += 1
                    yield pic


def run_viewer(
    viewer: Viewer,
    output: str | os.PathLike[str] | None,
    stop: threading.Event | None = None,
    fps: float = 30.0,
) -> Path | None:
    """Show the pictures in a window (a display and no ``output``) or write them to ``output``.

    Without a display and without ``output``, pictures go to ``out/viewer.mp4``.
    Returns the file written, or ``None`` for the window.
    """
    if output is None and has_display():
        import cv2

        name = "pmr-stream (q quits)"
        for pic in viewer.pictures_iter(stop):
            cv2.imshow(name, pic[:, :, ::-1])
            if cv2.waitKey(1) & 0xFF == ord("q"):
                break
        cv2.destroyAllWindows()
        return None
    if output is None:
        output = Path("out") / "viewer.mp4"
        log.warning("no display: writing the viewer's frames to %s", output)
    frames = viewer.pictures_iter(stop)
    first = next(frames, None)
    if first is None:
        return None

    def chained() -> Iterator[npt.NDArray[np.uint8]]:
        yield first
        yield from frames

    return write_video(chained(), output, fps=fps)
