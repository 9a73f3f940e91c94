"""The ``pmr`` command: parses flags and calls the library.

Subcommands import what they need lazily, so ``pmr --help`` is instant and the
runtime does not need the training stack.

    pmr visualize --input S001C001P001R001A001.skeleton --output clip.mp4
    pmr compare --original a.npz --anonymized b.npz --output side_by_side.mp4
    pmr convert --input clip.skeleton --output clip.npz
    pmr make-dataset --output data/standin.npz
    pmr produce --source kinect:S001C001P001R001A001.skeleton --endpoint tcp://127.0.0.1:5555
    pmr record --endpoint tcp://127.0.0.1:5555 --topic raw/ --output out.npz
    pmr probe --endpoint tcp://127.0.0.1:5555
    pmr keys --output keys --name producer
    pmr export --format onnx --output engines/build/ --precision fp32
    pmr bench --backend onnxruntime torch --batch-sizes 1,8,64,256 --json out/bench.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmr_stream.capture.sources import SOURCE_USAGE
from pmr_stream.config import add_privacy_argument

if TYPE_CHECKING:  # the socket stack is imported lazily by the commands that need it
    from pmr_stream.wire.sockets import SocketOptions

log = logging.getLogger("pmr_stream.cli")

FORMAT_CHOICES = ("skeleton", "npz", "sgn", "stgcn")


def _add_render_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--width", type=int, default=640, help="frame width in pixels (default 640)")
    g.add_argument("--height", type=int, default=480, help="frame height in pixels (default 480)")
    g.add_argument("--azimuth", type=float, default=0.0, help="view turned about the vertical axis, degrees")
    g.add_argument("--elevation", type=float, default=10.0, help="view elevation, degrees (default 10)")
    g.add_argument(
        "--fps", type=float, default=None, help="output frame rate (default: the recording's, else 30)"
    )
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
        raise SystemExit(
            f"error: --person {person} out of range: the recording has {rec.num_persons} person(s)"
        )
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
    from pmr_stream.formats.files import check_output_file
    from pmr_stream.formats.io import load_recording, save_recording

    check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input])  # before reading anything
    rec = load_recording(args.input, args.input_format)
    written = save_recording(rec, args.output, args.output_format, overwrite=args.overwrite)
    print(f"wrote {written.path} ({written.frames} frames, {written.persons} person(s))")
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
    out = generate_dataset(spec, args.output, fmt=fmt, progress=not args.quiet)
    print(f"wrote stand-in dataset to {out} ({fmt})")
    return 0


# ----------------------------------------------------------------------------- streaming


def _add_socket_flags(p: argparse.ArgumentParser, *, publisher: bool) -> None:
    from pmr_stream.wire.curve import add_curve_arguments

    g = p.add_argument_group("socket")
    if publisher:
        g.add_argument(
            "--endpoint",
            default="tcp://127.0.0.1:5555",
            help="ZeroMQ endpoint to publish on (default tcp://127.0.0.1:5555; port * picks a free one)",
        )
        g.add_argument("--connect", action="store_true", help="connect to the endpoint instead of binding it")
    else:
        g.add_argument(
            "--endpoint",
            action="append",
            required=True,
            help="publisher endpoint to subscribe to (repeat for several)",
        )
        g.add_argument("--bind", action="store_true", help="bind the endpoint instead of connecting to it")
        g.add_argument(
            "--topic",
            action="append",
            default=None,
            help="topic prefix: raw/ (default), anon/, raw/<stream> for exactly one stream",
        )
    g.add_argument(
        "--hwm", type=int, default=1000, help="messages queued per peer before ZeroMQ drops (default 1000)"
    )
    g.add_argument(
        "--max-message-bytes", type=int, default=1 << 20, help="largest message accepted (default 1 MiB)"
    )
    g.add_argument(
        "--kernel-buffer",
        type=int,
        default=None,
        metavar="BYTES",
        help="TCP send/receive buffer per connection (default: the OS's auto-tuning); small values make "
        "a peer that stops reading lose messages (counted) instead of receiving them seconds late",
    )
    add_curve_arguments(
        p
    )  # --curve-secret, --curve-server-key, --curve-clients, --curve-allow-any, --insecure


def _socket_options(args: argparse.Namespace, conflate: bool = False) -> SocketOptions:
    """The socket options of a one-socket command (produce, record, probe, view)."""
    from pmr_stream.wire.curve import curve_from_args, insecure_from_args
    from pmr_stream.wire.sockets import SocketOptions

    bind = not args.connect if hasattr(args, "connect") else bool(args.bind)
    return SocketOptions(hwm=args.hwm, max_message_bytes=args.max_message_bytes, conflate=conflate,
                         curve=curve_from_args(args, bind=bind), insecure=insecure_from_args(args),
                         kernel_buffer_bytes=args.kernel_buffer)  # fmt: skip


def _link(options: SocketOptions) -> str:
    """`` (CurveZMQ)`` or `` (clear text)``: what a command's ready line says about a socket."""
    return " (CurveZMQ)" if options.curve is not None else " (clear text)"


def _print_json_line(prefix: str, d: dict[str, Any]) -> None:
    import json

    print(f"{prefix} {json.dumps(d, default=str)}", flush=True)


