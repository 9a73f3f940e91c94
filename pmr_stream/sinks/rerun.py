"""The rerun sink: skeletons from the wire to a rerun viewer (spawned or at a URL) or an ``.rrd`` file.

    pmr view --rerun                                   # spawn a rerun viewer (needs a display)
    pmr view --rerun rerun+http://127.0.0.1:9876/proxy # a viewer (or ``rerun --serve-grpc``) running elsewhere
    pmr view --rrd out/anon.rrd                        # a recording, opened later with ``rerun out/anon.rrd``

What is logged, per received :class:`~pmr_stream.wire.schema.FrameMessage` (one person of one frame):

``<kind>/<stream>/person<k>/joints``
    ``Points3D``: the ``(25, 3)`` joints in metres (Kinect camera convention: y up), in the layout's
    joint order (:data:`pmr_stream.skeleton.NTU_JOINT_NAMES`). Not named in the viewer: rerun-sdk 0.23.1's
    ``AnnotationContext`` fails under numpy 1.x (``np.asarray(copy=...)``), which mediapipe pins.
``<kind>/<stream>/person<k>/bones``
    ``LineStrips3D``: one two-point strip per bone of the layout (:attr:`pmr_stream.skeleton.Layout.bones`,
    child then parent), the same order in every frame.

``kind`` is ``anon`` or ``raw`` (the topic's prefix), ``stream`` the topic's stream id (a keyed pseudonym
on ``anon/``), ``k`` the message's person id. Every entry sits on two timelines: ``capture_time`` (the
message's ``t_wall_ns``, the producer's wall clock at capture) and ``frame`` (the message's frame number).
A person missing from a completed frame (and everyone on a :class:`~pmr_stream.wire.schema.FrameGap`) is
cleared at that frame, so the viewer never shows a pose that was not captured; the last frame of an ended
stream stays. The world is declared right-handed, y up.

With ``overlay_video`` (``--overlay-video FILE``: the file a ``video:`` stream was read from, on this host),
the frame of each frame number goes to ``camera/image`` (JPEG) under a static pinhole ``camera`` at the
origin with the producer's field of view (:mod:`pmr_stream.sinks.video_frames`): the 3D view shows the
skeletons in front of the image, the ``camera`` view the image with the skeletons projected onto it.

``rerun`` (the ``rerun-sdk`` package, the ``rerun`` extra) is imported only when a sink is opened; without
it :class:`RerunUnavailable` says how to install it. With both a viewer and an ``.rrd`` file every entry
goes to both (two recording streams of one recording id: rerun-sdk 0.23 gives a stream one sink).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

import numpy as np

from pmr_stream.sinks.video_frames import VideoFrames
from pmr_stream.skeleton import get_layout
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart

if TYPE_CHECKING:
    from pmr_stream.wire.subscriber import Received, Subscriber

log = logging.getLogger(__name__)

#: The two timelines every entry is logged on.
CAPTURE_TIMELINE: Final[str] = "capture_time"
FRAME_TIMELINE: Final[str] = "frame"
#: Colours (RGB) of the two kinds.
COLORS: Final[dict[str, tuple[int, int, int]]] = {"anon": (230, 120, 30), "raw": (90, 130, 200)}
#: The entity of the overlay's pinhole camera (its image at ``camera/image``).
OVERLAY_CAMERA: Final[str] = "camera"
#: Where ``rerun.spawn`` starts its viewer (rerun's own default port).
DEFAULT_SPAWN_PORT: Final[int] = 9876
_INSTALL_HINT: Final[str] = "install the rerun extra: pip install 'pmr-stream[rerun]' (rerun-sdk==0.23.1)"


class RerunUnavailable(RuntimeError):
    """rerun cannot be used here: the SDK is not installed, no viewer binary, no display, or no viewer at the URL."""


def import_rerun() -> ModuleType:
    """The ``rerun`` module, or :class:`RerunUnavailable` naming the extra to install."""
    try:
        import rerun
    except ImportError as exc:  # also a broken install (e.g. a pyarrow built for another numpy)
        raise RerunUnavailable(
            f"--rerun/--rrd need rerun-sdk, which does not import ({exc}): {_INSTALL_HINT}"
        ) from None
    return rerun


def entity_path(kind: str, stream: str, person: int) -> str:
    """``<kind>/<stream>/person<k>``: the entity of one person of one stream (stream ids need no escaping)."""
    return f"{kind}/{stream}/person{person}"


def grpc_url(url: str) -> str:
    """A viewer's gRPC URL: ``rerun+http(s)://HOST:PORT/proxy`` as given, or ``HOST:PORT`` completed to it."""
    if "://" not in url:
        host, sep, port = url.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"--rerun {url!r}: expected rerun+http://HOST:PORT/proxy or HOST:PORT")
        return f"rerun+http://{host}:{port}/proxy"
    u = urlparse(url)
    if u.scheme not in ("rerun+http", "rerun+https", "rerun") or not u.hostname:
        raise ValueError(
            f"--rerun {url!r}: expected rerun+http://HOST:PORT/proxy (rerun-sdk 0.23 speaks gRPC)"
        )
    return url


