"""Latency and throughput of every backend, next to the paper's own way of timing the network.

    pmr bench --backend onnxruntime torch --batch-sizes 1,8,64,256 --json out/bench.json
    python -m tools.bench --device cuda --precision fp32 fp16 --json out/bench_gpu.json

For each backend, precision, graph form and batch size: the latency of one
call (p50, p90, p99; warm-up excluded; on CUDA each call ends with a device
synchronisation, inputs and outputs are CUDA tensors), the time per window
(p50 / batch) and the throughput (windows/s over all timed calls).

In the same run, **the paper's way** (../shared/docs/PMR_FACTS.md "Speed claim"): PyTorch
eager, batch 1, ``time.time()`` around one call including the host-to-device
and device-to-host copies, averaged. Every figure is also given as a ratio to
it, like with like: ``x paper (lat)`` = paper p50 / call p50, ``x paper (thr)`` =
throughput (windows over the whole timed wall time) / (1 / paper mean). Beside it, the
paper's own published figure (:data:`PAPER_PUBLISHED_MS`, its GPU not stated). And **the
floor**: FLOPs per window of the case's own graph (counted by ``torch.utils.flop_counter``)
over the measured peak of the device (a large matmul), i.e. the time a window would take if
every arithmetic unit were busy with nothing else.

This is a measuring tool, not a test: it asserts nothing. Timings on a busy
machine are not worth much; the report records the load average before and
after, marks a run that started above ``--quiet-load`` as taken under load (``"loaded"``,
a warning line in the table), and ``--wait-quiet`` waits for a quiet machine first.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from pmr_stream.stats import percentile_values

log = logging.getLogger(__name__)

#: Percentiles of the call time reported per case (as ``p50_ms``, ``p90_ms``, ``p99_ms``).
PERCENTILES = (50, 90, 99)
#: The paper's own speed claim, "0.006 s per 75 frames" (../shared/docs/PMR_FACTS.md "Speed claim").
PAPER_PUBLISHED_MS: Final[float] = 6.0


@dataclass(frozen=True)
class CaseSpec:
    """One configuration to time: a backend with its options."""

    backend: str
    precision: str = "fp32"
    graph: str = "folded"
    options: tuple[tuple[str, Any], ...] = ()  # extra BackendOptions, e.g. (("cuda_graphs", False),)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.backend}/{self.precision}/{self.graph}"


@dataclass
class BenchOptions:
    """What :func:`run_bench` measures. ``backends``/``precisions`` None: every backend and precision the device has."""

    backends: tuple[str, ...] | None = None
    device: str = "cpu"
    batch_sizes: tuple[int, ...] = (1, 8, 64, 256)
    precisions: tuple[str, ...] | None = None
    graphs: tuple[str, ...] = ("folded",)
    cases: tuple[CaseSpec, ...] = ()  # explicit cases; replace the backends x precisions x graphs grid
    model_path: str | None = None
    dummy: Any = None
    privacy: str | None = None  # the privacy dial's level of the timed graph (None: the model's default)
    seconds: float = 1.0  # timed per case and batch size (at least min_calls calls)
    min_calls: int = 20
    max_calls: int = 20000
    warmup_calls: int = 10
    paper_calls: int = 300
    threads: int | None = None
    cache_dir: str | None = None
    paper: bool = True
    peak: bool = True
    wait_quiet_s: float = 0.0
    quiet_load: float = 0.6
    json_path: str | None = None
    histogram_path: str | None = None
    table_path: str | None = None
    seed: int = 0
    #: the triton backend's BackendOptions (``triton_url``, ...): its cases run only when a URL is given
    triton: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(int(b) < 1 for b in self.batch_sizes):
            raise ValueError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")


@dataclass
class CaseResult:
    name: str
    label: str  # the table's first column: the case label, else the backend
    backend: str
    precision: str
    graph: str
    device: str
    batch: int
    calls: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    per_window_us: float
    windows_per_s: float
    x_paper_latency: float | None = None
    x_paper_throughput: float | None = None
    floor_fraction: float | None = None  # floor time per window / measured time per window
    samples_ms: list[float] = field(default_factory=list, repr=False)


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8,64"`` -> ``(1, 8, 64)``; refuses anything else with a message."""
    try:
        sizes = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ValueError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(b < 1 for b in sizes):
        raise ValueError(f"--batch-sizes must be positive integers, got {text!r}")
    return sizes


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on every OS
        return None


def wait_until_quiet(
    threshold: float, timeout_s: float, poll_s: float = 10.0
) -> tuple[float, float, float] | None:
    """Wait (up to ``timeout_s``) until the 1-minute load average is below ``threshold``; the last reading."""
    deadline = time.monotonic() + timeout_s
    load = load_average()
    while load is not None and load[0] >= threshold and time.monotonic() < deadline:
        log.warning("waiting for a quiet machine: 1-min load %.2f >= %.2f", load[0], threshold)
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        load = load_average()
    return load


