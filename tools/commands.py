"""``pmr bench``: latency and throughput of the backends. A plugin: setup.cfg registers
:func:`register` under the ``pmr_stream.commands`` entry points."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pmr_stream.backends.options import add_model_arguments, add_triton_arguments, backend_kwargs


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import BenchOptions, parse_batch_sizes, run_bench

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
    p.set_defaults(func=cmd_bench)