def cmd_produce(args: argparse.Namespace) -> int:
    from pmr_stream.capture.producer import Producer, ProducerOptions
    from pmr_stream.capture.smoothing import OneEuroOptions
    from pmr_stream.capture.sources import open_source, parse_source
    from pmr_stream.wire.sockets import Publisher, stop_on_signals

    spec = parse_source(args.source)
    smoothing = (
        OneEuroOptions(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta) if args.smooth else None
    )
    opts = ProducerOptions(
        speed=args.speed, announce_s=args.announce, max_frames=args.max_frames, duration_s=args.duration,
        wait_subscribers=args.wait_subscribers, wait_timeout_s=args.wait_timeout, report_s=args.report,
    )  # fmt: skip
    source = open_source(spec, stream=args.stream, speed=args.speed, loop=args.loop, smoothing=smoothing,
                         mirrored=args.mirrored, seed=args.seed)  # fmt: skip
    try:
        pub = Publisher(args.endpoint, _socket_options(args), bind=not args.connect)
    except BaseException:
        source.close()
        raise
    with pub, stop_on_signals() as stop:
        streams = ", ".join(s.stream for s in source.streams)
        print(
            f"publishing {args.source} as {streams} on {pub.endpoint}{_link(pub.options)} (Ctrl-C stops)",
            flush=True,
        )
        stats = Producer(source, pub, opts, report=lambda s: _print_json_line("stats", s)).run(stop)
    print(f"stopped ({stats.end_reason}): {stats.frames} frames, {stats.rate_fps:.1f} fps, "
          f"{stats.drops} dropped, {stats.gaps} without a person", flush=True)  # fmt: skip
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from pmr_stream.sinks.recorder import Recorder, RecordOptions, WriteOptions
    from pmr_stream.sinks.segments import check_output, finish_parts
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    if args.recover:
        done = finish_parts(args.output, overwrite=args.overwrite)
        for f in done:
            for bad in f.summary.bad_segments:
                print(f"skipped {f.summary.folder / bad}", file=sys.stderr, flush=True)
            if f.error is None:
                print(f"recovered {f.path} ({f.frames} frames of {f.summary.topic}, {f.summary.segments} segments)",
                      flush=True)  # fmt: skip
            else:
                print(f"pmr record: not recovered: {f.error}", file=sys.stderr, flush=True)
        return 0 if done and all(f.error is None for f in done) else 1
    if not args.endpoint:
        raise ValueError("--endpoint is required (unless --recover)")
    wopts = WriteOptions(max_persons=args.max_persons, flush_s=args.flush, overwrite=args.overwrite)
    check_output(args.output, overwrite=args.overwrite)  # before connecting; Recorder checks again and claims
    topics = args.topic or ["raw/"]
    with Subscriber(args.endpoint, topics, _socket_options(args), bind=args.bind) as sub, stop_on_signals() as stop, \
            Recorder(sub, args.output, wopts) as rec:  # fmt: skip
        print(f"recording {', '.join(topics)} from {', '.join(sub.socket.endpoints)}{_link(sub.socket.options)} "
              "(Ctrl-C stops)", flush=True)  # fmt: skip
        rec.run(
            stop,
            RecordOptions(duration_s=args.duration, max_frames=args.max_frames, until_end=args.until_end),
        )
        written = rec.save()
        drops = dict(sub.drops)
    for path, take in written:
        print(f"wrote {path} ({take.num_frames} frames of {take.topic})", flush=True)
    refused = rec.stats()["refused_persons"]
    if refused:
        print(f"refused {sum(refused.values())} frame message(s) of persons beyond --max-persons "
              f"{args.max_persons}: {refused}", flush=True)  # fmt: skip
    if drops:
        print(f"dropped messages: {drops}", flush=True)
    for f in rec.kept:
        print(f"pmr record: not written: {f.error}; finish it with `pmr record --recover --output {args.output}`",
              file=sys.stderr, flush=True)  # fmt: skip
    if rec.kept:
        return 1
    if not written:
        print("nothing recorded (no frames arrived)", flush=True)
        return 1
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from pmr_stream.sinks.probe import run_probe
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber, SubscriberOptions

    topics = args.topic or ["raw/"]
    sopts = SubscriberOptions(require_start=not args.conflate, window_s=args.window)
    with Subscriber(args.endpoint, topics, _socket_options(args, args.conflate), sopts, bind=args.bind) as sub, \
            stop_on_signals() as stop:  # fmt: skip
        stats = run_probe(sub, lambda t: print(t + "\n", flush=True), interval_s=args.interval,
                          duration_s=args.duration, stop=stop)  # fmt: skip
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(stats, indent=2, default=str))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from pmr_stream.wire.curve import generate_keypair

    try:
        pub, sec = generate_keypair(args.output, args.name)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None
    print(f"wrote {pub} (public: give it to peers) and {sec} (secret, mode 0600)")
    return 0


