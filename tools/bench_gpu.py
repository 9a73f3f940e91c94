"""Everything GPU-side of the engines issue in one run, under 5 minutes, results in one folder.

    python -m tools.bench_gpu OUTDIR                # from the repository root
    python tools/bench_gpu.py OUTDIR --budget 280   # same

Installs nothing. Uses what the host has: torch with CUDA (required), ONNX
Runtime's CUDA provider and TensorRT when present (each skipped with its
reason otherwise; exporting ONNX needs the ``onnx`` package). Writes to OUTDIR:

``env.json``        GPU, driver (nvidia-smi), torch/CUDA/ONNX Runtime/TensorRT versions
``parity.json``     every available GPU backend vs the PyTorch fp32 reference on CPU,
                    on random and recorded windows (fp32 < 1e-5, fp16 < 1e-2 relative)
``pytest.txt``      the ``gpu``/``tensorrt`` marked tests, when pytest is installed
``stream.json``     the streaming service's capacity on the GPU (``tools.bench_stream capacity``:
                    producers, anonymizer and sinks as processes on loopback), when pyzmq
                    is installed (a small wheel to carry) and time is left
``triton.json``     what Triton adds to one stream's latency (``tools.bench_triton``: the engine in
                    process and behind ``pmr serve``), when nvidia-pytriton and tritonclient are
                    installed (the triton extra) and time is left; else why it was skipped
``bench.json``      the full benchmark report (see tools/bench.py)
``bench.md``        the same as a table, with the paper's way and the floor
``bench.png``       latency histograms (when matplotlib is installed)
``summary.md``      where the GPU targets stand (batch-1 p50 < 50 us; >= 500,000 windows/s fp16)
``log.txt``         what happened, including skipped steps

Uses the shipped model and dummy when present, else a random-weights
checkpoint made here (speed does not depend on the weights; parity is
checked all the same). ``--device cpu`` dry-runs the whole script on a
machine without a GPU (CPU cases only), to check the script itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable, as package `tools`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tools  # noqa: F401  (the parent of the relative imports below)

    __package__ = "tools"

import numpy as np  # noqa: E402

log = logging.getLogger("bench_gpu")

BATCHES = (1, 8, 64, 256, 1024, 4096)
TARGET_B1_US = 50.0
TARGET_THROUGHPUT = 500_000.0


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n" if not isinstance(data, str) else data)


def environment(out: Path, device: str = "cuda") -> dict[str, Any]:
    from .bench import machine_info

    info = machine_info(device)
    info["modules"] = {m: _has(m) for m in ("onnx", "onnxruntime", "tensorrt", "matplotlib", "pytest")}
    if shutil.which("nvidia-smi"):
        res = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = res.stdout
    _write(out / "env.json", info)
    return info


def model_files(work: Path) -> tuple[str, str, str]:
    """(model path, dummy path, what they are): the shipped assets, or random weights made here."""
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL

    if DEFAULT_MODEL.is_file() and DEFAULT_DUMMY.is_file():
        return str(DEFAULT_MODEL), str(DEFAULT_DUMMY), "shipped model and dummy"
    import torch

    from pmr_stream.config import Config
    from pmr_stream.model.checkpoint import Checkpoint, save_checkpoint
    from pmr_stream.model.pmr import PMRModel

    torch.manual_seed(0)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "pmr_random.pt"
    save_checkpoint(
        model,
        Checkpoint(config=Config(), model_state=PMRModel().state_dict(), provenance={"model_id": "random"}),
    )
    dummy = work / "dummy.npy"
    from pmr_stream.samples import recorded_windows

    np.save(dummy, recorded_windows(1)[0][0])
    return str(model), str(dummy), "random weights (shipped assets absent), dummy = first recorded window"


def gpu_cases(facts: dict[str, bool], device: str = "cuda") -> list[Any]:
    from .bench import CaseSpec

    if device == "cpu":  # --device cpu: a dry run of this script on a machine without a GPU
        return [CaseSpec("torch", "fp32", g) for g in ("folded", "reference")] + [
            CaseSpec("onnxruntime", "fp32", "folded")
        ]
    cases = []
    for precision in ("fp32", "fp16"):
        for graph in ("folded", "reference"):
            cases.append(CaseSpec("torch", precision, graph, label="torch+cudagraph"))
    cases.append(CaseSpec("torch", "fp32", "folded", (("cuda_graphs", False),), label="torch eager"))
    if facts["onnxruntime_cuda"]:
        cases += [CaseSpec("onnxruntime", p, "folded", label="onnxruntime-cuda") for p in ("fp32", "fp16")]
    if facts["tensorrt"]:
        for precision in ("fp32", "fp16"):
            for graph in ("folded", "reference"):
                cases.append(CaseSpec("tensorrt", precision, graph, label="tensorrt+cudagraph"))
        cases.append(CaseSpec("tensorrt", "fp16", "folded", (("cuda_graphs", False),), label="tensorrt"))
    return cases


def parity(
    cases: list[Any], source: Any, cache: str, max_batch: int, deadline: float, device: str = "cuda"
) -> dict[str, Any]:
    import torch

    from pmr_stream.backends import get_backend
    from pmr_stream.backends.artifacts.onnx_export import reference_outputs, relative_error
    from pmr_stream.samples import recorded_windows

    tol = {"fp32": 1e-5, "fp16": 1e-2}
    rng = np.random.default_rng(1)
    real, origin = recorded_windows(16)
    inputs = {"random": (rng.standard_normal((7, 75, 25, 3)) * 0.3).astype(np.float32), "recorded": real}
    refs = {k: reference_outputs(source, v) for k, v in inputs.items()}
    results: dict[str, Any] = {"recorded_from": origin, "tolerance": tol, "cases": []}
    for spec in cases:
        row: dict[str, Any] = {
            "case": spec.label,
            "backend": spec.backend,
            "precision": spec.precision,
            "graph": spec.graph,
        }
        if time.monotonic() > deadline:
            row.update(skipped="time budget", passed=None)
            results["cases"].append(row)
            continue
        try:
            with get_backend(spec.backend, source=source, device=device, precision=spec.precision, graph=spec.graph,
                             cache_dir=cache, max_batch=max_batch, **dict(spec.options)) as b:  # fmt: skip
                for k, x in inputs.items():
                    row[f"{k}_numpy"] = relative_error(b.anonymize(x), refs[k])
                    xt = torch.from_numpy(x).to(device)
                    row[f"{k}_{device}_tensor"] = relative_error(b.anonymize(xt).cpu().numpy(), refs[k])
            row["passed"] = all(
                v < tol[spec.precision] for k, v in row.items() if k.endswith(("_numpy", "_tensor"))
            )
        except Exception as exc:  # noqa: BLE001 - report and go on
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["passed"] = False
            log.warning("parity %s %s %s: %s", spec.label, spec.precision, spec.graph, row["error"])
        results["cases"].append(row)
        log.info("parity %s", row)
    return results


def run_pytest(out: Path, timeout: float) -> None:
    if not _has("pytest"):
        (out / "pytest.txt").write_text("pytest is not installed on this host: GPU tests not run\n")
        return
    root = Path(__file__).resolve().parents[1]
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "gpu or tensorrt",
        "tests/backends",
        "tests/artifacts",
        "-p",
        "no:cacheprovider",
    ]
    try:
        res = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
        (out / "pytest.txt").write_text(
            f"$ {' '.join(cmd)}\nexit {res.returncode}\n{res.stdout}\n{res.stderr}"
        )
    except subprocess.TimeoutExpired:
        (out / "pytest.txt").write_text(f"$ {' '.join(cmd)}\ntimed out after {timeout:.0f} s\n")


def stream_capacity(out: Path, device: str, streams: str, timeout: float) -> None:
    """``tools.bench_stream capacity`` on this host's GPU, written to ``stream.json``."""
    if not (_has("zmq") and _has("msgpack")):
        _write(
            out / "stream.json", {"skipped": "pyzmq/msgpack are not installed (pip install pyzmq msgpack)"}
        )
        log.warning("stream capacity skipped: pyzmq or msgpack missing")
        return
    import os

    producers = max(1, min(8, (os.cpu_count() or 2) // 3))
    backend = "auto" if device != "cpu" else "onnxruntime"
    cmd = [sys.executable, "-m", f"{__package__}.bench_stream", "capacity", "--backend", backend, "--device", device,
           "--max-batch", "1024", "--producers", str(producers), "--streams", streams, "--duration", "10",
           "--max-load", "1000", "--json", str(out / "stream.json")]  # fmt: skip
    log.info("stream capacity: %s", " ".join(cmd[2:]))
    try:
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[1]
        )
        (out / "stream_log.txt").write_text(res.stdout[-20000:] + res.stderr[-20000:])
        if res.returncode != 0:
            log.error("stream capacity failed (exit %d); see stream_log.txt", res.returncode)
    except subprocess.TimeoutExpired:
        log.error("stream capacity ran past %.0f s", timeout)


def triton_latency(out: Path, device: str, timeout: float, seconds: float = 2.0) -> None:
    """``tools.bench_triton`` on this host (the best engine for ``device``), written to ``triton.json``."""
    missing = [m for m in ("pytriton", "tritonclient") if not _has(m)]
    if missing:
        reason = f"{', '.join(missing)} not installed (pip install -e '.[triton]')"
        _write(out / "triton.json", {"skipped": reason})
        log.warning("triton step skipped: %s", reason)
        return
    cmd = [sys.executable, "-m", f"{__package__}.bench_triton", "--backend", "auto", "--device", device,
           "--batch-sizes", "1,64", "--queue-delays-us", "0,500", "--seconds", str(seconds), "--json", str(out / "triton.json")]  # fmt: skip
    log.info("triton: %s", " ".join(cmd[2:]))
    try:
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[1]
        )
        (out / "triton_log.txt").write_text(res.stdout[-20000:] + res.stderr[-20000:])
        if res.returncode != 0:
            log.error("triton step failed (exit %d); see triton_log.txt", res.returncode)
    except subprocess.TimeoutExpired:
        log.error("triton step ran past %.0f s", timeout)


