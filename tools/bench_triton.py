"""What Triton adds to one stream's latency: the same engine in this process and behind ``pmr serve``.

    python -m tools.bench_triton [--backend onnxruntime] [--device cpu] [--queue-delays-us 0,500] [--json F]

Starts ``pmr serve`` on free loopback ports (pytriton's bundled tritonserver, hosting ``--backend``),
then times the in-process backend and ``--backend triton`` against that server on the same windows,
call for call in turn (so that both see the same load), at each batch size (1 = one stream: one window per frame) and each dynamic-batching
queue delay (a server per delay). Prints a table and writes JSON: p50/p99 per call and the added
p50/p99 (triton minus in-process). A single stream's request never waits for others, so the queue
delay is paid in full by a lone stream: the table shows what it costs.

On a loaded machine the figures say so (``load_before``); they are not a capacity measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable, as package `tools`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tools  # noqa: F401  (the parent of the relative imports below)

    __package__ = "tools"

import numpy as np  # noqa: E402

log = logging.getLogger("bench_triton")
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: Sequence[str], timeout_s: float = 180.0) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``pmr serve ARGS`` on free loopback ports as a process group; ``(process, grpc url, log file)``."""
    module = "pmr_engines.serve" if importlib.util.find_spec("pmr_engines") else "engines.serve"
    grpc, http, metrics = _free_port(), _free_port(), _free_port()
    logfile = Path(tempfile.mkstemp(prefix="pmr-serve-", suffix=".log")[1])
    cmd = [sys.executable, "-m", module, "--grpc-port", str(grpc), "--http-port", str(http),
           "--metrics-port", str(metrics), *args]  # fmt: skip
    with logfile.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while "serve: Triton" not in logfile.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"pmr serve did not start: {logfile.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{grpc}", logfile


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _stats(ms: np.ndarray) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "calls": int(len(ms)),
    }


def interleaved(a: Any, b: Any, x: np.ndarray, seconds: float, warmup: int = 20,
                min_calls: int = 50) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per-call latencies (ms) of ``a(x)`` and ``b(x)``, called in turn so that both see the same load."""
    for _ in range(warmup):
        a(x), b(x)
    ta: list[float] = []
    tb: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(ta) < min_calls or time.perf_counter() < deadline:
        for fn, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            fn(x)
            out.append(time.perf_counter() - t0)
    return np.asarray(ta) * 1e3, np.asarray(tb) * 1e3


def run(backend: str = "onnxruntime", device: str = "cpu", batches: Sequence[int] = (1, 8),
        queue_delays_us: Sequence[int] = (0, 500), seconds: float = 2.0, threads: int | None = 1) -> dict[str, Any]:  # fmt: skip
    """Time ``backend`` in process and behind Triton; returns the report."""
    from pmr_stream.backends import BackendOptions, get_backend, load_source
    from pmr_stream.samples import recorded_windows

    from .bench import load_average

    source = load_source(BackendOptions())
    engine: dict[str, Any] = {"device": device} | ({"threads": threads} if threads else {})
    serve_args = ["--backend", backend, "--device", device, *(["--threads", str(threads)] if threads else [])]
    windows = np.ascontiguousarray(recorded_windows(max(batches))[0][: max(batches)], dtype=np.float32)
    report: dict[str, Any] = {"backend": backend, "device": device, "load_before": load_average(),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": []}  # fmt: skip
    local = get_backend(backend, source=source, **engine)
    for delay in queue_delays_us:
        proc, url, logfile = start_server([*serve_args, "--max-queue-delay-us", str(delay)])
        try:
            remote = get_backend("triton", source=source, triton_url=url, triton_timeout_ms=5000)
            for b in batches:
                i, t = (
                    _stats(ms) for ms in interleaved(local.anonymize, remote.anonymize, windows[:b], seconds)
                )
                row = {
                    "batch": b,
                    "queue_delay_us": delay,
                    "in_process": i,
                    "triton": t,
                    "added_p50_ms": t["p50_ms"] - i["p50_ms"],
                    "added_p99_ms": t["p99_ms"] - i["p99_ms"],
                }
                report["rows"].append(row)
                log.info("batch %d, delay %d us: +%.2f ms p50", b, delay, row["added_p50_ms"])
            remote.close()
        finally:
            stop_server(proc)
            logfile.unlink(missing_ok=True)
    local.close()
    report["load_after"] = load_average()
    report["table"] = table(report)
    return report


def table(report: dict[str, Any]) -> str:
    load = report.get("load_before")
    lines = [f"Triton vs in-process {report['backend']} on {report['device']} (one call = one batch; load average "
             f"before {load[0]:.1f})" if load else "", "",
             "| batch | queue delay | in-process p50 / p99 ms | triton p50 / p99 ms | added p50 / p99 ms |",
             "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in report["rows"]:
        i, t = r["in_process"], r["triton"]
        lines.append(f"| {r['batch']} | {r['queue_delay_us']} us | {i['p50_ms']:.2f} / {i['p99_ms']:.2f} | "
                     f"{t['p50_ms']:.2f} / {t['p99_ms']:.2f} | {r['added_p50_ms']:+.2f} / {r['added_p99_ms']:+.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="onnxruntime", help="the engine, in process and behind Triton")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch-sizes", default="1,8", help="comma-separated (default 1,8)")
    ap.add_argument(
        "--queue-delays-us", default="0,500", help="Triton's dynamic batching delays, comma-separated"
    )
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per case (default 2)")
    ap.add_argument(
        "--threads", type=int, default=1, help="engine threads (default 1; 0: the backend's choice)"
    )
    ap.add_argument("--json", default=None, help="write the report here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .bench import parse_batch_sizes

    report = run(args.backend, args.device, parse_batch_sizes(args.batch_sizes),
                 [int(v) for v in args.queue_delays_us.split(",") if v], args.seconds, args.threads or None)  # fmt: skip
    print(report["table"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
