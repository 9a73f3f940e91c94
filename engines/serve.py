"""``pmr serve``: a real Triton Inference Server on this host, hosting the streaming graph.

    pmr serve [--backend onnxruntime] [--instances 2] [--grpc-port 8001] [--max-queue-delay-us 500]
    pmr anonymizer --backend triton --triton-url 127.0.0.1:8001 ...   # one or many shards

The server is the ``tritonserver`` binary that the ``nvidia-pytriton`` wheel bundles (the triton
extra); its model ``pmr_stream`` (``--triton-model``) is a Python model whose executions run one
of our backends in this process (``--backend``: onnxruntime on a CPU host, tensorrt or torch on a
GPU; each backend passes its own start-up check first). That wheel's server ships only Triton's
Python backend, no ONNX Runtime or TensorRT backend: a pool that runs the exported repository
(``pmr export --format triton``) uses NVIDIA's Triton container instead; the shards talk to either
the same way. Triton's dynamic batcher joins the requests of every shard (``--max-queue-delay-us``)
before our engine sees them; ``--instances`` runs that many engines side by side.

Inputs are raw skeletons: the server listens on loopback unless ``--host`` says otherwise, and a
non-loopback ``--host`` needs TLS (``--tls-cert``/``--tls-key``; ``--tls-ca`` for mutual TLS) and
applies to gRPC (what shards use) and metrics; the HTTP port, which has no TLS here, stays on 127.0.0.1.
Prometheus metrics (Triton's own: queue and compute times, batch executions) are on
``http://HOST:METRICS_PORT/metrics``. A plugin: setup.cfg registers :func:`register`.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any

from pmr_stream.backends.options import add_backend_arguments, backend_kwargs

log = logging.getLogger(__name__)


def python_library_dir() -> str | None:
    """The folder of this interpreter's ``libpython`` when it is not the system's.

    Triton's Python backend stub links ``libpython3.X.so`` and finds it by the dynamic linker's
    rules; under a pyenv or conda interpreter that is the system's library of another patch level,
    whose C modules do not match this interpreter's standard library (the stub then fails in
    ``multiprocessing``). The stub is a child of ``tritonserver``, which is ours: putting this
    folder first on ``LD_LIBRARY_PATH`` makes it load the interpreter's own library.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    name = sysconfig.get_config_var("INSTSONAME") or ""
    return str(libdir) if libdir and name and (Path(libdir) / name).is_file() else None


def _check_host(args: argparse.Namespace) -> None:
    host = args.host
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise ValueError(f"--host {host!r}: expected an IP address to listen on") from None
    if not local and args.tls_cert is None:
        raise ValueError(f"--host {host}: windows are raw skeletons; a non-loopback address needs TLS "
                         "(--tls-cert FILE --tls-key FILE)")  # fmt: skip
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    for flag in ("tls_cert", "tls_key", "tls_ca"):
        path = getattr(args, flag)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{flag.replace('_', '-')} {path}: not found")