def viewer_binary() -> str | None:
    """The ``rerun`` viewer executable: on ``PATH``, else beside this Python (an unactivated venv)."""
    found = shutil.which("rerun")
    if found is None:
        beside = Path(sys.executable).parent / "rerun"
        found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
    return found


def _check_reachable(url: str, timeout_s: float = 2.0) -> None:
    u = urlparse(url)
    port = u.port or (443 if u.scheme.endswith("s") else 9876)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RerunUnavailable(f"--rerun {url}: no rerun viewer there ({exc.strerror or exc}); start one with "
                               f"`rerun --port {port}` (or `rerun --serve-grpc --port {port}` headless)") from None  # fmt: skip


@dataclass(frozen=True)
class RerunOptions:
    """Where the rerun sink logs to.

    ``spawn``: start a rerun viewer (needs a display and the ``rerun`` binary) on ``spawn_port``, or
    reuse one already listening there. ``url``: connect to a running viewer or gRPC server instead.
    ``rrd``: also (or only) save the recording to this ``.rrd`` file. ``joint_radius_m``,
    ``bone_radius_m``: drawing sizes in metres. ``recording_id``: the recording's id (``None``: fresh).
    ``overlay_video``: the file a ``video:`` stream was read from: its frames go to ``camera/image``
    under a pinhole ``camera`` of ``overlay_fov_deg`` (the producer's), so the skeletons show on the
    image; ``overlay_mirrored``: the producer ran with ``--mirrored`` (frames flipped to match).
    """

    spawn: bool = False
    url: str | None = None
    rrd: Path | None = None
    spawn_port: int = DEFAULT_SPAWN_PORT
    application_id: str = "pmr-stream"
    recording_id: str | None = None
    joint_radius_m: float = 0.025
    bone_radius_m: float = 0.012
    overlay_video: Path | None = None
    overlay_fov_deg: float = 70.0
    overlay_mirrored: bool = False

    def __post_init__(self) -> None:
        if self.spawn and self.url is not None:
            raise ValueError("rerun: spawn a viewer or connect to a URL, not both")
        if not (self.spawn or self.url or self.rrd):
            raise ValueError("rerun: nothing to log to (spawn a viewer, give a URL or an .rrd file)")
        if self.rrd is not None and Path(self.rrd).suffix != ".rrd":
            raise ValueError(f"--rrd {self.rrd}: the file name must end in .rrd")
        if self.url is not None:
            object.__setattr__(self, "url", grpc_url(self.url))
        if not 0 < self.spawn_port < 65536:
            raise ValueError(f"--rerun-port must be a TCP port, got {self.spawn_port}")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RerunOptions | None:
        """The options of ``--rerun [URL]``/``--rrd FILE``/``--rerun-port`` (``None``: neither flag given)."""
        if args.rerun is None and args.rrd is None:
            if args.overlay_video:
                raise ValueError("--overlay-video goes with --rerun or --rrd (the overlay is drawn by rerun)")
            return None
        return cls(spawn=args.rerun == "", url=args.rerun or None, rrd=Path(args.rrd) if args.rrd else None,
                   spawn_port=args.rerun_port, overlay_video=Path(args.overlay_video) if args.overlay_video else None,
                   overlay_fov_deg=args.overlay_fov, overlay_mirrored=args.overlay_mirrored)  # fmt: skip


