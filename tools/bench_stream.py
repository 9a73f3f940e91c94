"""Benchmark of the streaming anonymizer (README "Streaming anonymizer").

    python -m tools.bench_stream quality                    # window policies vs offline, jitter
    python -m tools.bench_stream latency --duration 20      # 1 stream at 30 fps, capture -> subscriber
    python -m tools.bench_stream capacity --streams 30,60,90 --duration 20
    python -m tools.bench_stream capacity --device cuda --backend tensorrt --max-batch 1024 \
        --producers 6 --streams 120,500,1000                                            # GPU host

``latency`` and ``capacity`` run the real pipeline (``pmr stream --no-video``: producer,
anonymizer and recorder as separate processes on loopback) with synthetic 30 fps
producers and read what the recorder measured (capture timestamp -> anonymized frame
received) and the service's statistics. A run "holds" N streams when the p99 latency
stays under 100 ms, no anonymized frame is missing and the service's queue never grew
past one batch. ``quality`` runs the window policies in-process on the real
recordings (the demo clip and the NTU samples when present) against offline whole-clip
anonymization. Every result is printed as JSON (and written with ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.anonymizer.options import add_service_arguments
from pmr_stream.backends.options import add_backend_arguments, backend_kwargs
from pmr_stream.flags import forward_argv
from pmr_stream.stats import percentile_key

#: The service's figures each capacity row carries (``batch_size_p50``, ..., ``capture_to_publish_ms_p99``).
_SERVICE_FIGURES: tuple[str, ...] = (
    *(percentile_key("batch_size", q) for q in (50, 99)), "batch_size_max",
    *(percentile_key(name, q) for name in ("engine_ms_per_batch", "queue_wait_ms", "capture_to_publish_ms")
      for q in (50, 99)),
)  # fmt: skip


def _load() -> float:
    return os.getloadavg()[0]


def run_pipeline(source: str, duration: float, extra: Sequence[str] = ()) -> dict[str, Any]:
    """``pmr stream --no-video`` of ``source`` for ``duration`` s; ``extra``: its further flags."""
    with tempfile.TemporaryDirectory() as td:
        cmd = [sys.executable, "-m", "pmr_stream.cli", "stream", "--source", source, "--duration", str(duration),
               "--no-video", "--workdir", td, *extra]  # fmt: skip
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 180)
        if p.returncode != 0:
            raise RuntimeError(f"pipeline failed: {p.stdout[-2000:]} {p.stderr[-2000:]}")
        lat = json.loads((Path(td) / "latency.json").read_text())
        svc = json.loads((Path(td) / "service.json").read_text())
    return {"source": source, "duration_s": duration, "wall_s": round(time.monotonic() - t0, 1),
            "latency_ms_p50": lat["latency_ms_p50"], "latency_ms_p99": lat["latency_ms_p99"],
            "latency_ms_max": lat["latency_ms_max"], "received": lat["frames"], "service": svc}  # fmt: skip


def _service_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    add_service_arguments(p, skip=("--stats-json", "--report"))  # what `pmr stream` passes on


def _extra(args: argparse.Namespace) -> list[str]:
    """The backend and service flags given to the benchmark, for ``pmr stream``."""
    out = forward_argv(add_backend_arguments, args) + forward_argv(_service_arguments, args)
    return out + ["--producers", str(args.producers)]


def cmd_latency(args: argparse.Namespace) -> list[dict[str, Any]]:
    r = run_pipeline("synthetic:1", args.duration, _extra(args))
    return [{"case": "1 stream @ 30 fps", "load_before": args.load_before, **r}]


def cmd_capacity(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = []
    for n in [int(x) for x in args.streams.split(",")]:
        r = run_pipeline(f"synthetic:{n}", args.duration, _extra(args))
        svc = r["service"]
        holds = (r["latency_ms_p99"] is not None and r["latency_ms_p99"] < 100.0
                 and svc["published_frames"] == svc["frames_in"] == r["received"]
                 and svc["max_queue"] <= svc["max_batch"])  # fmt: skip
        row = {"streams": n, "holds": holds, "p50_ms": r["latency_ms_p50"], "p99_ms": r["latency_ms_p99"],
               "frames_in": svc["frames_in"], "published": svc["published_frames"], "received": r["received"],
               "windows_per_s": svc["windows_per_s"], "batch_size_mean": svc["batch_size_mean"],
               **{k: svc[k] for k in _SERVICE_FIGURES}, "max_queue": svc["max_queue"], "backend": svc["backend"]}  # fmt: skip
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def _recordings() -> list[tuple[str, np.ndarray]]:
    from pmr_stream.assets import DEMO_CLIP
    from pmr_stream.formats.io import load_recording
    from pmr_stream.samples import ntu_sample_files

    files = [Path(DEMO_CLIP), *ntu_sample_files()]
    out = []
    for f in files:
        rec = load_recording(f)
        for p in range(rec.num_persons):
            m = rec.present[:, p]
            if m.sum() >= 30:
                out.append((f"{f.stem}/p{p}", rec.joints[m, p].astype(np.float32)))
    return out


def cmd_quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    from pmr_stream.anonymizer.window import WindowOptions, WindowPolicy, WindowStore
    from pmr_stream.backends import get_backend
    from pmr_stream.offline import AnonymizeOptions, anonymize_track
    from pmr_stream.skeleton import retarget_bones

    b = get_backend(args.backend, **backend_kwargs(args))
    tracks = _recordings()
    lengths = b.source.dummy_bone_lengths() if args.bones == "dummy" else None
    opts = AnonymizeOptions(
        bones=args.bones, bone_lengths=None if lengths is None else tuple(float(v) for v in lengths)
    )

    def bones(y: np.ndarray) -> np.ndarray:  # the service's bone step (--bones dummy)
        return y if lengths is None else retarget_bones(y, lengths)

    def jitter(y: np.ndarray) -> float:  # mean |second difference| of the joints, mm per frame^2
        return float(1000 * np.linalg.norm(np.diff(y, 2, axis=0), axis=-1).mean())

    rows = []
    offline = {name: anonymize_track(x, b.anonymize, opts) for name, x in tracks}
    rows.append({"policy": "offline (whole clip, pmr anonymize default)", "added_latency_ms": None,
                 "diff_to_offline_mm": 0.0,
                 "jitter_mm": round(float(np.mean([jitter(offline[n]) for n, _ in tracks])), 2),
                 "input_jitter_mm": round(float(np.mean([jitter(x) for _, x in tracks])), 2)})  # fmt: skip
    for pol in args.policies.split(","):
        policy = WindowPolicy.parse(pol)
        diffs, jits = [], []
        for name, x in tracks:
            st = WindowStore(WindowOptions(policy=policy))
            outs: dict[int, np.ndarray] = {}
            for t in range(len(x)):
                due, _ = st.push("s", 0, t, x[t], t, t)
                assert due is not None
                for tag, o in st.resolve(due, b.anonymize(due.window[None])[0]):
                    assert o is not None  # None only for a failed window
                    outs[tag] = o
            for tag, o in st.drop(("s", 0)):
                assert o is not None
                outs[tag] = o
            y = bones(np.stack([outs[t] for t in range(len(x))]))
            diffs.append(float(1000 * np.linalg.norm(y - offline[name], axis=-1).mean()))
            jits.append(jitter(y))
        rows.append({"policy": policy.name, "added_latency_ms": round(policy.delay * 1000 / 30, 1),
                     "diff_to_offline_mm": round(float(np.mean(diffs)), 1),
                     "jitter_mm": round(float(np.mean(jits)), 2)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return [{"tracks": len(tracks), "frames": int(sum(len(x) for _, x in tracks)), "backend": b.name,
             "bones": args.bones}, *rows]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("latency", "capacity", "quality"):
        p = sub.add_parser(name)
        add_backend_arguments(p, "the service's ")
        _service_arguments(p)
        p.add_argument("--duration", type=float, default=20.0)
        p.add_argument("--streams", default="30,60,90")
        p.add_argument("--policies", default="last,delay:2,delay:4,delay:8,delay:15")
        p.add_argument("--json", default=None)
        p.add_argument(
            "--producers",
            type=int,
            default=1,
            help="capacity: split the synthetic streams over this many producer processes, each with its "
            "own sink (for a GPU host: one producer process publishes about 19,500 synthetic frames/s on one core, i.e. 650 streams)",
        )
        p.add_argument(
            "--max-load", type=float, default=0.8, help="wait (up to 5 min) for the load to drop below this"
        )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + 300
    while _load() >= args.max_load and time.monotonic() < deadline:
        time.sleep(5)
    args.load_before = round(_load(), 2)
    print(f"load average before: {args.load_before}", flush=True)
    rows = {"latency": cmd_latency, "capacity": cmd_capacity, "quality": cmd_quality}[args.cmd](args)
    result = {"cmd": args.cmd, "load_before": args.load_before, "host_cpus": os.cpu_count(), "rows": rows}
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