def _add_stream_commands(sub: Any) -> None:
    p = sub.add_parser("produce", help="publish skeletons from a recording, video, webcam or the generator")
    p.add_argument(
        "--source",
        required=True,
        help=SOURCE_USAGE,
    )
    p.add_argument("--stream", default=None, help="stream id (default: the file's stem, webcam0, syn)")
    p.add_argument(
        "--speed", type=float, default=1.0, help="1 = real time, N = N times faster, 0 = as fast as possible"
    )
    p.add_argument("--loop", action="store_true", help="replay: start over at the end")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--announce", type=float, default=1.0, help="seconds between stream-start re-announcements"
    )
    p.add_argument(
        "--wait-subscribers", type=int, default=0, help="wait for this many subscribers before publishing"
    )
    p.add_argument("--wait-timeout", type=float, default=10.0, help="longest wait for subscribers, seconds")
    p.add_argument(
        "--report", type=float, default=5.0, help="seconds between stats lines (0: only at the end)"
    )
    p.add_argument("--smooth", action="store_true", help="video/webcam: One-Euro smoothing of the joints")
    p.add_argument(
        "--smooth-min-cutoff", type=float, default=0.5, help="One-Euro min cut-off, Hz (default 0.5)"
    )
    p.add_argument("--smooth-beta", type=float, default=5.0, help="One-Euro beta, Hz per m/s (default 5)")
    p.add_argument(
        "--mirrored", action="store_true", help="video/webcam: the image is mirrored (selfie view)"
    )
    p.add_argument("--seed", type=int, default=0, help="synthetic: generator seed")
    _add_socket_flags(p, publisher=True)
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("record", help="subscribe and write what arrives to a recording .npz")
    p.add_argument(
        "--output",
        required=True,
        help="FILE.npz (several takes: FILE.<stream>[~N].npz each); while recording, FILE.npz.parts/",
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--until-end", action="store_true", help="stop when every stream seen has ended")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    p.add_argument(
        "--max-persons",
        type=int,
        default=64,
        help="person ids kept per take (default 64); frames of further ids are refused and counted",
    )
    p.add_argument(
        "--flush",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between segments in FILE.npz.parts/ (default 1: what a crash can lose)",
    )
    p.add_argument(
        "--recover",
        action="store_true",
        help="record nothing: merge the takes a killed recorder left in FILE.npz.parts/ into their files",
    )
    _add_socket_flags(p, publisher=False)
    for action in p._actions:  # --recover needs no endpoint; cmd_record asks for it otherwise
        if "--endpoint" in action.option_strings:
            action.required = False
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("probe", help="subscribe and print a live table per stream")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between tables (default 1)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--window", type=float, default=5.0, help="seconds of history for rates and latency")
    p.add_argument(
        "--conflate",
        action="store_true",
        help="keep only the newest message (and accept unannounced streams)",
    )
    p.add_argument("--json", default=None, metavar="FILE", help="write the final counters as JSON")
    _add_socket_flags(p, publisher=False)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("keys", help="make a CurveZMQ key pair (NAME.key public, NAME.key_secret secret)")
    p.add_argument("--output", required=True, help="folder for the key files")
    p.add_argument("--name", required=True, help="key name, e.g. producer or recorder")
    p.set_defaults(func=cmd_keys)


def cmd_train(args: argparse.Namespace) -> int:
    from training.train import train_command

    return train_command(args)


def cmd_train_default(args: argparse.Namespace) -> int:
    from training.train_retarget import train_default_command

    return train_default_command(args)


def cmd_anonymize(args: argparse.Namespace) -> int:
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
    from pmr_stream.skeleton import median_bone_lengths

    AnonymizeOptions(
        mode=args.mode, stride=args.stride
    )  # a bad --mode or --stride fails before the model loads
    window_fn, model_id = default_window_fn(
        args.model_path, args.dummy, device=args.device, privacy=args.privacy
    )
    bones = (
        tuple(float(b) for b in median_bone_lengths(window_fn.source.dummy_window))
        if args.bones == "dummy"
        else None
    )
    opts = AnonymizeOptions(mode=args.mode, stride=args.stride, bone_lengths=bones)
    out = anonymize_recording(rec, window_fn.anonymize, opts, model_id=model_id)
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


def _add_train_arguments(p: Any) -> None:
    """The flags of ``pmr train``."""
    p.add_argument("--dataset", choices=("standin", "ntu60"), default="standin")
    p.add_argument("--data", default="data/standin.npz",
                   help="stand-in .npz (generated if missing) or a folder of NTU-60 .skeleton files")  # fmt: skip
    p.add_argument("--genders", default=None, help="NTU-60: CSV of performer genders")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="autoencoder learning rate (paper 1e-5)")
    p.add_argument("--adv-lr", type=float, default=None, help="classifier/Q learning rate (paper 1e-5)")
    p.add_argument(
        "--epochs-scale", type=float, default=None, help="multiply every stage's epochs (0.1: quick run)"
    )
    p.add_argument(
        "--stage-epochs", default=None, help="six comma-separated epoch counts (default 5,20,20,50,100,100)"
    )
    p.add_argument(
        "--paired-samples", type=int, default=None, help="paired quadruplets per epoch (default 2000)"
    )
    p.add_argument("--alpha-priv", type=float, default=None)
    p.add_argument("--alpha-util", type=float, default=None)
    p.add_argument(
        "--loss-weight", action="append", metavar="NAME=VALUE", help="override a loss weight, e.g. cross=1.0"
    )
    p.add_argument(
        "--dmr", action="store_true", help="the DMR baseline: (256, 32) embeddings, no classifiers or Q"
    )
    p.add_argument(
        "--config", default=None, help="start from a Config JSON (as printed at the start of a run)"
    )
    p.add_argument("--checkpoint-dir", default="runs/pmr")
    p.add_argument("--model-id", default="pmr", help="name recorded in the checkpoint's provenance")
    p.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR/last.pt")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--use-mlflow", action="store_true", help="log metrics to MLflow (needs the mlflow package)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.eval_command import evaluate_command

    return evaluate_command(args)