def add_rerun_arguments(p: argparse.ArgumentParser, default_fov_deg: float = 70.0) -> None:
    """``--rerun [URL]``, ``--rrd FILE``, ``--rerun-port`` and the ``--overlay-*`` flags of :class:`RerunOptions`.

    ``default_fov_deg``: the producer's pinhole field of view (the CLI passes the pose options' own).
    """
    g = p.add_argument_group("rerun (needs the rerun extra: pip install 'pmr-stream[rerun]')")
    g.add_argument("--rerun", nargs="?", const="", default=None, metavar="URL",
                   help="log the skeletons to rerun: without URL spawn a viewer (needs a display), with "
                        "rerun+http://HOST:PORT/proxy (or HOST:PORT) connect to a running one")  # fmt: skip
    g.add_argument("--rrd", default=None, metavar="FILE",
                   help="save the rerun recording to FILE.rrd (alone or beside --rerun); open it with `rerun FILE.rrd`")  # fmt: skip
    g.add_argument("--rerun-port", type=int, default=DEFAULT_SPAWN_PORT, metavar="PORT",
                   help=f"with --rerun and no URL: the spawned viewer's port (default {DEFAULT_SPAWN_PORT})")  # fmt: skip
    g.add_argument("--overlay-video", default=None, metavar="FILE",
                   help="the video file a video: stream was read from (on this host): its frames are logged "
                        "under camera/ with the producer's pinhole, the skeletons drawn on them (not for webcams)")  # fmt: skip
    g.add_argument("--overlay-fov", type=float, default=default_fov_deg, metavar="DEG",
                   help=f"with --overlay-video: the producer's horizontal field of view (default {default_fov_deg:g})")  # fmt: skip
    g.add_argument("--overlay-mirrored", action="store_true",
                   help="with --overlay-video: the producer ran with --mirrored (frames are flipped to match)")  # fmt: skip


@dataclass
class _Track:
    """The frame being collected of one topic, and who was in the last completed one."""

    frame: int | None = None
    t_wall_ns: int = 0
    now: set[int] = field(default_factory=set)
    before: set[int] = field(default_factory=set)


@dataclass
class RerunStats:
    """What the sink logged: person-frames per kind, gaps, clears (vanished persons), camera images, streams."""

    frames: dict[str, int] = field(default_factory=lambda: {"anon": 0, "raw": 0})
    gaps: int = 0
    cleared: int = 0
    images: int = 0
    streams: set[str] = field(default_factory=set)