def summary(report: dict[str, Any], par: dict[str, Any], what: str) -> str:
    cases = report["cases"]
    lines = ["# GPU benchmark summary", "", f"model: {what}", f"GPU: {report['machine'].get('gpu')}", ""]
    b1 = [c for c in cases if c["batch"] == 1]
    if b1:
        best = min(b1, key=lambda c: c["p50_ms"])
        us = best["p50_ms"] * 1e3
        lines.append(f"- batch-1 p50: best {us:.1f} us ({best['name']}); target < {TARGET_B1_US:.0f} us: "
                     f"{'MET' if us < TARGET_B1_US else 'NOT MET'}")  # fmt: skip
    fp16 = [c for c in cases if c["precision"] == "fp16"]
    if fp16:
        best = max(fp16, key=lambda c: c["windows_per_s"])
        lines.append(f"- fp16 throughput: best {best['windows_per_s']:,.0f} windows/s ({best['name']}, batch {best['batch']}); "
                     f"target >= {TARGET_THROUGHPUT:,.0f}: {'MET' if best['windows_per_s'] >= TARGET_THROUGHPUT else 'NOT MET'}")  # fmt: skip
    paper = report.get("paper_way")
    if paper:
        lines.append(
            f"- the paper's way on this GPU: mean {paper['mean_ms']:.3f} ms per window (p50 {paper['p50_ms']:.3f} ms)"
        )
    ok = sum(1 for c in par.get("cases", []) if c.get("passed"))
    lines.append(f"- parity: {ok}/{len(par.get('cases', []))} GPU cases within tolerance (parity.json)")
    lines += ["", "## Table", "", report["table"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="folder for every result file")
    ap.add_argument("--budget", type=float, default=270.0, help="seconds for the whole run (default 270)")
    ap.add_argument("--seconds", type=float, default=0.4, help="timed seconds per case and batch size")
    ap.add_argument("--batch-sizes", default=",".join(map(str, BATCHES)))
    ap.add_argument(
        "--cache-dir", default=None, help="artifact cache (default OUTDIR/cache; reuse exported ONNX here)"
    )
    ap.add_argument("--no-pytest", action="store_true")
    ap.add_argument(
        "--stream-streams",
        default="120,480",
        help="streams per capacity point of the stream step ('' skips it)",
    )
    ap.add_argument(
        "--device", default="cuda", help="cuda (default); cpu only to dry-run this script without a GPU"
    )
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.FileHandler(out / "log.txt", mode="w"), logging.StreamHandler()])  # fmt: skip
    import torch

    if args.device != "cpu" and not torch.cuda.is_available():
        log.error("torch %s sees no CUDA GPU: nothing to do here", torch.__version__)
        _write(out / "env.json", {"error": "no CUDA", "torch": torch.__version__})
        return 2
    from pmr_stream.backends import BackendOptions, load_source, unavailable_reason

    from .bench import BenchOptions, parse_batch_sizes, run_bench

    env = environment(out, args.device)
    cache = args.cache_dir or str(out / "cache")
    model, dummy, what = model_files(out / "work")
    source = load_source(BackendOptions(model_path=model, dummy=dummy))
    batches = parse_batch_sizes(args.batch_sizes)
    facts = {
        "onnxruntime_cuda": unavailable_reason("onnxruntime", device="cuda") is None,
        "tensorrt": unavailable_reason("tensorrt", device="cuda") is None,
    }
    for name in ("onnxruntime", "tensorrt"):
        reason = unavailable_reason(name, device="cuda")
        if reason:
            log.warning("%s on CUDA skipped: %s", name, reason)
    env["backends"] = {k: v for k, v in facts.items()}
    _write(out / "env.json", env)
    cases = gpu_cases(facts, args.device)
    par: dict[str, Any] = {}
    try:  # builds the TensorRT engines too (timed in their metadata); the benchmark reuses them
        par = parity(cases, source, cache, max(batches), deadline=t0 + args.budget * 0.5, device=args.device)
    except Exception:  # noqa: BLE001
        log.error("parity failed:\n%s", traceback.format_exc())
    _write(out / "parity.json", par)
    log.info("parity done at %.0f s", time.monotonic() - t0)
    left = args.budget * 0.85 - (time.monotonic() - t0)
    per_case = len(cases) * len(batches) * (args.seconds + 0.3) + 20
    seconds = args.seconds if per_case < left else max(0.05, args.seconds * left / per_case)
    opts = BenchOptions(device=args.device, batch_sizes=batches, cases=tuple(cases), model_path=model, dummy=dummy,
                        seconds=seconds, min_calls=10, cache_dir=cache, json_path=str(out / "bench.json"),
                        table_path=str(out / "bench.md"),
                        histogram_path=str(out / "bench.png") if _has("matplotlib") else None)  # fmt: skip
    report = run_bench(opts)
    (out / "summary.md").write_text(summary(report, par, what))
    print(report["table"])
    left = args.budget - (time.monotonic() - t0)
    if args.stream_streams and left > 90:
        n_points = len(args.stream_streams.split(","))
        stream_capacity(out, args.device, args.stream_streams, timeout=min(left - 40, 40.0 * n_points + 30))
        log.info("stream capacity done at %.0f s", time.monotonic() - t0)
    elif args.stream_streams:
        _write(out / "stream.json", {"skipped": f"time budget: {left:.0f} s left"})
    left = args.budget - (time.monotonic() - t0)
    if left > 90:
        # 2 s per case on a GPU host; a dry run (--seconds 0.05) only checks that the step works
        triton_latency(
            out, args.device, timeout=min(left - 40, 120.0), seconds=min(2.0, max(0.2, 5 * args.seconds))
        )
        log.info("triton done at %.0f s", time.monotonic() - t0)
    else:
        _write(out / "triton.json", {"skipped": f"time budget: {left:.0f} s left"})
    left = args.budget - (time.monotonic() - t0)
    if args.no_pytest:
        pass
    elif left > 30:
        run_pytest(out, timeout=left - 5)
        log.info("pytest done at %.0f s", time.monotonic() - t0)
    else:
        (out / "pytest.txt").write_text(f"not run: {left:.0f} s of the time budget left\n")
    log.info("finished in %.0f s; results in %s", time.monotonic() - t0, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
