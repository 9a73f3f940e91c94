"""``pmr export``: write the streaming graph as ONNX or a TensorRT engine where a deployment wants it.
A plugin: setup.cfg registers :func:`register` under the ``pmr_stream.commands`` entry points.
The building itself is the library's (:mod:`pmr_stream.backends.artifacts`): the runtime builds the
same files on first use."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pmr_stream.backends.options import add_model_arguments


def cmd_export(args: argparse.Namespace) -> int:
    from pmr_stream.backends.artifacts.onnx_export import ExportError, export_onnx
    from pmr_stream.backends.base import BackendOptions, BackendUnavailable, load_source

    source = load_source(BackendOptions(model_path=args.model_path, dummy=args.dummy, privacy=args.privacy))
    try:
        if args.format == "onnx":
            art = export_onnx(source, args.output, args.precision, args.graph, args.opset)
            print(f"wrote {art.path} ({args.precision}, {args.graph} graph, opset {args.opset}, batch dynamic; "
                  f"relative error {art.relative_error:.2g} vs PyTorch; metadata {art.path}.json)")  # fmt: skip
            return 0
        from pmr_stream.backends.artifacts.tensorrt_build import ensure_engine

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


def register(sub: Any) -> None:
    """Add ``pmr export`` to the ``pmr`` subparsers."""
    p = sub.add_parser("export", help="export the streaming graph to ONNX or build a TensorRT engine")
    p.add_argument(
        "--format", choices=("onnx", "tensorrt"), required=True, help="onnx graph or TensorRT engine"
    )
    p.add_argument(
        "--output", required=True, help="file, or a folder (ending in /) to name the file by its dependencies"
    )
    p.add_argument(
        "--precision", choices=("fp32", "fp16"), default="fp32", help="fp32 (default) or fp16 (CUDA)"
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
    add_model_arguments(p)  # --model-path, --dummy, --privacy: the graph exported
    p.add_argument(
        "--force", action="store_true", help="tensorrt: rebuild even when the engine is up to date"
    )
    p.set_defaults(func=cmd_export)
