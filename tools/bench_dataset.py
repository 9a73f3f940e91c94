"""Throughput of ``pmr anonymize`` over a whole dataset, end to end (start-up included).

    python -m tools.bench_dataset                       # 300 files, --workers 1 and 2, JSON + table
    python -m tools.bench_dataset --files 500 --workers 2 --json out/bench_dataset.json

Builds a dataset folder in a temporary directory from the real NTU samples (``../shared/data/ntu``
or ``$PMR_NTU_DIR``; copies, under made-up NTU names so the pseudonym names are exercised),
replicated to ``--files`` files, and times the real command (``python -m pmr_stream.cli
anonymize --input DIR --output OUT``, default mode and bones) as a subprocess from start to exit,
once per ``--workers`` value. Reports frames, seconds, frames/s, the command's own figure (which
leaves out the interpreter's start-up), the CPU seconds of the command and its workers, the
engine's own windows/s measured just before and after the run (the ONNX Runtime engine alone at
batch 256: with the default model's graph it bounds what any run can do; frames/s over it says how
close a run comes) and the load average before and after: a run that starts
above ``--quiet-load`` is marked ``loaded`` (other work on the machine; figures are then lower
bounds). ``--profile`` also runs one in-process pass under cProfile and prints where time goes
(parsing, windows, engine, bones, writing). Nothing is written into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable, as package `tools`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tools  # noqa: F401

    __package__ = "tools"

from pmr_stream.samples import ntu_sample_files  # noqa: E402

_RATE_RE = re.compile(r"anonymized (\d+) file\(s\), (\d+) frames .* in ([0-9.]+) s")


def build_dataset(folder: Path, files: int, samples: Sequence[Path]) -> int:
    """``files`` copies of ``samples`` under distinct NTU names in ``folder``; returns their frames."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = 0
    counts = {s: int(s.read_text().split("\n", 1)[0]) for s in samples}
    for i in range(files):
        src = samples[i % len(samples)]
        setup, camera, performer = 1 + i % 17, 1 + i % 3, 1 + (i // 3) % 40
        name = f"S{setup:03d}C{camera:03d}P{performer:03d}R{1 + i % 2:03d}A{1 + i % 60:03d}.skeleton"
        sub = folder / f"S{setup:03d}"
        sub.mkdir(exist_ok=True)
        shutil.copyfile(src, sub / name)
        frames += counts[src]
    return frames


def time_command(data: Path, out: Path, workers: int, extra: Sequence[str]) -> dict[str, Any]:
    """One end-to-end run of ``pmr anonymize`` on ``data``."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pmr_stream.cli", "anonymize", "--input", str(data), "--output", str(out),
           "--workers", str(workers), "--quiet", "--keep-dir-names", *extra]  # fmt: skip
    env = dict(os.environ, PMR_STREAM_KEY=str(data.parent / "key"))
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = _RATE_RE.search(p.stdout)
    files, frames, inner = (int(m[1]), int(m[2]), float(m[3])) if m else (0, 0, float("nan"))
    return {"workers": workers, "rc": p.returncode, "files": files, "frames": frames, "wall_s": round(wall, 2),
            "frames_per_s": round(frames / wall, 1) if wall > 0 else 0.0,
            "cpu_s": round(cpu, 2), "frames_per_cpu_s": round(frames / cpu, 1) if cpu > 0 else 0.0,
            "inner_s": inner, "inner_frames_per_s": round(frames / inner, 1) if inner > 0 else 0.0,
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "stderr_tail": p.stderr[-400:] if p.returncode else ""}  # fmt: skip


def engine_rate(seconds: float = 3.0) -> float:
    """Windows/s of the engine alone now (ONNX Runtime, batch 256, as the runs use it): the yardstick
    the runs are measured against (with the default model: about 1,650 on the quiet 2-core machine)."""
    import numpy as np

    from pmr_stream.backends import get_backend

    be = get_backend("onnxruntime", device="cpu", spin=False)
    w = (np.random.default_rng(0).standard_normal((256, 75, 25, 3)) * 0.1).astype(np.float32)
    be.anonymize(w)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        be.anonymize(w)
        n += len(w)
    rate = n / (time.perf_counter() - t0)
    be.close()
    return rate


def profile(data: Path, out: Path) -> str:
    """Where an in-process run's time goes (cProfile, cumulative, the project's functions)."""
    import cProfile
    import io
    import pstats

    from pmr_stream.cli import main

    shutil.rmtree(out, ignore_errors=True)
    os.environ["PMR_STREAM_KEY"] = str(data.parent / "key")
    pr = cProfile.Profile()
    pr.enable()
    main(["anonymize", "--input", str(data), "--output", str(out), "--quiet", "--keep-dir-names"])
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(r"pmr_stream|onnxruntime", 30)
    return buf.getvalue()


def table(report: dict[str, Any]) -> str:
    rows = ["| workers | files | frames | wall s (incl. start-up) | frames/s | frames/s (after start-up) "
            "| CPU s (all processes) | engine windows/s meanwhile | frames per engine window | load |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["runs"]:
        rows.append(f"| {r['workers']} | {r['files']} | {r['frames']} | {r['wall_s']:.1f} | "
                    f"**{r['frames_per_s']:,.0f}** | {r['inner_frames_per_s']:,.0f} | {r['cpu_s']:.1f} | "
                    f"{r['engine_windows_per_s']:,.0f} | {r['frames_per_engine_window']:.2f} | "
                    f"{r['load_before']:.2f} -> {r['load_after']:.2f} |")  # fmt: skip
    mark = " (taken under load: other work on the machine)" if report["loaded"] else ""
    return "\n".join(rows) + f"\n\ntarget >= {report['target']:,} frames/s{mark}"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=300, help="files in the dataset (default 300)")
    ap.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="--workers values to time (default 1 2)"
    )
    ap.add_argument("--samples", default=None, help="folder of .skeleton samples (default: the NTU samples)")
    ap.add_argument("--json", default=None, help="also write the report here")
    ap.add_argument(
        "--quiet-load", type=float, default=0.5, help="load average above which a run is 'loaded'"
    )
    ap.add_argument("--profile", action="store_true", help="also print an in-process cProfile")
    ap.add_argument("extra", nargs="*", help="more `pmr anonymize` flags (after --)")
    args = ap.parse_args(argv)
    samples = ntu_sample_files(args.samples)
    if not samples:
        print("no .skeleton samples found (set $PMR_NTU_DIR)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pmr_bench_dataset_") as tmp:
        data = Path(tmp) / "data"
        frames = build_dataset(data, args.files, samples)
        runs = []
        for w in args.workers:
            before = engine_rate()
            run = time_command(data, Path(tmp) / f"out{w}", w, args.extra)
            run["engine_windows_per_s"] = round((before + engine_rate()) / 2, 1)  # around the run
            run["frames_per_engine_window"] = round(run["frames_per_s"] / run["engine_windows_per_s"], 3)
            runs.append(run)
        report = {"tool": "bench_dataset", "files": args.files, "frames": frames, "cpus": os.cpu_count(),
                  "samples": [s.name for s in samples], "target": 3000, "runs": runs,
                  "loaded": any(r["load_before"] >= args.quiet_load for r in runs),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        if args.profile:
            print(profile(data, Path(tmp) / "prof"))
    print(json.dumps(report, indent=2))
    print()
    print(table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