def cmd_train_evaluators(args: argparse.Namespace) -> int:
    from training.eval_command import train_evaluators_command

    return train_evaluators_command(args)


def _add_eval_arguments(p: Any, *, evaluate_flags: bool = True) -> None:
    """Flags shared by ``pmr evaluate`` and ``pmr train-evaluators``."""
    p.add_argument("--dataset", choices=("standin", "ntu60"), default="standin")
    p.add_argument("--data", default=None,
                   help="stand-in .npz (default data/standin.npz, generated when missing) or NTU-60 .skeleton directory")  # fmt: skip
    p.add_argument(
        "--genders",
        default=None,
        help="NTU-60: CSV of the performers' genders (without it: no gender column)",
    )
    p.add_argument(
        "--cache", default=None, help="NTU-60: .npz cache of the preprocessed clips (written on first use)"
    )
    p.add_argument("--protocol", choices=("cross-view", "cross-take", "both"), default=None,
                   help="split(s): cross-take (train replication 1, test replication 2 camera 1: no shared take), "
                        "cross-view (train cameras 2, 3, test camera 1: the paper's) or both (default; --quick: cross-take)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="quick mode: cross-take only, 1 seed, 10 evaluator and 4 attacker epochs, 760 attacker clips, "
                        "the default anonymizer's rows only, evaluators cached apart (runs/evaluators/DATASET-quick/)")  # fmt: skip
    p.add_argument("--evaluators", default=None,
                   help="evaluator cache directory, one sub-directory per protocol (default runs/evaluators/DATASET[-quick])")  # fmt: skip
    p.add_argument(
        "--retrain-evaluators",
        action="store_true",
        help="train the evaluators even when a fresh cache exists",
    )
    p.add_argument("--sgn-size", choices=("slim", "paper"), default="slim",
                   help="slim: a CPU-sized SGN (default); paper: SGN as published (use a GPU)")  # fmt: skip
    p.add_argument("--evaluator-epochs", type=int, default=None,
                   help="epochs per fixed evaluator (default 25 slim, 60 paper, 10 --quick)")  # fmt: skip
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--max-test", type=int, default=None, help="evaluate on the first N test clips only (quick runs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if not evaluate_flags:
        return
    p.add_argument("--paper-model", default=None,
                   help="the paper-faithful PMR checkpoint (default pmr_stream/assets/pmr_paper.pt if it exists); 'none' skips")  # fmt: skip
    p.add_argument("--model-path", action="append", default=None,
                   help="another checkpoint to evaluate beside the shipped default (repeatable)")  # fmt: skip
    p.add_argument("--privacy-levels", default=None,
                   help="comma-separated privacy levels of the default anonymizer to evaluate (default: all)")  # fmt: skip
    p.add_argument(
        "--dmr-path", default=None, help="DMR checkpoint (default: the shipped dmr_standin.pt); 'none' skips"
    )
    p.add_argument(
        "--dummy", default=None, help="the constant dummy's recording (default: the shipped dummy)"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="evaluation seeds: linkage pairs, random dummies (default 5, --quick 1)",
    )
    p.add_argument("--adaptive-epochs", type=int, default=None,
                   help="fine-tuning epochs of each adaptive attacker, warm-started from the fixed one (default 6, --quick 4)")  # fmt: skip
    p.add_argument("--adaptive-clips", type=int, default=None,
                   help="train the adaptive attackers on at most N training clips (seeded subset; default all, --quick 760)")  # fmt: skip
    p.add_argument("--no-adaptive", action="store_true", help="fixed evaluators only (no adaptive columns)")
    p.add_argument("--policies", default="constant,random,same_action",
                   help="dummy policies of the cross-view paper-layout table, comma-separated")  # fmt: skip
    p.add_argument("--no-fk", action="store_true", help="leave out the forward-kinematics baseline")
    p.add_argument("--no-stream", action="store_true", help="leave out the streaming-path row")
    p.add_argument(
        "--stream-backend", default="auto", help="engine backend of the streaming row (default auto)"
    )
    p.add_argument(
        "--stream-policy", default="last", help="window policy of the streaming row (default last)"
    )
    p.add_argument(
        "--stream-bones",
        choices=("dummy", "model"),
        default="dummy",
        help="bone step of the streaming row, as the service's --bones (default dummy)",
    )
    p.add_argument(
        "--output", default=None, help="output directory (default out/eval_DATASET, out/eval_DATASET_quick)"
    )


def _add_model_commands(sub: Any) -> None:
    p = sub.add_parser("train", help="train PMR (the paper's 6 sub-stages) on the stand-in or NTU-60")
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    from training.recipe import add_recipe_arguments

    p = sub.add_parser(
        "train-default", help="train the default anonymizer (PMR, retarget head, privacy dial); resumable"
    )
    add_recipe_arguments(p)
    p.set_defaults(func=cmd_train_default)

    p = sub.add_parser(
        "evaluate", help="the privacy/utility tables: fixed and adaptive attackers, cross-take and cross-view"
    )
    _add_eval_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "train-evaluators", help="train and cache the SGN evaluators (action, re-ID, gender, linkage)"
    )
    _add_eval_arguments(p, evaluate_flags=False)
    p.set_defaults(func=cmd_train_evaluators)

    p = sub.add_parser("anonymize", help="anonymize a recording offline (every person, any length)")
    p.add_argument("--input", required=True, help=".skeleton, .npz, or an SGN/ST-GCN array file")
    p.add_argument(
        "--output",
        required=True,
        help="output file, written atomically; its format by its extension (a new .npy: the "
        "input's array kind) unless --output-format; a format that cannot hold every person "
        "is refused",
    )
    p.add_argument("--format", choices=FORMAT_CHOICES, default=None, help="input format (default: guessed)")
    p.add_argument("--output-format", choices=FORMAT_CHOICES, default=None)
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output file (never the input itself)"
    )
    p.add_argument(
        "--model-path",
        default=None,
        help="checkpoint (default: the shipped default anonymizer, pmr_stream/assets/pmr_default.pt)",
    )
    p.add_argument("--dummy", default=None, help="dummy recording (default: the shipped dummy)")
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
    add_privacy_argument(p)
    p.add_argument(
        "--bones",
        choices=("dummy", "model"),
        default="dummy",
        help="dummy (default): set every output bone to the dummy's length; model: the network's output as is",
    )
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_anonymize)