class RerunSink:
    """Logs received messages to rerun (see the module's docstring for what goes where).

    A context manager: :meth:`close` flushes every target (the ``.rrd`` file is complete after it).
    Raises :class:`RerunUnavailable` when a target cannot be had (nothing is logged then).
    """

    def __init__(self, options: RerunOptions) -> None:
        self.options = options
        rr = self._rr = import_rerun()
        self.stats = RerunStats()
        self._tracks: dict[str, _Track] = {}
        self._video: VideoFrames | None = None
        self._imaged: set[int] = set()  # frame numbers whose camera image is logged
        if options.overlay_video is not None:  # before any viewer or file: a bad video fails at once
            self._video = VideoFrames(
                options.overlay_video, options.overlay_fov_deg, options.overlay_mirrored
            )
        self._recs: list[Any] = []
        try:
            rid = options.recording_id or str(uuid.uuid4())
            if options.spawn:
                if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
                    raise RerunUnavailable("--rerun without a URL spawns a viewer window, but there is no display "
                                           "(DISPLAY/WAYLAND_DISPLAY unset): give the URL of a running viewer, "
                                           "or save with --rrd FILE and open it where there is a screen")  # fmt: skip
                exe = viewer_binary()
                if exe is None:
                    raise RerunUnavailable(f"--rerun: no `rerun` viewer binary on PATH nor beside {sys.executable}: "
                                           f"{_INSTALL_HINT}")  # fmt: skip
                folder = str(Path(exe).parent)
                if shutil.which("rerun") is None:  # rerun.spawn looks the binary up on PATH
                    os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
                rec = rr.RecordingStream(options.application_id, recording_id=rid)
                rec.spawn(port=options.spawn_port)
                self._recs.append(rec)
                log.info("rerun: spawned (or reused) a viewer on port %d", options.spawn_port)
            elif options.url is not None:
                _check_reachable(options.url)
                rec = rr.RecordingStream(options.application_id, recording_id=rid)
                rec.connect_grpc(options.url)
                self._recs.append(rec)
                log.info("rerun: connected to %s", options.url)
            if options.rrd is not None:
                Path(options.rrd).parent.mkdir(parents=True, exist_ok=True)
                rec = rr.RecordingStream(options.application_id, recording_id=rid)
                rec.save(options.rrd)
                self._recs.append(rec)
        except BaseException:
            self.close()
            raise
        self._log("", rr.ViewCoordinates.RIGHT_HAND_Y_UP, static=True)
        if self._video is not None:
            self._overlay_camera(self._video)

    def _overlay_camera(self, video: VideoFrames) -> None:
        """The producer's pinhole at ``camera`` (axes: x left, y up, z forward) and a layout showing it."""
        rr = self._rr
        import rerun.blueprint as rrb

        pinhole = rr.Pinhole(focal_length=video.focal_px, width=video.width, height=video.height,
                             camera_xyz=rr.ViewCoordinates.LUF, image_plane_distance=1.0)  # fmt: skip
        self._log(OVERLAY_CAMERA, pinhole, static=True)
        layout = rrb.Blueprint(rrb.Horizontal(
            rrb.Spatial3DView(origin="/", name="3D"),
            rrb.Spatial2DView(origin=f"/{OVERLAY_CAMERA}", name="camera",
                              contents=[f"/{OVERLAY_CAMERA}/**", "/anon/**", "/raw/**"]),
        ))  # fmt: skip
        for rec in self._recs:
            rec.send_blueprint(layout)

    def _image(self, frame: int) -> None:
        """The camera image of ``frame`` (once; the time is already set), when overlaying a video."""
        if self._video is None or frame in self._imaged:
            return
        if len(self._imaged) >= 4096:  # frames only move forward: keep the recent ones
            self._imaged = {f for f in self._imaged if f > frame - 2048}
        self._imaged.add(frame)
        jpeg = self._video.jpeg(frame)
        if jpeg is None:
            log.warning("--overlay-video %s has no frame %d", self._video.path, frame)
            return
        self._log(f"{OVERLAY_CAMERA}/image", self._rr.EncodedImage(contents=jpeg, media_type="image/jpeg"))
        self.stats.images += 1

    # ------------------------------------------------------------------ logging

    def _log(self, path: str, *entities: Any, static: bool = False) -> None:
        for rec in self._recs:
            rec.log(path or "/", *entities, static=static)

    def _set_time(self, frame: int, t_wall_ns: int) -> None:
        stamp = np.datetime64(int(t_wall_ns), "ns")
        for rec in self._recs:
            rec.set_time(FRAME_TIMELINE, sequence=int(frame))
            rec.set_time(CAPTURE_TIMELINE, timestamp=stamp)

    def _finish(self, kind: str, stream: str, track: _Track) -> None:
        """The collected frame is complete: clear the persons of the frame before who are not in it."""
        if track.frame is None:
            return
        vanished = sorted(track.before - track.now)
        if vanished:
            self._set_time(track.frame, track.t_wall_ns)
            for p in vanished:
                self._log(entity_path(kind, stream, p), self._rr.Clear(recursive=True))
            self.stats.cleared += len(vanished)
        track.before, track.now = track.now, set()

    def log_frame(self, kind: str, m: FrameMessage) -> None:
        """One person of one frame: its joints and bones at the frame's capture time and number."""
        rr = self._rr
        layout = get_layout(m.layout)
        track = self._track(kind, m.stream, m.frame, m.t_wall_ns)
        joints = np.asarray(m.joints, dtype=np.float32)  # (J, 3) metres
        bones = np.asarray(layout.bones, dtype=np.intp)  # (B, 2) child, parent
        strips = joints[bones]  # (B, 2, 3)
        path = entity_path(kind, m.stream, m.person)
        color = COLORS.get(kind, (200, 200, 200))
        self._set_time(m.frame, m.t_wall_ns)
        self._log(f"{path}/joints", rr.Points3D(joints, radii=self.options.joint_radius_m, colors=color))
        self._log(f"{path}/bones", rr.LineStrips3D(strips, radii=self.options.bone_radius_m, colors=color))
        track.now.add(m.person)
        self.stats.frames[kind] = self.stats.frames.get(kind, 0) + 1

    def _track(self, kind: str, stream: str, frame: int, t_wall_ns: int) -> _Track:
        key = f"{kind}/{stream}"
        track = self._tracks.setdefault(key, _Track())
        self.stats.streams.add(key)
        if track.frame != frame:
            self._finish(kind, stream, track)
            track.frame, track.t_wall_ns = frame, t_wall_ns
            if self._video is not None:
                self._set_time(frame, t_wall_ns)
                self._image(frame)
        return track

    def log(self, r: Received) -> None:
        """Log one received message (starts only name the stream; ends complete its last frame)."""
        self.add(r.topic, r.message)

    def add(self, topic: str, m: Any) -> None:
        """Log one message of ``topic`` (``raw/<stream>`` or ``anon/<stream>``)."""
        kind = "anon" if topic.startswith("anon/") else "raw"
        if isinstance(m, FrameMessage):
            self.log_frame(kind, m)
        elif isinstance(m, FrameGap):
            track = self._track(kind, m.stream, m.frame, m.t_wall_ns)
            self._finish(kind, m.stream, track)  # nobody in this frame: everyone of the frame before goes
            self.stats.gaps += 1
        elif isinstance(m, StreamEnd):
            last = self._tracks.get(f"{kind}/{m.stream}")
            if last is not None:
                self._finish(kind, m.stream, last)
        elif isinstance(m, StreamStart):
            self.stats.streams.add(f"{kind}/{m.stream}")

    def close(self) -> None:
        """Flush every target (the ``.rrd`` file is complete afterwards) and close the overlay's video."""
        if self._video is not None:
            self._video.close()
            self._video = None
        for rec in self._recs:
            rec.flush(blocking=True)
            rec.disconnect()
        self._recs = []

    def __enter__(self) -> RerunSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_rerun(
    sub: Subscriber,
    sink: RerunSink,
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    until_end: bool = False,
    wait_kind: str = "anon",
) -> RerunStats:
    """Log what ``sub`` receives until ``stop``, ``duration_s`` or (``until_end``) the streams ended.

    ``until_end`` waits for the streams of ``wait_kind`` (``"anon"`` when ``anon/`` is subscribed: the raw
    ones end first; else ``"raw"``): it stops once one such stream was seen and all of them ended.
    """
    seen: set[str] = set()
    ended: set[str] = set()
    t_end = None if duration_s is None else time.monotonic() + duration_s
    while not (stop is not None and stop.is_set()):
        if t_end is not None and time.monotonic() >= t_end:
            break
        r = sub.receive(0.1)
        if r is not None:
            sink.log(r)
            if r.topic.startswith(wait_kind + "/"):
                seen.add(r.topic)
                if isinstance(r.message, StreamEnd):
                    ended.add(r.topic)
        if until_end and seen and seen <= ended:
            break
    for r in sub.drain():
        sink.log(r)
    return sink.stats


__all__ = ["CAPTURE_TIMELINE", "FRAME_TIMELINE", "OVERLAY_CAMERA", "RerunOptions", "RerunSink", "RerunStats", "RerunUnavailable",
           "add_rerun_arguments", "entity_path", "grpc_url", "import_rerun", "run_rerun", "viewer_binary"]  # fmt: skip
