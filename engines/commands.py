"""``pmr export``: write the streaming graph as ONNX, a TensorRT engine or a Triton model repository.
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
        if args.format == "triton":
            return _export_triton(source, args)
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


def _export_triton(source: Any, args: argparse.Namespace) -> int:
    from pmr_stream.backends.artifacts.triton_repo import RepositoryOptions, write_repository

    opts = RepositoryOptions(name=args.triton_name, variants=tuple(v for v in args.triton_variants.split(",") if v),
                             max_batch=args.max_batch, instances=args.instances, device=args.triton_device,
                             max_queue_delay_us=args.max_queue_delay_us, precision=args.precision, graph=args.graph,
                             opset=args.opset)  # fmt: skip
    for m in write_repository(source, args.output, opts):
        c = m.config
        print(f"wrote {m.path}/config.pbtxt ({c.platform}, max batch {c.max_batch_size}, {c.instance_count} "
              f"{c.instance_kind} instance(s), dynamic batching <= {c.max_queue_delay_us} us)"
              + ("" if m.built else f"; {m.note}"))  # fmt: skip
    return 0


def register(sub: Any) -> None:
    """Add ``pmr export`` to the ``pmr`` subparsers."""
    p = sub.add_parser(
        "export", help="export the streaming graph to ONNX, a TensorRT engine or a Triton model repository"
    )
    p.add_argument("--format", choices=("onnx", "tensorrt", "triton"), required=True,
                   help="onnx graph, TensorRT engine, or triton: a Triton Inference Server model repository")  # fmt: skip
    p.add_argument("--output", required=True, help="file, or a folder (ending in /) to name the file by its "
                   "dependencies; triton: the repository's folder")  # fmt: skip
    p.add_argument(
        "--precision", choices=("fp32", "fp16"), default="fp32", help="fp32 (default) or fp16 (CUDA)"
    )
    p.add_argument("--graph", choices=("folded", "reference"), default="folded",
                   help="folded: exact rewrite with half the FLOPs (default); reference: the network as defined")  # fmt: skip
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    p.add_argument("--max-batch", type=int, default=256,
                   help="tensorrt: largest batch of the optimisation profile; triton: max_batch_size")  # fmt: skip
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
    _add_triton_arguments(p)
    p.set_defaults(func=cmd_export)


def _add_triton_arguments(p: argparse.ArgumentParser) -> None:
    from pmr_stream.backends.artifacts.triton_repo import DEFAULT_NAME, DEFAULT_QUEUE_DELAY_US, VARIANTS

    g = p.add_argument_group("triton (--format triton)")
    g.add_argument(
        "--triton-name",
        default=DEFAULT_NAME,
        help=f"model name stem: NAME_onnx, NAME_trt (default {DEFAULT_NAME})",
    )
    g.add_argument("--triton-variants", default=",".join(VARIANTS),
                   help=f"comma-separated, of {', '.join(VARIANTS)} (default all; the plan is built only where "
                   "TensorRT is, else its config is written with the command that builds it)")  # fmt: skip
    g.add_argument("--instances", type=int, default=1, help="execution instances per model (default 1)")
    g.add_argument("--triton-device", choices=("cpu", "gpu"), default="cpu",
                   help="where the ONNX Runtime variant's instances run (default cpu; the plan: gpu)")  # fmt: skip
    g.add_argument("--max-queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help=f"dynamic batching: longest wait for more requests, us (default {DEFAULT_QUEUE_DELAY_US})")  # fmt: skip