def cmd_export(args: argparse.Namespace) -> int:
    from engines.export import ExportError, export_onnx
    from pmr_stream.backends.base import BackendOptions, BackendUnavailable, load_source

    source = load_source(BackendOptions(model_path=args.model_path, dummy=args.dummy, privacy=args.privacy))
    try:
        if args.format == "onnx":
            art = export_onnx(source, args.output, args.precision, args.graph, args.opset)
            print(f"wrote {art.path} ({args.precision}, {args.graph} graph, opset {args.opset}, batch dynamic; "
                  f"relative error {art.relative_error:.2g} vs PyTorch; metadata {art.path}.json)")  # fmt: skip
            return 0
        from engines.tensorrt_build import ensure_engine

        output = Path(args.output)
        if str(args.output).endswith(("/", "\\")):
            output.mkdir(parents=True, exist_ok=True)
        eng = ensure_engine(source, precision=args.precision, max_batch=args.max_batch, graph=args.graph,
                            engine_path=output, rebuild="always" if args.force else "auto", opt_batch=args.opt_batch,
                            directory=args.cache_dir, opset=args.opset, onnx_path=args.onnx)  # fmt: skip
        m = eng.metadata
        print(f"{'built' if eng.rebuilt else 'up to date:'} {eng.path} (TensorRT {m.tensorrt_version}, {m.gpu_name} "
              f"sm{m.compute_capability}, {m.precision}, batch {m.min_batch}..{m.max_batch}, "
              f"build {m.build_time_s:.1f} s; metadata {eng.path}.json)")  # fmt: skip
        return 0
    except (BackendUnavailable, ExportError, RuntimeError) as exc:
        print(f"pmr export: error: {exc}", file=sys.stderr)
        return 1


def cmd_bench(args: argparse.Namespace) -> int:
    from tools.bench import BenchOptions, parse_batch_sizes, run_bench

    json_path = args.json
    histogram = args.histogram or (str(Path(json_path).with_suffix(".png")) if json_path else None)
    opts = BenchOptions(
        backends=tuple(args.backend) if args.backend else None, device=args.device,
        batch_sizes=parse_batch_sizes(args.batch_sizes), precisions=tuple(args.precision) if args.precision else None,
        graphs=tuple(args.graph), model_path=args.model_path, dummy=args.dummy, privacy=args.privacy, seconds=args.seconds,
        threads=args.threads, cache_dir=args.cache_dir, paper=not args.no_paper, paper_calls=args.paper_calls,
        wait_quiet_s=args.wait_quiet,
        quiet_load=args.quiet_load, json_path=json_path, histogram_path=histogram, table_path=args.table,
    )  # fmt: skip
    report = run_bench(opts)
    print(report["table"])
    for what, path in (("json", json_path), ("histogram", histogram), ("table", args.table)):
        if path:
            print(f"wrote {what}: {path}")
    return 0 if report["cases"] else 1


