"""Source specs (``--source``): parse one, and open the source it names.

``replay:FILE`` replays a recording (``.skeleton``, our ``.npz`` or any format
:func:`~pmr_stream.formats.io.load_recording` reads; ``kinect:FILE`` is an alias kept for
existing command lines), ``video:FILE`` and ``webcam:INDEX`` run MediaPipe Pose on a camera or a
video file, ``synthetic`` / ``synthetic:N`` run the stand-in generator on N streams.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pmr_stream.capture.source import Source

#: The source kinds :func:`parse_source` accepts (``kinect`` is read as ``replay``).
SOURCE_KINDS: Final[tuple[str, ...]] = ("replay", "video", "webcam", "synthetic")
#: Other names of a kind, kept for existing command lines.
SOURCE_ALIASES: Final[dict[str, str]] = {"kinect": "replay"}
#: The accepted forms, for help texts and errors.
SOURCE_USAGE: Final[str] = (
    "replay:FILE (alias kinect:FILE), video:FILE, webcam:INDEX, synthetic or synthetic:N"
)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``: ``kind`` and its argument (file path, device index, stream count)."""

    kind: str
    arg: str

    @property
    def device(self) -> int:
        return int(self.arg)


def parse_source(spec: str) -> SourceSpec:
    """Parse ``replay:FILE`` (or ``kinect:FILE``), ``video:FILE``, ``webcam:0``, ``synthetic`` or ``synthetic:N``.

    Raises ``ValueError`` saying what is accepted.
    """
    kind, sep, arg = spec.partition(":")
    kind = SOURCE_ALIASES.get(kind, kind)
    usage = f"use {SOURCE_USAGE}"
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source {spec!r}; {usage}")
    if kind in ("replay", "video") and not arg:
        raise ValueError(f"source {spec!r} needs a file: {kind}:FILE")
    if kind == "webcam":
        arg = arg or "0"
        if not arg.isdigit():
            raise ValueError(f"source {spec!r}: the webcam is given by its index, e.g. webcam:0")
    if kind == "synthetic":
        arg = arg or "1"
        if not arg.isdigit() or not 1 <= int(arg) <= 1000:
            raise ValueError(f"source {spec!r}: synthetic:N needs N streams between 1 and 1000")
    del sep
    return SourceSpec(kind, arg)


def default_stream_id(spec: SourceSpec) -> str:
    """Stream id when none is given: the file's stem, ``webcam0``, ``syn``."""
    if spec.kind in ("replay", "video"):
        stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(spec.arg).stem)[:64].lstrip("._-")
        return stem or spec.kind
    if spec.kind == "webcam":
        return f"webcam{spec.arg}"
    return "syn"


def open_source(
    spec: SourceSpec | str,
    *,
    stream: str | None = None,
    speed: float = 1.0,
    loop: bool = False,
    smoothing: Any = None,
    mirrored: bool = False,
    seed: int = 0,
    persons: int = 1,
    occlusion_frames: int | None = None,
) -> Source:
    """Open the source named by ``spec`` (see :func:`parse_source`).

    ``stream``: stream id (default :func:`default_stream_id`; ``synthetic:N`` appends
    ``-0`` .. ``-N-1``). ``speed``: for video files, 1 = real time like a camera (the
    newest frame wins), 0 = every frame as fast as the pose estimator goes.
    ``loop``: replays and video files start over at the end. ``smoothing``: a
    :class:`~pmr_stream.capture.smoothing.OneEuroOptions` for camera sources.
    ``mirrored``: the camera image is mirrored (selfie view, Kinect colour).
    ``persons``: video/webcam: persons detected and tracked at most, person ids ``0 .. persons-1``
    (1: the single-person MediaPipe Pose; more: :mod:`~pmr_stream.capture.multipose`).
    ``occlusion_frames``: frames a tracked person may go unseen and keep their id (default
    :class:`~pmr_stream.capture.person_tracker.TrackerOptions`' ``max_missed``).
    """
    s = parse_source(spec) if isinstance(spec, str) else spec
    sid = stream or default_stream_id(s)
    if s.kind == "replay":
        from pmr_stream.capture.replay import RecordingReplay

        return RecordingReplay(s.arg, stream=sid, loop=loop)
    if s.kind in ("video", "webcam"):
        from pmr_stream.capture.camera import CameraOptions, CameraSource
        from pmr_stream.capture.person_tracker import TrackerOptions
        from pmr_stream.capture.pose import PoseOptions

        if type(persons) is not int or not 1 <= persons <= 64:
            raise ValueError(f"--persons must be an integer in 1..64, got {persons!r}")
        if occlusion_frames is not None and (type(occlusion_frames) is not int or occlusion_frames < 0):
            raise ValueError(f"--occlusion-frames must be an integer >= 0, got {occlusion_frames!r}")
        target: int | str = s.device if s.kind == "webcam" else s.arg
        d = TrackerOptions()
        tracker = d if occlusion_frames is None else \
            TrackerOptions(max_missed=occlusion_frames, reuse_after=max(occlusion_frames, d.reuse_after))  # fmt: skip
        pose = PoseOptions(mirrored=mirrored, max_persons=persons, tracker=tracker)
        opts = CameraOptions(speed=speed, smoothing=smoothing, pose=pose, loop=loop)
        return CameraSource(target, stream=sid, options=opts)
    from pmr_stream.capture.synthetic import SyntheticSource

    return SyntheticSource(int(s.arg), stream=sid, seed=seed)