def cmd_serve(args: argparse.Namespace) -> int:
    """Start Triton with our model, print where it listens, serve until SIGINT/SIGTERM (or ``--duration``)."""
    if args.backend == "triton":
        raise ValueError(
            "--backend triton: pmr serve hosts an engine of this host (onnxruntime, torch, tensorrt)"
        )
    _check_host(args)
    if args.instances < 1 or args.max_batch < 1 or args.max_queue_delay_us < 0:
        raise ValueError("--instances and --max-batch must be positive, --max-queue-delay-us 0 or more")
    import numpy as np

    from pmr_stream.backends import BackendUnavailable, get_backend

    try:
        from pytriton.decorators import batch
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as exc:
        raise BackendUnavailable(
            f"pmr serve needs nvidia-pytriton (pip install -e '.[triton]'): {exc}"
        ) from exc

    kwargs = backend_kwargs(args, max_batch=args.max_batch)
    engines = [get_backend(args.backend, **kwargs) for _ in range(args.instances)]  # each passes the probe
    for engine in engines:
        engine.warmup((1, min(8, args.max_batch)))

    def infer_func(engine: Any) -> Any:
        @batch
        def infer(windows: np.ndarray) -> dict[str, np.ndarray]:
            return {"anonymized": np.asarray(engine.anonymize(windows), dtype=np.float32)}  # (B, 75, 25, 3)

        return infer

    libdir = python_library_dir()
    if libdir is not None:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (libdir, os.environ.get("LD_LIBRARY_PATH")) if p
        )
    tls = {}
    if args.tls_cert is not None:
        tls = {"grpc_use_ssl": True, "grpc_server_cert": args.tls_cert, "grpc_server_key": args.tls_key}
        if args.tls_ca is not None:
            tls |= {"grpc_use_ssl_mutual": True, "grpc_root_cert": args.tls_ca}
    # HTTP has no TLS here: it stays on loopback (pytriton's own client uses it); shards use gRPC
    config = TritonConfig(grpc_address=args.host, grpc_port=args.grpc_port, http_address="127.0.0.1",
                          http_port=args.http_port, metrics_address=args.host, metrics_port=args.metrics_port,
                          exit_on_error=True, exit_timeout_secs=5, **tls)  # fmt: skip
    shape = (75, 25, 3)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Triton(config=config) as triton:
        triton.bind(model_name=args.triton_model, infer_func=[infer_func(e) for e in engines],
                    inputs=[Tensor(name="windows", dtype=np.float32, shape=shape)],
                    outputs=[Tensor(name="anonymized", dtype=np.float32, shape=shape)],
                    config=ModelConfig(max_batch_size=args.max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us)),
                    strict=True)  # fmt: skip
        triton.run()
        e = engines[0]
        print(f"serve: Triton {args.triton_model!r} on grpc {args.host}:{args.grpc_port} "
              f"({'TLS' if tls else 'clear text, loopback'}), http 127.0.0.1:{args.http_port}, "
              f"metrics http://{args.host}:{args.metrics_port}/metrics; {len(engines)} x {e.name} on {e.device} "
              f"({e.source.model_id}), max batch {args.max_batch}, queue delay <= {args.max_queue_delay_us} us",
              flush=True)  # fmt: skip
        stop.wait(args.duration)
    for engine in engines:
        engine.close()
    print("serve: stopped", flush=True)
    return 0


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``pmr serve``: the engine (the backend option set) and where Triton listens."""
    from pmr_stream.backends.artifacts.triton_repo import DEFAULT_QUEUE_DELAY_US
    from pmr_stream.backends.base import DEFAULT_MAX_BATCH

    add_backend_arguments(
        p, "engine: "
    )  # --triton-model names the model served; the other --triton-* are unused
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need TLS)"
    )
    p.add_argument(
        "--grpc-port", type=int, default=8001, help="gRPC port, what --triton-url names (default 8001)"
    )
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus /metrics port (default 8002)")
    p.add_argument("--instances", type=int, default=1, help="engines side by side (default 1)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                   help=f"largest batch Triton forms (default {DEFAULT_MAX_BATCH})")  # fmt: skip
    p.add_argument("--max-queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help=f"dynamic batching: longest wait for more requests, us (default {DEFAULT_QUEUE_DELAY_US})")  # fmt: skip
    p.add_argument("--tls-cert", default=None, help="TLS: the server's certificate (PEM)")
    p.add_argument("--tls-key", default=None, help="TLS: the server's private key (PEM)")
    p.add_argument(
        "--tls-ca", default=None, help="mutual TLS: the CA that signs the shards' certificates (PEM)"
    )
    p.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: on a signal)"
    )


def register(sub: Any) -> None:
    """Add ``pmr serve`` to the ``pmr`` subparsers."""
    p = sub.add_parser("serve", help="start a Triton Inference Server hosting the streaming graph")
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    """``python -m pmr_engines.serve``: the same command without the ``pmr`` front (one-line errors, rc 2)."""
    p = argparse.ArgumentParser(prog="pmr serve", description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_serve_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from pmr_stream.backends.base import BackendUnavailable

    try:
        return cmd_serve(args)
    except (ValueError, OSError, BackendUnavailable) as exc:
        print(f"pmr serve: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
