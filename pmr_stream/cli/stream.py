"""Wire commands: ``pmr produce``, ``record``, ``probe``, ``keys`` and ``view``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pmr_stream.capture.sources import add_source_arguments
from pmr_stream.cli.common import print_json_line
from pmr_stream.wire.options import add_socket_arguments, link, socket_options_from_args


def cmd_produce(args: argparse.Namespace) -> int:
    from pmr_stream.capture.producer import Producer, ProducerOptions
    from pmr_stream.capture.sources import open_source_from_args
    from pmr_stream.wire.sockets import Publisher, stop_on_signals

    opts = ProducerOptions(
        speed=args.speed, announce_s=args.announce, max_frames=args.max_frames, duration_s=args.duration,
        wait_subscribers=args.wait_subscribers, wait_timeout_s=args.wait_timeout, report_s=args.report,
    )  # fmt: skip
    source = open_source_from_args(args)
    try:
        pub = Publisher(args.endpoint, socket_options_from_args(args), bind=not args.connect)
    except BaseException:
        source.close()
        raise
    with pub, stop_on_signals() as stop:
        streams = ", ".join(s.stream for s in source.streams)
        print(
            f"publishing {args.source} as {streams} on {pub.endpoint}{link(pub.options)} (Ctrl-C stops)",
            flush=True,
        )
        stats = Producer(source, pub, opts, report=lambda s: print_json_line("stats", s)).run(stop)
    print(f"stopped ({stats.end_reason}): {stats.frames} frames, {stats.rate_fps:.1f} fps, "
          f"{stats.drops} dropped, {stats.gaps} without a person", flush=True)  # fmt: skip
    return 0


def _silence_hint(command: str, sub: Any, args: argparse.Namespace, topics: list[str]) -> Any:
    """Says on stderr which topics the endpoints carry when nothing has arrived after 3 s."""
    from pmr_stream.wire.topics import SilenceHint

    return SilenceHint(lambda: int(sub.received), list(sub.socket.endpoints), topics, sub.socket.options,
                       lambda line: print(f"pmr {command}: {line}", file=sys.stderr, flush=True),
                       bind=args.bind, after_s=args.silence_hint)  # fmt: skip


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
    with Subscriber(args.endpoint, topics, socket_options_from_args(args), bind=args.bind) as sub, stop_on_signals() as stop, \
            Recorder(sub, args.output, wopts) as rec:  # fmt: skip
        print(f"recording {', '.join(topics)} from {', '.join(sub.socket.endpoints)}{link(sub.socket.options)} "
              "(Ctrl-C stops)", flush=True)  # fmt: skip
        with _silence_hint("record", sub, args, topics):
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
    with Subscriber(args.endpoint, topics, socket_options_from_args(args, args.conflate), sopts, bind=args.bind) as sub, \
            stop_on_signals() as stop:  # fmt: skip
        with _silence_hint("probe", sub, args, topics):
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


def cmd_view(args: argparse.Namespace) -> int:
    from pmr_stream.sinks.rerun import RerunOptions

    rerun = RerunOptions.from_args(args)
    endpoints = list(args.endpoint) + (
        [args.raw_endpoint] if args.show_original and args.raw_endpoint else []
    )
    # rerun may take raw/ topics alone, when asked for explicitly
    raw_ok = rerun is not None and args.show_original
    if any(not t.startswith("anon/") for t in args.topic or []) and not raw_ok:
        raise ValueError(
            "pmr view shows anonymized streams: --topic must start with anon/ (use --show-original for raw)"
        )
    topics = list(dict.fromkeys(list(args.topic or ["anon/"]) + (["raw/"] if args.show_original else [])))
    if rerun is not None:
        if args.output is not None:
            raise ValueError(
                "--output writes pictures; with --rerun/--rrd the skeletons go to rerun: use one"
            )
        return _view_rerun(args, rerun, endpoints, topics)
    from pmr_stream.sinks.viewer import Viewer, ViewerOptions, run_viewer
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    stream_ids = None
    if args.show_original:  # raw ids go to anon/ as keyed pseudonyms: pair them with the anonymizer's key
        from pmr_stream.wire.privacy import stream_ids_from_args

        stream_ids = stream_ids_from_args(args, create=False)
    opts = ViewerOptions(width=args.width, height=args.height, show_original=args.show_original,
                         until_end=args.until_end, duration_s=args.duration, stream_ids=stream_ids)  # fmt: skip
    with (
        Subscriber(endpoints, topics, socket_options_from_args(args), bind=args.bind) as sub,
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


def _view_rerun(args: argparse.Namespace, rerun: Any, endpoints: list[str], topics: list[str]) -> int:
    """``pmr view --rerun [URL]`` / ``--rrd FILE``: the skeletons as they arrive, to rerun."""
    from pmr_stream.sinks.rerun import RerunSink, run_rerun
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    wait_kind = "anon" if any(t.startswith("anon/") for t in topics) else "raw"
    with RerunSink(rerun) as sink:  # before subscribing: a missing rerun or viewer fails at once
        with (
            Subscriber(endpoints, topics, socket_options_from_args(args), bind=args.bind) as sub,
            stop_on_signals() as stop,
        ):
            where = [w for w in (rerun.url, "a spawned viewer" if rerun.spawn else None, rerun.rrd) if w]
            print(f"logging {', '.join(topics)} from {', '.join(sub.socket.endpoints)} to rerun "
                  f"({', '.join(map(str, where))}; Ctrl-C stops)", flush=True)  # fmt: skip
            stats = run_rerun(sub, sink, stop, duration_s=args.duration, until_end=args.until_end,
                              wait_kind=wait_kind)  # fmt: skip
            drops = dict(sub.drops)
    frames = ", ".join(f"{k} {v}" for k, v in stats.frames.items() if v or k == "anon")
    print(f"logged {sum(stats.frames.values())} person-frames to rerun ({frames}; {stats.gaps} gaps) "
          f"of {len(stats.streams)} stream(s)", flush=True)  # fmt: skip
    if drops:
        print(f"dropped messages: {drops}", flush=True)
    if rerun.rrd is not None:
        print(f"wrote {rerun.rrd} (open it with: rerun {rerun.rrd})", flush=True)
    return 0 if sum(stats.frames.values()) else 1


def _add_view_command(sub: Any) -> None:
    p = sub.add_parser(
        "view", help="show anonymized streams live, write them to MP4/GIF (the writer), or log them to rerun"
    )
    p.add_argument(
        "--show-original",
        action="store_true",
        help="draw the raw skeleton beside it (explicit only); with --rerun/--rrd log raw/ too "
        "(--topic may then name raw/ topics: raw alone)",
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
    p.add_argument("--width", type=int, default=640, help="picture width in pixels (default 640)")
    p.add_argument("--height", type=int, default=480, help="picture height in pixels (default 480)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the written video")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--until-end", action="store_true", help="stop when every anonymized stream has ended")
    add_socket_arguments(p, publisher=False, default_topic="anon/")
    from pmr_stream.capture.pose import PoseOptions
    from pmr_stream.sinks.rerun import add_rerun_arguments

    add_rerun_arguments(
        p, default_fov_deg=PoseOptions().horizontal_fov_deg
    )  # with --show-original, raw/ goes to rerun too (--topic raw/...: raw alone)
    p.set_defaults(func=cmd_view)


def register(sub: Any) -> None:
    """Add the wire commands to the ``pmr`` subparsers."""
    p = sub.add_parser("produce", help="publish skeletons from a recording, video, webcam or the generator")
    add_source_arguments(p)
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
    add_socket_arguments(p, publisher=True)
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
    p.add_argument("--silence-hint", type=float, default=3.0, metavar="SECONDS",
                   help="after this long with nothing received, say which topics the endpoints carry "
                        "(it subscribes to everything for a second; 0: never)")  # fmt: skip
    add_socket_arguments(p, publisher=False)
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
    p.add_argument("--silence-hint", type=float, default=3.0, metavar="SECONDS",
                   help="after this long with nothing received, say which topics the endpoints carry "
                        "(it subscribes to everything for a second; 0: never)")  # fmt: skip
    add_socket_arguments(p, publisher=False)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("keys", help="make a CurveZMQ key pair (NAME.key public, NAME.key_secret secret)")
    p.add_argument("--output", required=True, help="folder for the key files")
    p.add_argument("--name", required=True, help="key name, e.g. producer or recorder")
    p.set_defaults(func=cmd_keys)

    _add_view_command(sub)
