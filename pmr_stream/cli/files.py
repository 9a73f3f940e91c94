"""File commands: ``pmr visualize``, ``compare``, ``convert``, ``make-dataset`` and ``anonymize``
(offline, whole recordings)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pmr_stream.anonymizer.options import BONES, BONES_HELP, DEFAULT_BONES
from pmr_stream.backends.options import add_model_arguments
from pmr_stream.cli.anonymize_dataset import add_dataset_arguments
from pmr_stream.cli.common import FORMAT_CHOICES, OUTPUT_FORMAT_CHOICES, add_render_flags, render_options
from pmr_stream.formats.bvh import add_bvh_arguments


def cmd_visualize(args: argparse.Namespace) -> int:
    from pmr_stream.formats.io import load_recording
    from pmr_stream.render import render_clip, select_persons, write_video

    rec = load_recording(args.input, args.format)
    joints, conf, present = select_persons(rec, args.person)
    opts = render_options(args, title=args.title or Path(args.input).name)
    frames = render_clip(joints, opts, confidence=conf, present=present)
    fps = args.fps or rec.fps or 30.0
    out = write_video(frames, args.output, fps=fps)
    print(f"wrote {out} ({len(frames)} frames, {rec.num_persons} person(s), {fps:.1f} fps)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from pmr_stream.render import compare_recordings

    video = compare_recordings(
        args.original, args.anonymized, args.output, render_options(args),
        labels=tuple(args.labels), person=args.person, fmt=args.format, fps=args.fps,
    )  # fmt: skip
    print(f"wrote {video.path} ({video.frames} frames side by side: {args.labels[0]} | {args.labels[1]})")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from pmr_stream.formats.files import check_output_file
    from pmr_stream.formats.io import load_recording, output_format, save_recording

    if output_format(args.output, args.output_format) == "bvh":
        return _convert_bvh(args)
    given = [f"--{n}" for n in ("person", "dummy", "unit") if getattr(args, n) is not None]
    if given:
        raise ValueError(f"{', '.join(given)}: only for BVH output (--to bvh or a .bvh output)")
    check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input])  # before reading anything
    rec = load_recording(args.input, args.input_format)
    written = save_recording(rec, args.output, args.output_format, overwrite=args.overwrite)
    print(f"wrote {written.path} ({written.frames} frames, {written.persons} person(s))")
    return 0


def _convert_bvh(args: argparse.Namespace) -> int:
    """``pmr convert`` to BVH: a file per person (or ``--person``), the skeleton of ``--dummy``
    or of the motion itself."""
    import sys

    from pmr_stream.formats.bvh import BvhOptions, bvh_paths, check_bvh, write_bvh_files
    from pmr_stream.formats.files import check_output_file
    from pmr_stream.formats.io import load_recording

    opts = BvhOptions(unit=args.unit or "cm")
    check_output_file(args.output, overwrite=True, inputs=[args.input])  # its folder, before reading
    rec = load_recording(args.input, args.input_format)
    persons = check_bvh(rec, args.person)
    for path in bvh_paths(args.output, persons):
        check_output_file(path, overwrite=args.overwrite, inputs=[args.input])
    body = None
    if args.dummy is not None:
        from pmr_stream.assets import DEFAULT_DUMMY
        from pmr_stream.backends.base import load_dummy_window

        body = load_dummy_window(DEFAULT_DUMMY if args.dummy == "shipped" else args.dummy)  # (75, 25, 3) m
    written = write_bvh_files(
        rec, args.output, person=args.person, body=body, opts=opts, overwrite=args.overwrite
    )
    skeleton = (
        ("the shipped dummy's" if args.dummy == "shipped" else f"dummy {args.dummy}'s")
        if body is not None
        else "the motion's own"
    )
    for w in written:
        held = f", {w.held} absent frame(s) hold the last pose" if w.held else ""
        print(f"wrote {w.path} (person {w.person}: {w.frames} frames at {w.fps:.1f} fps{held}; "
              f"{skeleton} skeleton, {opts.unit})")  # fmt: skip
    if rec.metadata.get("anonymized") is not True:
        print(f"note: {args.input} is not an anonymized recording: the BVH carries this person's motion"
              + ("" if body is not None else " and bone lengths (--dummy takes the dummy's)"), file=sys.stderr)  # fmt: skip
    return 0


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from pmr_stream.synth import ACTION_NAMES, StandinSpec, generate_dataset

    fmt = args.format or ("npz" if str(args.output).endswith(".npz") else "skeleton")
    spec = StandinSpec(
        performers=args.performers,
        replications=args.replications,
        cameras=tuple(args.cameras),
        seed=args.seed,
        actions=tuple(args.actions) if args.actions else ACTION_NAMES,
    )
    out = generate_dataset(
        spec, args.output, fmt="npz" if fmt == "npz" else "skeleton", progress=not args.quiet
    )
    print(f"wrote stand-in dataset to {out} ({fmt})")
    return 0


def cmd_anonymize(args: argparse.Namespace) -> int:
    from pmr_stream.dataset.inputs import is_dataset_input

    if is_dataset_input(args.input):
        from pmr_stream.cli.anonymize_dataset import cmd_anonymize_dataset

        return cmd_anonymize_dataset(args)
    args.input = args.input[0]  # one file: written to exactly --output, as always
    from pmr_stream.formats.files import check_output_file
    from pmr_stream.formats.io import check_fits, guess_format, load_recording, save_recording

    # paths and the output's capacity are checked before the network (and torch) is loaded
    check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input])
    in_fmt = args.format or guess_format(args.input)
    out_fmt = args.output_format
    if out_fmt is None and Path(args.output).suffix.lower() == ".npy" and in_fmt in ("sgn", "stgcn"):
        out_fmt = in_fmt  # a new .npy takes the input's array kind
    rec = load_recording(args.input, in_fmt)
    out_fmt, _ = check_fits(rec, args.output, out_fmt)
    from pmr_stream.offline import (
        AnonymizeOptions,
        anonymize_recording,
        default_window_fn,
    )

    AnonymizeOptions(
        mode=args.mode, stride=args.stride
    )  # a bad --mode or --stride fails before the model loads
    window_fn, model_id = default_window_fn(
        args.model_path, args.dummy, device=args.device, privacy=args.privacy, backend=args.backend or "torch"
    )
    opts = AnonymizeOptions(
        mode=args.mode, stride=args.stride, bones=args.bones
    )  # "dummy": the backend's dummy
    out = anonymize_recording(rec, window_fn, opts, model_id=model_id)
    written = save_recording(out, args.output, out_fmt, overwrite=args.overwrite)
    print(
        f"wrote {written.path}: {written.frames} frames, {written.persons} person(s) anonymized with {model_id}"
        + (
            f" (privacy {window_fn.source.privacy}, mode {args.mode})"
            if window_fn.source.privacy
            else f" (mode {args.mode})"
        )
    )
    return 0


def register(sub: Any) -> None:
    """Add the file commands to the ``pmr`` subparsers."""
    p = sub.add_parser("visualize", help="render a recording to MP4/GIF/PNG (headless)")
    p.add_argument("--input", required=True, help="recording: .skeleton, .npz, or an SGN/ST-GCN array file")
    p.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="input format (default: guessed)")
    p.add_argument("--output", required=True, help="output .mp4, .avi, .gif or .png (contact sheet)")
    p.add_argument("--person", type=int, default=None, help="render only this person (0-based); default all")
    p.add_argument("--title", default=None, help="caption (default: the input's file name)")
    add_render_flags(p)
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("compare", help="render two recordings side by side (original | anonymized)")
    p.add_argument("--original", required=True, help="the left recording (any format --format reads)")
    p.add_argument("--anonymized", required=True, help="the right recording")
    p.add_argument(
        "--format", choices=FORMAT_CHOICES, default=None, help="input format of both (default: guessed)"
    )
    p.add_argument("--output", required=True, help="output .mp4, .avi, .gif or .png")
    p.add_argument("--labels", nargs=2, default=["original", "anonymized"], metavar=("LEFT", "RIGHT"),
                   help="captions of the two panels (default: original anonymized)")  # fmt: skip
    p.add_argument("--person", type=int, default=None, help="draw only this person (0-based); default all")
    add_render_flags(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("convert", help="convert between .skeleton, .npz, SGN and ST-GCN arrays; export BVH")
    p.add_argument("--input", required=True, help="recording: .skeleton, .npz, or an SGN/ST-GCN array file")
    p.add_argument("--output", required=True, help="output file; its format by its extension unless --to")
    p.add_argument("--from", dest="input_format", choices=FORMAT_CHOICES, default=None,
                   help="input format (default: guessed from the file)")  # fmt: skip
    p.add_argument("--to", dest="output_format", choices=OUTPUT_FORMAT_CHOICES, default=None,
                   help="output format (default: by the output's extension; bvh: a Biovision "
                   "Hierarchy file per person, for Blender, Unity, MotionBuilder)")  # fmt: skip
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file (never the input itself); written atomically",
    )
    add_bvh_arguments(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("make-dataset", help="generate the deterministic stand-in motion dataset")
    p.add_argument("--output", required=True, help="a directory (.skeleton files) or a file ending in .npz")
    p.add_argument("--format", choices=("skeleton", "npz"), default=None, help="default: by --output")
    p.add_argument("--performers", type=int, default=40, help="performers of the cast (default 40)")
    p.add_argument(
        "--replications", type=int, default=2, help="takes of each action per performer (default 2)"
    )
    p.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3],
                   help="cameras each take is seen from (default 1 2 3; cross-view trains on 2, 3)")  # fmt: skip
    p.add_argument("--actions", nargs="+", default=None, help="action names (default: all)")
    p.add_argument("--seed", type=int, default=0, help="generator seed: the same seed, the same dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_make_dataset)

    p = sub.add_parser(
        "anonymize", help="anonymize a recording, or a whole dataset, offline (every person, any length)"
    )
    p.add_argument("--input", required=True, nargs="+", metavar="INPUT",
                   help=".skeleton, .npz, or an SGN/ST-GCN array file; or a dataset: a folder (searched "
                   "recursively), a quoted glob ('data/**/*.skeleton') or several files")  # fmt: skip
    p.add_argument(
        "--output",
        required=True,
        help="output file, written atomically; its format by its extension (a new .npy: the "
        "input's array kind) unless --output-format; a format that cannot hold every person "
        "is refused. For a dataset: the folder the input tree is mirrored into (names: --names), "
        "with manifest.json; existing outputs are skipped (an interrupted run resumes) unless --overwrite",
    )
    p.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="input format (default: guessed)")
    p.add_argument("--output-format", choices=FORMAT_CHOICES, default=None, help="default: by the extension")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output file (never the input itself)"
    )
    p.add_argument(
        "--mode",
        default="last",
        metavar="MODE",
        help="last (default): every frame read as the streaming service reads it (the end of the "
        "window ending at it; same output as the service's default policy); delay:N: as the "
        "service's --policy delay:N; centre: one window per frame, read at its centre; "
        "blend: windows --stride frames apart, Hann-blended (fewer network calls)",
    )
    p.add_argument(
        "--stride", type=int, default=25, help="blend mode: frames between window starts (default 25)"
    )
    add_model_arguments(p)
    p.add_argument("--bones", choices=BONES, default=DEFAULT_BONES, help=BONES_HELP)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--backend", default=None, help="torch (the default for one file), onnxruntime, "
                   "tensorrt or auto (the default for a dataset: the fastest here, onnxruntime on CPU)")  # fmt: skip
    add_dataset_arguments(p)
    p.set_defaults(func=cmd_anonymize)