def _add_engine_commands(sub: Any) -> None:
    p = sub.add_parser("export", help="export the streaming graph to ONNX or build a TensorRT engine")
    p.add_argument("--format", choices=("onnx", "tensorrt"), required=True)
    p.add_argument(
        "--output", required=True, help="file, or a folder (ending in /) to name the file by its dependencies"
    )
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    p.add_argument("--model-path", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument(
        "--dummy", default=None, help="dummy recording or .npy window (default: the shipped dummy)"
    )
    p.add_argument("--graph", choices=("folded", "reference"), default="folded",
                   help="folded: exact rewrite with half the FLOPs (default); reference: the network as defined")  # fmt: skip
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    p.add_argument(
        "--max-batch", type=int, default=256, help="tensorrt: largest batch of the optimisation profile"
    )
    p.add_argument(
        "--opt-batch", type=int, default=None, help="tensorrt: batch the profile is tuned for (default 64)"
    )
    p.add_argument("--onnx", default=None, help="tensorrt: build from this ONNX file instead of exporting")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where the ONNX export and timing cache live (default ~/.cache/pmr-stream)",
    )
    add_privacy_argument(p, "the exported graph's ")
    p.add_argument(
        "--force", action="store_true", help="tensorrt: rebuild even when the engine is up to date"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="latency/throughput of the backends vs the paper's way of timing")
    p.add_argument("--backend", nargs="+", choices=("torch", "onnxruntime", "tensorrt"), default=None,
                   help="backends to time (default: every one available on --device)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-sizes", default="1,8,64,256", help="comma-separated (default 1,8,64,256)")
    p.add_argument(
        "--precision", nargs="+", choices=("fp32", "fp16"), default=None, help="default: fp32 (+fp16 on CUDA)"
    )
    p.add_argument("--graph", nargs="+", choices=("folded", "reference"), default=["folded"])
    p.add_argument("--model-path", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument(
        "--dummy", default=None, help="dummy recording or .npy window (default: the shipped dummy)"
    )
    p.add_argument(
        "--seconds", type=float, default=1.0, help="timed seconds per backend and batch size (default 1)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per call (default: the libraries' choice)"
    )
    p.add_argument("--cache-dir", default=None, help="where exported ONNX files and engines are kept")
    add_privacy_argument(p, "the timed graph's ")
    p.add_argument(
        "--json", default=None, metavar="FILE", help="write the full report as JSON (and FILE.png)"
    )
    p.add_argument(
        "--histogram", default=None, metavar="PNG", help="latency histogram (default: beside --json)"
    )
    p.add_argument("--table", default=None, metavar="FILE", help="also write the table to FILE")
    p.add_argument("--no-paper", action="store_true", help="skip the paper's way of timing")
    p.add_argument("--paper-calls", type=int, default=300, help="calls timed the paper's way (default 300)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for the 1-minute load average to drop below --quiet-load")  # fmt: skip
    p.add_argument("--quiet-load", type=float, default=0.6)
    p.set_defaults(func=cmd_bench)


def _anonymizer_socket_options(args: argparse.Namespace) -> tuple[SocketOptions, SocketOptions]:
    """``(raw_side, anon_side)``: the raw/ subscriber (connects: a CURVE client of the producers,
    ``--raw-curve-*``) and the anon/ publisher (binds: a CURVE server for the sinks, ``--anon-curve-*``).
    The raw side's non-loopback rule is checked here, before the backend loads."""
    from pmr_stream.wire.curve import check_raw_endpoints, curve_from_args
    from pmr_stream.wire.curve import insecure_from_args as insecure
    from pmr_stream.wire.sockets import SocketOptions

    raw = SocketOptions(
        hwm=args.hwm,
        kernel_buffer_bytes=args.kernel_buffer,
        curve=curve_from_args(args, "raw-", bind=False),
        insecure=insecure(args, "raw-"),
    )
    anon = SocketOptions(hwm=args.hwm, kernel_buffer_bytes=args.kernel_buffer,
                         curve=curve_from_args(args, "anon-", bind=True))  # fmt: skip
    check_raw_endpoints(args.raw, raw, bind=False, flag_prefix="raw-")
    return raw, anon


def cmd_anonymizer(args: argparse.Namespace) -> int:
    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.service import serve
    from pmr_stream.anonymizer.window import WindowPolicy
    from pmr_stream.backends import get_backend
    from pmr_stream.wire.privacy import stream_ids_from_args
    from pmr_stream.wire.sockets import stop_on_signals

    raw_sockets, anon_sockets = _anonymizer_socket_options(args)  # bad flags fail before the backend loads
    ids = stream_ids_from_args(args, create=True)  # the deployment's key (made on first use)
    opts = ServiceOptions(
        policy=WindowPolicy.parse(args.policy), max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        max_gap=args.max_gap, idle_s=args.idle, report_s=args.report,
        max_metadata_bytes=args.max_metadata_bytes, max_streams=args.max_streams,
        max_persons_per_stream=args.max_persons_per_stream, max_persons=args.max_persons,
        stats_json=Path(args.stats_json) if args.stats_json else None,
        metrics_port=args.metrics_port, metrics_host=args.metrics_host, bones=args.bones,
        engine_thread=args.engine_thread,
        stream_key=ids.key, public_stream_ids=ids.public,
    )  # fmt: skip
    options: dict[str, Any] = {"max_batch": max(args.max_batch, 1)}
    if args.device:
        options["device"] = args.device
    if args.model_path:
        options["model_path"] = args.model_path
    if args.dummy:
        options["dummy"] = args.dummy
    if args.privacy:
        options["privacy"] = args.privacy
    if args.threads:
        options["threads"] = args.threads
    options["spin"] = args.spin  # onnxruntime only; the other backends ignore it
    backend = get_backend(args.backend, **options)  # the dummy's privacy code is computed here, once
    backend.warmup((1, min(8, args.max_batch)))
    model_id = backend.source.model_id
    import gc

    gc.collect()
    gc.freeze()  # the backend and its libraries live as long as the process: keep them out of full GC passes
    with stop_on_signals() as stop:
        final = serve(
            args.raw, args.anon, backend, model_id, opts, anon_sockets, raw_socket_options=raw_sockets, stop=stop,
            duration_s=args.duration, until_end=args.until_end, wait_subscribers=args.wait_subscribers,
            wait_timeout_s=args.wait_timeout, report=lambda d: _print_json_line("stats", d),
            ready=lambda ep: print(f"anonymizer: {backend.name} on {backend.device} ({model_id}, privacy "
                                   f"{backend.source.privacy or 'n/a: no dial'}), policy "
                                   f"{opts.policy.name}; raw/ from {', '.join(args.raw)}{_link(raw_sockets)}, anon/ on {ep}"
                                   f"{_link(anon_sockets)} "
                                   f"(stream ids: pseudonyms keyed by {ids.key_path})", flush=True),
            on_metrics=lambda url: print(f"anonymizer: statistics on {url}/metrics (Prometheus) and {url}/stats.json",
                                         flush=True),
        )  # fmt: skip
    print(f"anonymizer stopped: {final['published_frames']} of {final['frames_in']} frames published, "
          f"failed {final['failed']}", flush=True)  # fmt: skip
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from pmr_stream.pipeline import run_pipeline

    return run_pipeline(args)


def _add_service_commands(sub: Any) -> None:
    from pmr_stream.anonymizer.window import POLICY_HELP
    from pmr_stream.pipeline import add_stream_arguments
    from pmr_stream.wire.privacy import add_stream_id_arguments

    p = sub.add_parser("anonymizer", help="the streaming anonymizer service: raw/ in, anon/ out")
    p.add_argument(
        "--raw", action="append", required=True, help="producer endpoint to subscribe to (repeatable)"
    )
    p.add_argument("--anon", default="tcp://127.0.0.1:5556", help="endpoint to publish anon/ on (bound)")
    p.add_argument("--backend", default="auto", help="torch, onnxruntime, tensorrt or auto (default)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N")
    p.add_argument("--model-path", default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--dummy", default=None, help="dummy recording (default: the shipped dummy)")
    p.add_argument("--policy", default="last", help=f"window policy: {POLICY_HELP}; default last")
    add_privacy_argument(p)
    p.add_argument("--max-batch", type=int, default=128, help="most windows per engine call (default 128)")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="longest wait for a batch to fill, only while frames arrive faster than one per that time (default 5 ms)",
    )
    p.add_argument(
        "--max-gap", type=int, default=10, help="missing frames interpolated; longer gaps reset (default 10)"
    )
    p.add_argument("--idle", type=float, default=5.0, help="evict persons/streams unseen this long, seconds")
    p.add_argument(
        "--max-metadata-bytes",
        type=int,
        default=16384,
        metavar="BYTES",
        help="refuse stream starts whose metadata is larger, msgpack-encoded (default 16384)",
    )
    p.add_argument(
        "--max-streams",
        type=int,
        default=1024,
        help="streams tracked at once; more are refused (default 1024)",
    )
    p.add_argument(
        "--max-persons-per-stream",
        type=int,
        default=64,
        help="persons held per stream; frames of more are refused (default 64)",
    )
    p.add_argument(
        "--max-persons", type=int, default=4096, help="persons held in all; more are refused (default 4096)"
    )
    p.add_argument("--report", type=float, default=5.0, help="seconds between stats lines (0: none)")
    p.add_argument("--stats-json", default=None, metavar="FILE", help="also write the stats to FILE")
    p.add_argument(
        "--bones",
        choices=("dummy", "model"),
        default="dummy",
        help="dummy (default): set every output bone to the dummy's length; model: the network's output as is",
    )
    p.add_argument(
        "--engine-thread",
        action="store_true",
        help="run the engine in its own thread while the loop keeps receiving and publishing",
    )
    add_stream_id_arguments(p)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve /metrics (Prometheus text) and /stats.json over HTTP on PORT (0: any free port)",
    )
    p.add_argument(
        "--metrics-host", default="127.0.0.1", help="address the metrics endpoint binds (default loopback)"
    )
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--until-end", action="store_true", help="stop when every stream seen has ended")
    p.add_argument(
        "--wait-subscribers", type=int, default=0, help="wait for this many anon/ subscribers first"
    )
    p.add_argument("--wait-timeout", type=float, default=60.0, help="longest wait for them, seconds")
    p.add_argument("--hwm", type=int, default=1000, help="messages queued per peer before ZeroMQ drops")
    p.add_argument(
        "--kernel-buffer",
        type=int,
        default=None,
        metavar="BYTES",
        help="TCP send/receive buffer per connection (default: the OS's auto-tuning); small values make "
        "a subscriber that stops reading lose messages (it counts them) instead of lagging",
    )
    from pmr_stream.wire.curve import add_curve_arguments

    add_curve_arguments(p, "raw-", role="client", what="the raw/ subscriber (a client of the producers)")
    add_curve_arguments(
        p, "anon-", role="server", what="the anon/ publisher (the server of the sinks)", raw=False
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per engine call (default: the backend's)"
    )
    p.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="onnxruntime: let idle worker threads spin between calls (default --no-spin: they sleep, "
        "leaving the cores to the producers and subscribers; measured better at 60 streams on 2 cores)",
    )
    p.set_defaults(func=cmd_anonymizer)

    p = sub.add_parser(
        "stream", help="producer -> anonymizer -> recorder on loopback, then a side-by-side video"
    )
    add_stream_arguments(p)
    p.set_defaults(func=cmd_stream)


