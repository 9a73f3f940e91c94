"""``pmr bench``: latency and throughput of the backends; ``pmr bench --end-to-end``: of the whole
path of a frame (:mod:`.bench_e2e`). A plugin: setup.cfg registers :func:`register` under the
``pmr_stream.commands`` entry points."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pmr_stream.anonymizer.options import add_service_arguments
from pmr_stream.backends.options import add_model_arguments, add_triton_arguments, backend_kwargs
from pmr_stream.capture.sources import add_source_arguments
from pmr_stream.flags import forward_argv
from pmr_stream.samples import NTU_SAMPLE_VIDEO


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchOptions, parse_batch_sizes, run_bench

    if args.end_to_end:
        return cmd_bench_end_to_end(args)

    json_path = args.json
    histogram = args.histogram or (str(Path(json_path).with_suffix(".png")) if json_path else None)
    opts = BenchOptions(
        backends=tuple(args.backend) if args.backend else None, device=args.device,
        batch_sizes=parse_batch_sizes(args.batch_sizes), precisions=tuple(args.precision) if args.precision else None,
        graphs=tuple(args.graph), model_path=args.model_path, dummy=args.dummy, privacy=args.privacy, seconds=args.seconds,
        threads=args.threads, cache_dir=args.cache_dir, paper=not args.no_paper, paper_calls=args.paper_calls,
        wait_quiet_s=args.wait_quiet,
        quiet_load=args.quiet_load, json_path=json_path, histogram_path=histogram, table_path=args.table,
        triton=tuple(sorted((k, v) for k, v in backend_kwargs(args).items() if k.startswith("triton_"))),
    )  # fmt: skip
    report = run_bench(opts)
    print(report["table"])
    for what, path in (("json", json_path), ("histogram", histogram), ("table", args.table)):
        if path:
            print(f"wrote {what}: {path}")
    return 0 if report["cases"] else 1


def _source_flags(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, default="", default_help="")


def cmd_bench_end_to_end(args: argparse.Namespace) -> int:
    """``pmr bench --end-to-end``: pose + window + wire + engine, stage by stage (:mod:`tools.bench_e2e`)."""
    from .bench_e2e import EndToEndOptions, run_end_to_end

    if args.backend and len(args.backend) > 1:
        raise ValueError(
            f"--end-to-end runs one backend in the service: give one --backend, got {' '.join(args.backend)}"
        )
    opts = EndToEndOptions(
        source=args.source or None, frames=args.frames, warmup_frames=args.warmup_frames, speed=args.speed,
        source_args=tuple(forward_argv(_source_flags, args, skip=("source", "speed"))),
        backend=args.backend[0] if args.backend else "auto", device=args.device, model_path=args.model_path,
        dummy=args.dummy, privacy=args.privacy, threads=args.threads,
        service_args=tuple(forward_argv(add_service_arguments, args)), timeout_s=args.timeout,
        wait_quiet_s=args.wait_quiet, quiet_load=args.quiet_load, json_path=args.json, table_path=args.table,
    )  # fmt: skip
    report = run_end_to_end(opts)
    print(report["table"])
    for what, path in (("json", args.json), ("table", args.table)):
        if path:
            print(f"wrote {what}: {path}")
    return 0 if report["frames"]["timed"] else 1


def register(sub: Any) -> None:
    """Add ``pmr bench`` to the ``pmr`` subparsers."""
    p = sub.add_parser("bench", help="latency/throughput of the backends vs the paper's way of timing")
    p.add_argument("--backend", nargs="+", choices=("torch", "onnxruntime", "tensorrt", "triton"), default=None,
                   help="backends to time (default: every one available on --device; triton with --triton-url)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-sizes", default="1,8,64,256", help="comma-separated (default 1,8,64,256)")
    p.add_argument(
        "--precision", nargs="+", choices=("fp32", "fp16"), default=None, help="default: fp32 (+fp16 on CUDA)"
    )
    p.add_argument("--graph", nargs="+", choices=("folded", "reference"), default=["folded"],
                   help="graphs to time: folded (default, the runtime's) and/or reference (the network as defined)")  # fmt: skip
    p.add_argument(
        "--seconds", type=float, default=1.0, help="timed seconds per backend and batch size (default 1)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads per call (default: the libraries' choice)"
    )
    p.add_argument("--cache-dir", default=None, help="where exported ONNX files and engines are kept")
    add_model_arguments(p)  # --model-path, --dummy, --privacy: the graph timed
    add_triton_arguments(p)  # --triton-url ...: a Triton server's model, timed as a backend
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
    p.add_argument(
        "--quiet-load", type=float, default=0.6, help="load average that counts as quiet (default 0.6)"
    )
    e = p.add_argument_group(
        "end-to-end mode (--end-to-end)",
        "real MediaPipe pose on a video or webcam -> producer -> raw/ -> anonymizer service -> anon/ -> "
        "subscriber, ZeroMQ on loopback; per-stage p50/p99 (pose, wires, window wait, engine, total) and "
        "frames/s. Uses --backend (one), --device, --threads, the model flags, --json, --table, --wait-quiet",
    )
    e.add_argument(
        "--end-to-end", action="store_true", help="time the whole path of a frame instead of the engines"
    )
    add_source_arguments(e, default="", default_stream="bench",
                         default_help=f"the NTU sample video {NTU_SAMPLE_VIDEO}; else give video:FILE or webcam:N")  # fmt: skip
    e.add_argument(
        "--frames",
        type=int,
        default=100,
        help="stop after this many frames published (default 100; a video file starts over at its end)",
    )
    e.add_argument("--warmup-frames", type=int, default=5,
                   help="first frames left out of the per-frame figures (default 5: MediaPipe's first calls)")  # fmt: skip
    e.add_argument(
        "--timeout", type=float, default=300.0, help="longest the run may take, seconds (default 300)"
    )
    add_service_arguments(e)  # --stats-json FILE: the service writes its statistics there
    p.set_defaults(func=cmd_bench)