def machine_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": _cpu_name(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
    }  # fmt: skip
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    try:
        import tensorrt as trt

        info["tensorrt"] = trt.__version__
    except (ImportError, OSError):
        info["tensorrt"] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        idx = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(idx)
        info["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(idx)))
        info["cuda"] = torch.version.cuda
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def measure_peak(device: str, dtype: str = "fp32", seconds: float = 0.5) -> float:
    """Measured matmul throughput of the device, FLOP/s (best of several runs of a large square matmul)."""
    import torch

    n = 1024 if device == "cpu" else 8192
    tdtype = torch.float16 if dtype == "fp16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=tdtype)
    b = torch.randn(n, n, device=device, dtype=tdtype)
    tf32 = torch.backends.cuda.matmul.allow_tf32 if device != "cpu" else False
    if device != "cpu":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as in our engines
    try:
        torch.matmul(a, b)
        _sync(device)
        best = 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or best == 0.0:
            reps = 4
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            _sync(device)
            best = max(best, reps * 2 * n**3 / (time.perf_counter() - t0))
        return best
    finally:
        if device != "cpu":
            torch.backends.cuda.matmul.allow_tf32 = tf32


def network_flops(source: Any) -> dict[str, int]:
    """FLOPs per window of the network as defined (``reference``) and of the ``folded`` graph."""
    from pmr_stream.backends.graph import build_graph, graph_flops

    return {
        g: graph_flops(build_graph(copy.deepcopy(source.model), source.code, g))
        for g in ("reference", "folded")
    }


def paper_way(source: Any, device: str, calls: int, warmup: int = 10, seed: int = 0) -> dict[str, Any]:
    """The paper's timing: eager PyTorch, batch 1, ``time.time()`` around the call with host copies, averaged."""
    import torch

    from pmr_stream.model.pmr import AnonymizerGraph

    model = copy.deepcopy(source.model).to(device).eval()
    graph = AnonymizerGraph(model, source.code.to(device)).eval()
    x = (np.random.default_rng(seed).standard_normal((1, 75, 25, 3)) * 0.3).astype(np.float32)
    times = []
    for i in range(warmup + calls):
        t0 = time.time()
        with torch.no_grad():
            graph(torch.from_numpy(x).to(device)).cpu().numpy()
        if i >= warmup:
            times.append(time.time() - t0)
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = percentile_values(ms, PERCENTILES)
    return {"mean_ms": float(ms.mean()), "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "calls": calls, "device": device,
            "how": "PyTorch eager (no_grad), batch 1, time.time() around numpy->device->model->host, mean"}  # fmt: skip


def time_calls(fn: Any, x: Any, device: str, seconds: float, min_calls: int, max_calls: int,
               warmup: int) -> tuple[np.ndarray, float]:  # fmt: skip
    """Per-call latencies (ms) after ``warmup`` calls, and the wall time of the timed calls (s)."""
    for _ in range(warmup):
        fn(x)
    _sync(device)
    times: list[float] = []
    t_start = time.perf_counter()
    deadline = t_start + seconds
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        fn(x)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return np.asarray(times) * 1e3, time.perf_counter() - t_start


def grid(opts: BenchOptions) -> list[CaseSpec]:
    """The cases to time: explicit ``cases``, or backends x precisions x graphs for the device."""
    if opts.cases:
        return list(opts.cases)
    from pmr_stream.backends import list_backends, unavailable_reason

    cuda = opts.device.startswith("cuda")
    precisions = opts.precisions or (("fp32", "fp16") if cuda else ("fp32",))
    names = opts.backends or tuple(list_backends())
    out = []
    for name in names:
        for precision in precisions:
            if precision == "fp16" and not cuda:
                log.warning("skipping %s fp16 on CPU (fp16 needs CUDA)", name)
                continue
            extra = opts.triton if name == "triton" else ()
            reason = unavailable_reason(name, device=opts.device, precision=precision, **dict(extra))
            if reason is not None:
                if opts.backends:  # asked for by name: say why it is missing
                    log.warning("skipping %s on %s: %s", name, opts.device, reason)
                continue
            for g in opts.graphs:
                out.append(CaseSpec(name, precision, g, options=extra))
    return out


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Measure everything ``opts`` asks for; returns the report (also written as JSON/PNG/table if asked)."""
    import torch

    threads_before = torch.get_num_threads()
    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    try:
        return _run_bench(opts)
    finally:
        torch.set_num_threads(threads_before)


def _run_bench(opts: BenchOptions) -> dict[str, Any]:
    import torch

    from pmr_stream.backends import BackendOptions, BackendUnavailable, get_backend, load_source

    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {opts.device}: torch {torch.__version__} sees no CUDA device")
    load_before = (
        wait_until_quiet(opts.quiet_load, opts.wait_quiet_s) if opts.wait_quiet_s > 0 else load_average()
    )
    source = load_source(BackendOptions(model_path=opts.model_path, dummy=opts.dummy, privacy=opts.privacy))
    report: dict[str, Any] = {"machine": machine_info(opts.device), "load_before": load_before,
                              "loaded": load_before is not None and load_before[0] >= opts.quiet_load,
                              "quiet_load": opts.quiet_load,
                              "options": _jsonable(asdict(opts)), "started": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    flops = network_flops(source)
    report["flops_per_window"] = flops
    peaks: dict[str, float] = {}
    if opts.peak:
        for dtype in ("fp32", "fp16") if opts.device.startswith("cuda") else ("fp32",):
            peaks[dtype] = measure_peak(opts.device, dtype)
    report["peak_flops"] = peaks
    report["floor_ms"] = {f"{g}/{d}": flops[g] / p * 1e3 for g in flops for d, p in peaks.items()}
    paper = paper_way(source, opts.device, opts.paper_calls, seed=opts.seed) if opts.paper else None
    report["paper_way"] = paper
    rng = np.random.default_rng(opts.seed)
    cases: list[CaseResult] = []
    errors: dict[str, str] = {}
    max_batch = max(opts.batch_sizes)
    for spec in grid(opts):
        options = dict(spec.options)
        options.setdefault("threads", opts.threads)
        try:
            backend = get_backend(spec.backend, source=source, device=opts.device, precision=spec.precision,
                                  graph=spec.graph, max_batch=max_batch, cache_dir=opts.cache_dir, **options)  # fmt: skip
        except (BackendUnavailable, ValueError, RuntimeError) as exc:
            log.warning("skipping %s: %s", spec.name, exc)
            errors[spec.name] = str(exc)
            continue
        with backend:
            backend.warmup(tuple(opts.batch_sizes))
            for b in opts.batch_sizes:
                x_np = (rng.standard_normal((b, 75, 25, 3)) * 0.3).astype(np.float32)
                x: Any = torch.from_numpy(x_np).to(opts.device) if opts.device.startswith("cuda") else x_np
                samples, wall = time_calls(backend.anonymize, x, opts.device, opts.seconds, opts.min_calls,
                                           opts.max_calls, opts.warmup_calls)  # fmt: skip
                cases.append(_result(spec, backend.device, b, samples, wall, paper, flops, peaks))
                log.info(
                    "%s batch %d: p50 %.3f ms, %.0f windows/s",
                    spec.name,
                    b,
                    cases[-1].p50_ms,
                    cases[-1].windows_per_s,
                )
        del backend  # its thread pool must not compete with the next case's
        gc.collect()
    report["cases"] = [_jsonable(asdict(c)) for c in cases]
    report["errors"] = errors
    report["load_after"] = load_average()
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    table = format_table(report)
    report["table"] = table
    if opts.json_path:
        Path(opts.json_path).parent.mkdir(parents=True, exist_ok=True)
        slim = dict(
            report, cases=[{k: v for k, v in c.items() if k != "samples_ms"} for c in report["cases"]]
        )
        Path(opts.json_path).write_text(json.dumps(slim, indent=2, default=str) + "\n")
    if opts.table_path:
        Path(opts.table_path).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.table_path).write_text(table + "\n")
    if opts.histogram_path:
        plot_histogram(report, opts.histogram_path)
    return report


def _result(spec: CaseSpec, device: str, batch: int, samples: np.ndarray, wall: float, paper: dict[str, Any] | None,
            flops: dict[str, int], peaks: dict[str, float]) -> CaseResult:  # fmt: skip
    p50, p90, p99 = percentile_values(samples, PERCENTILES)
    if p50 is None or p90 is None or p99 is None:
        raise ValueError(f"{spec.name}, batch {batch}: no timed calls")
    thr = batch * len(samples) / wall
    res = CaseResult(name=spec.name, label=spec.label or spec.backend, backend=spec.backend, precision=spec.precision, graph=spec.graph, device=device,
                     batch=batch, calls=len(samples), p50_ms=p50, p90_ms=p90, p99_ms=p99, mean_ms=float(samples.mean()),
                     per_window_us=p50 / batch * 1e3, windows_per_s=thr, samples_ms=[float(s) for s in samples])  # fmt: skip
    if paper:
        res.x_paper_latency = paper["p50_ms"] / p50  # a median against a median
        res.x_paper_throughput = thr * paper["mean_ms"] / 1e3  # totals over wall time against the mean
    peak = peaks.get(spec.precision) or peaks.get("fp32")
    if peak:  # the case's own graph: the folded one does half the arithmetic of the network
        res.floor_fraction = (flops.get(spec.graph, flops["reference"]) / peak) / (p50 / batch / 1e3)
    return res


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return f"<array {obj.shape}>"
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def format_table(report: dict[str, Any]) -> str:
    """The report as a readable table (Markdown)."""
    lines = []
    m = report["machine"]
    where = m.get("gpu") or m.get("cpu")
    lines.append(f"machine: {where} ({m.get('cpu_count')} CPUs), torch {m.get('torch')}, "
                 f"onnxruntime {m.get('onnxruntime')}, tensorrt {m.get('tensorrt')}")  # fmt: skip
    lb, la = report.get("load_before"), report.get("load_after")
    if lb:
        lines.append(f"load average (1/5/15 min): before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}"
                     + (f", after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}" if la else ""))  # fmt: skip
    if report.get("loaded") and lb:
        lines.append(f"**taken under load** (1-min load {lb[0]:.2f} >= {report['quiet_load']} before the run): "
                     "not comparable with a quiet machine's figures; use --wait-quiet")  # fmt: skip
    paper = report.get("paper_way")
    if paper:
        lines.append(f"paper's way ({paper['how']}): mean {paper['mean_ms']:.3f} ms, p50 {paper['p50_ms']:.3f} ms "
                     f"over {paper['calls']} calls on {paper['device']}")  # fmt: skip
    lines.append(f"paper's published figure: {PAPER_PUBLISHED_MS:g} ms per 75-frame window (batch 1, "
                 "time.time() with host copies, averaged; its GPU not stated)")  # fmt: skip
    flops = report["flops_per_window"]
    lines.append(
        f"FLOPs per window: network {flops['reference'] / 1e6:.1f} M, folded graph {flops['folded'] / 1e6:.1f} M"
    )
    for d, p in report.get("peak_flops", {}).items():
        lines.append(f"measured peak {d}: {p / 1e9:.1f} GFLOP/s -> floor {flops['reference'] / p * 1e3:.3f} ms per window "
                     f"(network), {flops['folded'] / p * 1e3:.3f} ms (folded graph)")  # fmt: skip
    lines.append("")
    lines.append(
        "| case | precision | graph | batch | p50 ms | p90 ms | p99 ms | us/window | windows/s | x paper (lat) | x paper (thr) | floor/actual |"
    )
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in report["cases"]:

        def f(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        lines.append(f"| {c['label']} | {c['precision']} | "
                     f"{c['graph']} | {c['batch']} | {c['p50_ms']:.3f} | {c['p90_ms']:.3f} | {c['p99_ms']:.3f} | "
                     f"{c['per_window_us']:.1f} | {c['windows_per_s']:,.0f} | {f(c['x_paper_latency'], '.1f')} | "
                     f"{f(c['x_paper_throughput'], '.1f')} | {f(c['floor_fraction'], '.0%')} |")  # fmt: skip
    if report.get("errors"):
        lines.append("")
        lines.extend(f"not measured: {k}: {v}" for k, v in report["errors"].items())
    return "\n".join(lines)


def plot_histogram(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Latency histograms, one panel per batch size, one curve per case; the paper's mean as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    cases = report["cases"]
    batches = sorted({c["batch"] for c in cases})
    fig, axes = plt.subplots(len(batches) or 1, 1, figsize=(8, 2.4 * max(1, len(batches))), squeeze=False)
    paper = report.get("paper_way")
    for ax, b in zip(axes[:, 0], batches, strict=True):
        sel = [c for c in cases if c["batch"] == b]
        lo = min(min(c["samples_ms"]) for c in sel)
        hi = max(max(c["samples_ms"]) for c in sel)
        if paper and b == 1:
            lo, hi = min(lo, paper["p50_ms"]), max(hi, paper["mean_ms"])
        bins = np.geomspace(max(lo * 0.9, 1e-4), hi * 1.1, 60)
        for c in sel:
            ax.hist(c["samples_ms"], bins=bins, histtype="step", label=c["name"], density=True)
        if paper and b == 1:
            ax.axvline(paper["mean_ms"], color="k", linestyle="--", label="paper's way (mean)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=6)
        ax.set_title(f"batch {b}: latency per call", fontsize=9)
        ax.set_xlabel("ms")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.bench ...`` is ``pmr bench ...``."""
    import sys

    from pmr_stream.cli import main as pmr_main

    return pmr_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