def cmd_view(args: argparse.Namespace) -> int:
    from pmr_stream.sinks.viewer import Viewer, ViewerOptions, run_viewer
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    endpoints = list(args.endpoint) + (
        [args.raw_endpoint] if args.show_original and args.raw_endpoint else []
    )
    topics = list(args.topic or ["anon/"]) + (["raw/"] if args.show_original else [])
    if any(not t.startswith("anon/") for t in args.topic or []):
        raise ValueError(
            "pmr view shows anonymized streams: --topic must start with anon/ (use --show-original for raw)"
        )
    stream_ids = None
    if args.show_original:  # raw ids go to anon/ as keyed pseudonyms: pair them with the anonymizer's key
        from pmr_stream.wire.privacy import stream_ids_from_args

        stream_ids = stream_ids_from_args(args, create=False)
    opts = ViewerOptions(width=args.width, height=args.height, show_original=args.show_original,
                         until_end=args.until_end, duration_s=args.duration, stream_ids=stream_ids)  # fmt: skip
    with (
        Subscriber(endpoints, topics, _socket_options(args), bind=args.bind) as sub,
        stop_on_signals() as stop,
    ):
        viewer = Viewer(sub, opts)
        out = run_viewer(viewer, args.output, stop, fps=args.fps)
    if out is not None:
        print(f"wrote {out} ({viewer.pictures} frames)", flush=True)
    elif viewer.pictures == 0:
        print("nothing to show (no anonymized frames arrived)", flush=True)
        return 1
    return 0