# ----------------------------------------------------------------------------- the source flags


def add_source_arguments(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    default: str | None = None,
    default_stream: str | None = None,
    default_help: str = "the built-in demo recording",
) -> None:
    """The source flags of every command that opens a source (``pmr produce``, ``pmr stream``,
    ``pmr bench --end-to-end``): ``--source`` (required unless ``default``; ``default_help`` says
    what the default is), ``--stream``, ``--speed``, ``--loop``, the
    One-Euro smoothing, ``--mirrored``, ``--persons``, ``--occlusion-frames`` and ``--seed``. Open it with :func:`open_source_from_args`."""
    p.add_argument("--source", required=default is None, default=default,
                   help=SOURCE_USAGE + ("" if default is None else f" (default: {default_help})"))  # fmt: skip
    p.add_argument("--stream", default=default_stream,
                   help=f"stream id (default: {default_stream or 'the file stem, webcam0, syn'})")  # fmt: skip
    p.add_argument(
        "--speed", type=float, default=1.0, help="1 = real time, N = N times faster, 0 = as fast as possible"
    )
    p.add_argument("--loop", action="store_true", help="replay or video file: start over at the end")
    p.add_argument("--smooth", action="store_true", help="video/webcam: One-Euro smoothing of the joints")
    p.add_argument(
        "--smooth-min-cutoff", type=float, default=0.5, help="One-Euro min cut-off, Hz (default 0.5)"
    )
    p.add_argument("--smooth-beta", type=float, default=5.0, help="One-Euro beta, Hz per m/s (default 5)")
    p.add_argument(
        "--mirrored", action="store_true", help="video/webcam: the image is mirrored (selfie view)"
    )
    p.add_argument("--persons", type=int, default=1, metavar="N",
                   help="video/webcam: persons detected and tracked at most, ids 0..N-1 (default 1: MediaPipe's "
                        "single-person pose; N > 1: the Tasks PoseLandmarker and a tracker; each person adds "
                        "to the cost of a frame: python -m tools.bench_persons)")  # fmt: skip
    p.add_argument("--occlusion-frames", type=int, default=None, metavar="FRAMES",
                   help="video/webcam with --persons > 1: frames a person may go unseen and keep their id "
                        "(default 15)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="synthetic: generator seed")


def open_source_from_args(args: argparse.Namespace) -> Source:
    """The source named by :func:`add_source_arguments`'s flags, opened (:func:`open_source`)."""
    from pmr_stream.capture.smoothing import OneEuroOptions

    smoothing = (
        OneEuroOptions(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta) if args.smooth else None
    )
    return open_source(parse_source(args.source), stream=args.stream, speed=args.speed, loop=args.loop,
                       smoothing=smoothing, mirrored=args.mirrored, seed=args.seed, persons=args.persons,
                       occlusion_frames=args.occlusion_frames)  # fmt: skip


__all__ = [
    "SOURCE_KINDS",
    "SOURCE_ALIASES",
    "SOURCE_USAGE",
    "SourceSpec",
    "parse_source",
    "default_stream_id",
    "open_source",
    "add_source_arguments",
    "open_source_from_args",
]
