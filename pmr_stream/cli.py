"""The ``pmr`` command: parses flags and calls the library.

Subcommands import what they need lazily, so ``pmr --help`` is instant and the
runtime does not need the training stack.

    pmr visualize --input S001C001P001R001A001.skeleton --output clip.mp4
    pmr compare --original a.npz --anonymized b.npz --output side_by_side.mp4
    pmr convert --input clip.skeleton --output clip.npz
    pmr make-dataset --output data/standin.npz
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger("pmr_stream.cli")

FORMAT_CHOICES = ("skeleton", "npz", "sgn", "stgcn")


def _add_render_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    g.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    g.add_argument("--azimuth", type=float, default=0.0, help="view turned about the vertical axis, degrees")
    g.add_argument("--elevation", type=float, default=10.0, help="view elevation, degrees (default 10)")
    g.add_argument("--fps", type=float, default=None, help="output frame rate (default: the recording's, else 30)")
    g.add_argument("--show-confidence", action="store_true", help="draw joints by their confidence")


def _render_options(args: argparse.Namespace, title: str | None = None):  # type: ignore[no-untyped-def]
    from pmr_stream.sinks.render import RenderOptions

    return RenderOptions(
        width=args.width,
        height=args.height,
        azimuth_deg=args.azimuth,
        elevation_deg=args.elevation,
        show_confidence=args.show_confidence,
        title=title,
    )


def _select_persons(rec, person: int | None):  # type: ignore[no-untyped-def]
    """Joints (T, P, 25, 3), confidence and presence of one person or of all."""
    if person is None:
        return rec.joints, rec.confidence, rec.present
    if not 0 <= person < rec.num_persons:
        raise SystemExit(f"error: --person {person} out of range: the recording has {rec.num_persons} person(s)")
    sl = slice(person, person + 1)
    return rec.joints[:, sl], rec.confidence[:, sl], rec.present[:, sl]


def cmd_visualize(args: argparse.Namespace) -> int:
    from pmr_stream.formats.io import load_recording
    from pmr_stream.sinks.render import render_clip, write_video

    rec = load_recording(args.input, args.format)
    joints, conf, present = _select_persons(rec, args.person)
    opts = _render_options(args, title=args.title or Path(args.input).name)
    frames = render_clip(joints, opts, confidence=conf, present=present)
    fps = args.fps or rec.fps or 30.0
    out = write_video(frames, args.output, fps=fps)
    print(f"wrote {out} ({len(frames)} frames, {rec.num_persons} person(s), {fps:.1f} fps)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pmr_stream.formats.io import load_recording
    from pmr_stream.sinks.render import compare_clips, write_video

    a = load_recording(args.original, args.format)
    b = load_recording(args.anonymized, args.format)
    ja, ca, pa = _select_persons(a, args.person)
    jb, cb, pb = _select_persons(b, args.person)
    frames = compare_clips(
        ja, jb, labels=tuple(args.labels), options=_render_options(args),
        confidence_a=ca, confidence_b=cb, present_a=pa, present_b=pb,
    )  # fmt: skip
    fps = args.fps or a.fps or 30.0
    out = write_video(frames, args.output, fps=fps)
    print(f"wrote {out} ({len(frames)} frames side by side: {args.labels[0]} | {args.labels[1]})")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from pmr_stream.formats.io import convert

    rec = convert(args.input, args.output, args.input_format, args.output_format)
    print(f"wrote {args.output} ({rec.num_frames} frames, {rec.num_persons} person(s))")
    return 0


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from pmr_stream.synth import ACTIONS, StandinSpec, generate_dataset

    fmt = args.format or ("npz" if str(args.output).endswith(".npz") else "skeleton")
    spec = StandinSpec(
        performers=args.performers,
        replications=args.replications,
        cameras=tuple(args.cameras),
        seed=args.seed,
        actions=tuple(args.actions) if args.actions else tuple(ACTIONS),
    )
    out = generate_dataset(spec, args.output, fmt=fmt, progress=not args.quiet)
    print(f"wrote stand-in dataset to {out} ({fmt})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pmr", description="pmr-stream: anonymize skeleton motion with PMR.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("visualize", help="render a recording to MP4/GIF/PNG (headless)")
    p.add_argument("--input", required=True, help="recording: .skeleton, .npz, or an SGN/ST-GCN array file")
    p.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="input format (default: guessed)")
    p.add_argument("--output", required=True, help="output .mp4, .avi, .gif or .png (contact sheet)")
    p.add_argument("--person", type=int, default=None, help="render only this person (0-based); default all")
    p.add_argument("--title", default=None, help="caption (default: the input's file name)")
    _add_render_flags(p)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("compare", help="render two recordings side by side (original | anonymized)")
    p.add_argument("--original", required=True)
    p.add_argument("--anonymized", required=True)
    p.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="input format of both (default: guessed)")
    p.add_argument("--output", required=True, help="output .mp4, .avi, .gif or .png")
    p.add_argument("--labels", nargs=2, default=["original", "anonymized"], metavar=("LEFT", "RIGHT"))
    p.add_argument("--person", type=int, default=None)
    _add_render_flags(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("convert", help="convert between .skeleton, .npz, SGN and ST-GCN arrays")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--from", dest="input_format", choices=FORMAT_CHOICES, default=None)
    p.add_argument("--to", dest="output_format", choices=FORMAT_CHOICES, default=None)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("make-dataset", help="generate the deterministic stand-in motion dataset")
    p.add_argument("--output", required=True, help="a directory (.skeleton files) or a file ending in .npz")
    p.add_argument("--format", choices=("skeleton", "npz"), default=None, help="default: by --output")
    p.add_argument("--performers", type=int, default=40)
    p.add_argument("--replications", type=int, default=2)
    p.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    p.add_argument("--actions", nargs="+", default=None, help="action names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_make_dataset)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        # bad input: one clear line naming what is wrong, no traceback
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"pmr {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser"]