def _add_view_command(sub: Any) -> None:
    p = sub.add_parser("view", help="show anonymized streams live, or write them to MP4/GIF (the writer)")
    p.add_argument(
        "--show-original", action="store_true", help="draw the raw skeleton beside it (explicit only)"
    )
    p.add_argument(
        "--raw-endpoint", default=None, help="with --show-original: the producer's endpoint (raw/)"
    )
    from pmr_stream.wire.privacy import add_stream_id_arguments

    add_stream_id_arguments(p)  # with --show-original: the anonymizer's key, to pair raw and anon/ streams
    p.add_argument(
        "--output",
        default=None,
        help=".mp4/.avi/.gif: write instead of a window (default without a display: out/viewer.mp4)",
    )
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the written video")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--until-end", action="store_true", help="stop when every anonymized stream has ended")
    _add_socket_flags(p, publisher=False)
    p.set_defaults(func=cmd_view)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pmr", description="pmr-stream: anonymize skeleton motion with PMR."
    )
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
    p.add_argument(
        "--format", choices=FORMAT_CHOICES, default=None, help="input format of both (default: guessed)"
    )
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
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output file (never the input itself); written atomically",
    )
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

    _add_stream_commands(sub)
    _add_model_commands(sub)
    _add_view_command(sub)
    _add_engine_commands(sub)
    _add_service_commands(sub)
    return parser


#: Errors of the library's own kinds that mean "this host or this input cannot do it" (looked up
#: only once their module is loaded, so the CLI imports nothing for them).
_ENVIRONMENT_ERRORS: tuple[tuple[str, str], ...] = (
    ("pmr_stream.backends.base", "BackendUnavailable"),
    ("engines.export", "ExportError"),
    ("engines.tensorrt_build", "EngineBuildError"),
    ("engines.tensorrt_build", "EngineMismatch"),
)


def _one_line(exc: BaseException) -> str | None:
    """The one-line message of an error caused by the input or the host, or None for a bug."""
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        # e.g. IsADirectoryError: "[Errno 21] Is a directory: 'x'" -> "x: Is a directory"
        return f"{exc.filename}: {exc.strerror}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    if isinstance(exc, (ValueError, OSError)):
        return str(exc) or type(exc).__name__
    for module, name in _ENVIRONMENT_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return str(exc)
    return None


def _device_problem(args: argparse.Namespace) -> str | None:
    """Why ``--device cuda[:N]`` cannot work on this host (before any command starts), or None."""
    device = getattr(args, "device", None)
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        return f"--device {device}: torch {torch.__version__} sees no CUDA device ({build})"
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= torch.cuda.device_count():
        return f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s) (cuda:0..)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``pmr`` command. Bad input or a host that cannot do what was asked (a file
    missing or a directory, a port in use, no CUDA, a backend not installed) ends with one
    line ``pmr COMMAND: error: ...`` on stderr and exit status 2, no traceback (``-vv``
    logs the traceback too)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from pmr_stream.wire.sockets import restore_ctrl_c

    restore_ctrl_c()
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        problem = _device_problem(args)
        if problem is not None:
            raise ValueError(problem)
        return func(args)
    except Exception as exc:
        msg = _one_line(exc)
        if msg is None:
            raise  # a bug: the traceback is what is needed
        log.debug("pmr %s failed", args.command, exc_info=True)
        print(f"pmr {args.command}: error: {msg}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser"]
