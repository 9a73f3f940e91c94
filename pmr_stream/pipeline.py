"""One command for the whole streaming pipeline on loopback: ``pmr stream`` / ``run_stream.py``.

Four processes, each a ``pmr`` command of its own:

* ``produce``: the source (default: a Kinect replay of the shipped demo clip) on ``raw/``
  (``--producers K`` with ``synthetic:N``: K producer processes sharing the N streams, each
  with its own sink, for load tests on hosts with more cores);
* ``anonymizer``: ``raw/`` -> windows -> backend -> ``anon/`` (:mod:`pmr_stream.service`);
* ``record`` of ``raw/`` (only for the side-by-side video);
* the anonymized-stream sink (``python -m pmr_stream.pipeline sink``): records ``anon/``
  and every frame's latency from the producer's capture timestamp to its arrival.

When the replay ends (or on Ctrl-C) the producer sends its stream end, the others stop
when every stream they saw has ended, the two recordings are rendered side by side
(original | anonymized) and a latency summary is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.assets import DEMO_CLIP

DEFAULT_SOURCE = f"kinect:{DEMO_CLIP}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- the sink process


def run_sink(endpoint: str, topics: Sequence[str], output: Path, latency_json: Path, duration_s: float | None) -> int:
    """Record ``topics`` until every stream ended; write capture->arrival latencies as JSON
    (percentiles) and, beside it, every frame's latency in ms as ``.npy`` (for merging)."""
    import gc

    from pmr_stream.sinks.recorder import Recorder
    from pmr_stream.wire.schema import FrameMessage, StreamEnd
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    lat: list[float] = []
    gc.freeze()  # what is loaded stays; full collections over it would show up as latency
    with Subscriber(endpoint, list(topics)) as sub, stop_on_signals() as stop:
        rec = Recorder(sub)
        t_end = None if duration_s is None else time.monotonic() + duration_s
        seen: dict[str, bool] = {}
        while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
            r = sub.receive(0.1)
            if r is None:
                continue
            rec.add(r)
            seen[r.message.stream] = isinstance(r.message, StreamEnd)
            if isinstance(r.message, FrameMessage):
                if not r.message.anonymized:  # pragma: no cover - the service never does this
                    print(f"sink: RAW frame on {r.topic}!", file=sys.stderr, flush=True)
                    return 3
                lat.append(r.latency_ms)
            if seen and all(seen.values()):
                break
        for q in sub.drain():
            rec.add(q)
        written = rec.save(output)
        drops = dict(sub.drops)
    a = np.asarray(lat, dtype=np.float64)
    np.save(latency_json.with_suffix(".npy"), a, allow_pickle=False)
    latency_json.write_text(json.dumps(_latency_summary(a, drops, [str(p) for p, _ in written]), indent=1))
    return 0 if written else 1


def _latency_summary(a: np.ndarray, drops: dict[str, int], files: list[str]) -> dict[str, Any]:
    """What ``latency.json`` holds: frame count, drops, files and p50/p99/max of ``a`` (ms)."""
    return {
        "frames": len(a), "drops": drops, "files": files,
        "latency_ms_p50": float(np.percentile(a, 50)) if len(a) else None,
        "latency_ms_p99": float(np.percentile(a, 99)) if len(a) else None,
        "latency_ms_max": float(a.max()) if len(a) else None,
    }  # fmt: skip


# ----------------------------------------------------------------------------- the launcher


def _spawn(name: str, args: list[str], logs: Path) -> tuple[str, subprocess.Popen[bytes], Any]:
    fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed by _finish
    p = subprocess.Popen([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT)
    return name, p, fh


def _stop(procs: list[tuple[str, subprocess.Popen[bytes], Any]], timeout_s: float) -> None:
    for _, p, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    for _, p, _ in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@dataclass(frozen=True)
class _Group:
    """One producer process and the sink of its streams."""

    source: str
    stream: str
    topics: tuple[str, ...]  # the sink's subscriptions
    seed: int
    raw_ep: str


def _groups(args: argparse.Namespace) -> list[_Group]:
    """Split the source over ``args.producers`` producer processes (``synthetic:N`` only)."""
    k = args.producers
    if k < 1:
        raise ValueError(f"--producers must be >= 1, got {k}")
    if k == 1:
        return [_Group(args.source, args.stream, ("anon/",), 0, f"tcp://127.0.0.1:{free_port()}")]
    from pmr_stream.capture.producer import parse_source
    from pmr_stream.capture.synthetic import stream_ids

    spec = parse_source(args.source)
    n = int(spec.arg) if spec.kind == "synthetic" else 0
    if n < k:
        raise ValueError(f"--producers {k} splits a synthetic:N source with N >= {k} streams, not {args.source!r}")
    if not args.no_video or args.max_frames:
        raise ValueError("--producers > 1 is for load tests: add --no-video, and limit the run with --duration")
    out = []
    for i in range(k):
        n_i = n // k + (i < n % k)
        stream = f"{args.stream}.p{i}"
        topics = tuple(f"anon/{sid}" for sid in stream_ids(n_i, stream))
        out.append(_Group(f"synthetic:{n_i}", stream, topics, i * n, f"tcp://127.0.0.1:{free_port()}"))
    return out


def _merge_latency(work: Path, parts: list[Path]) -> None:
    """The sinks' latencies as one ``latency.json`` (percentiles over every frame of every sink)."""
    summaries = [json.loads(p.read_text()) for p in parts if p.exists()]
    samples = [np.load(p.with_suffix(".npy"), allow_pickle=False) for p in parts if p.with_suffix(".npy").exists()]
    a = np.concatenate(samples) if samples else np.zeros(0)
    drops: dict[str, int] = {}
    for d in summaries:
        for reason, count in d["drops"].items():
            drops[reason] = drops.get(reason, 0) + count
    merged = _latency_summary(a, drops, [f for d in summaries for f in d["files"]]) | {"sinks": len(parts)}
    (work / "latency.json").write_text(json.dumps(merged, indent=1))


def run_pipeline(args: argparse.Namespace) -> int:
    """Run producer, anonymizer and subscribers as separate processes; render; summarise."""
    work = Path(args.workdir)
    groups = _groups(args)
    work.mkdir(parents=True, exist_ok=True)
    for old in [*work.glob("*.npz"), *work.glob("latency*.json"), *work.glob("latency*.npy")]:
        old.unlink()
    raw_ep = groups[0].raw_ep
    anon_ep = f"tcp://127.0.0.1:{free_port()}"
    # the others start first and wait for the producer: their safety limit runs longer
    limit = ["--duration", str(args.duration + 60)] if args.duration else []
    cli = ["-m", "pmr_stream.cli"]
    backend = ["--backend", args.backend, "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    backend += (["--device", args.device] if args.device else []) + (["--threads", str(args.threads)] if args.threads else [])
    backend += ["--spin"] if args.spin else []
    backend += ["--metrics-port", str(args.metrics_port)] if args.metrics_port is not None else []
    backend += ["--bones", args.bones] + (["--engine-thread"] if args.engine_thread else [])
    one = len(groups) == 1
    sink_json = [work / ("latency.json" if one else f"latency.p{i}.json") for i in range(len(groups))]
    procs = []
    for i, g in enumerate(groups):
        topics = [a for t in g.topics for a in ("--topic", t)]
        procs.append(_spawn("sink" if one else f"sink.p{i}",
                            ["-m", "pmr_stream.pipeline", "sink", "--endpoint", anon_ep, *topics, "--output",
                             str(work / ("anon.npz" if one else f"anon.p{i}.npz")), "--latency-json", str(sink_json[i]),
                             *limit], work))  # fmt: skip
    if not args.no_video:
        procs.append(_spawn("raw_recorder", [*cli, "record", "--endpoint", raw_ep, "--topic", "raw/",
                                             "--output", str(work / "raw.npz"), "--until-end", *limit], work))  # fmt: skip
    raws = [a for g in groups for a in ("--raw", g.raw_ep)]
    n_subs = sum(len(g.topics) for g in groups)  # ZeroMQ counts one subscription per sink and topic
    procs.append(_spawn("anonymizer", [*cli, "anonymizer", *raws, "--anon", anon_ep, *backend,
                                       "--policy", args.policy, "--wait-subscribers", str(n_subs), "--until-end",
                                       "--stats-json", str(work / "service.json"), "--report", "5", *limit], work))  # fmt: skip
    producers = []
    for i, g in enumerate(groups):
        producer_args = [*cli, "produce", "--source", g.source, "--endpoint", g.raw_ep, "--stream", g.stream,
                         "--wait-subscribers", str(1 if args.no_video else 2), "--wait-timeout", "120", "--report", "0"]  # fmt: skip
        producer_args += ["--seed", str(g.seed)] if g.seed else []
        if args.max_frames:
            producer_args += ["--max-frames", str(args.max_frames)]
        if args.duration:
            producer_args += ["--duration", str(args.duration)]
        producers.append(_spawn("producer" if one else f"producer.p{i}", producer_args, work))
    procs = producers + procs
    src = args.source if one else f"{args.source} ({len(groups)} producers)"
    print(f"pipeline: {src} -> {raw_ep if one else 'one endpoint each'} (raw/) -> anonymizer [{args.backend}, "
          f"{args.policy}] -> {anon_ep} (anon/) -> recorder; logs in {work}/ (Ctrl-C stops)", flush=True)  # fmt: skip
    interrupted = False
    try:
        while any(p.poll() is None for _, p, _ in producers):
            if any(p.poll() not in (None, 0) for _, p, _ in procs):
                break
            time.sleep(0.1)
        # the replay ended: the others stop by themselves once they saw the stream end
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(p.poll() is None for _, p, _ in procs):
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the pipeline", flush=True)
        for _, p, _ in producers:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for _, p, _ in producers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        time.sleep(0.5)
    finally:
        _stop(procs, 15)
        for _, _, fh in procs:
            fh.close()
    bad = [(n, p.returncode) for n, p, _ in procs if p.returncode not in (0, -signal.SIGINT)]
    if bad:
        for n, _ in bad:
            print(f"--- {n} failed; its log ends:\n{_tail(work / f'{n}.log')}", file=sys.stderr, flush=True)
        return 1
    if not one:
        _merge_latency(work, sink_json)
    lat = json.loads((work / "latency.json").read_text()) if (work / "latency.json").exists() else {}
    svc = json.loads((work / "service.json").read_text()) if (work / "service.json").exists() else {}
    anon_files = lat.get("files") or []
    if not anon_files:
        print("no anonymized frame arrived", file=sys.stderr, flush=True)
        return 1
    print(f"anonymized {svc.get('published_frames')} of {svc.get('frames_in')} frames "
          f"(failed {svc.get('failed') or 0}, out of date {svc.get('out_of_date')}) with {svc.get('backend')} "
          f"{svc.get('model_id')}, policy {svc.get('policy')}, batches {svc.get('batches')}", flush=True)  # fmt: skip
    p50, p99 = lat.get("latency_ms_p50"), lat.get("latency_ms_p99")
    eng = svc.get("engine_ms_per_batch_p50_p99") or [None, None]
    print(f"latency capture -> anonymized frame received: p50 {p50:.2f} ms, p99 {p99:.2f} ms over "
          f"{lat['frames']} frames (engine per batch p50 {eng[0]} ms, p99 {eng[1]} ms)", flush=True)  # fmt: skip
    if args.no_video:
        print(f"anonymized recording: {Path(anon_files[0]).resolve()}", flush=True)
        return 0
    from pmr_stream.cli import main as pmr_main

    raw_file = work / "raw.npz"
    if not raw_file.exists():
        print("the raw recording is missing; no video", file=sys.stderr, flush=True)
        return 1
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    rc = pmr_main(["compare", "--original", str(raw_file), "--anonymized", anon_files[0], "--output", str(out),
                   "--width", str(args.width), "--height", str(args.height)])  # fmt: skip
    if rc == 0:
        print(f"{'interrupted; ' if interrupted else ''}side-by-side video (original | anonymized): {out.resolve()}",
              flush=True)  # fmt: skip
    return rc


def add_stream_arguments(p: argparse.ArgumentParser) -> None:
    from pmr_stream.window import POLICY_HELP

    p.add_argument("--source", default=DEFAULT_SOURCE,
                   help="kinect:FILE, video:FILE, webcam:0, synthetic (default: the built-in demo recording)")
    p.add_argument("--stream", default="demo", help="stream id (default demo)")
    p.add_argument("--producers", type=int, default=1,
                   help="load tests: split a synthetic:N source over this many producer processes, each with its "
                        "own sink (needs --no-video and --duration; for hosts with more cores)")
    p.add_argument("--backend", default="auto", help="torch, onnxruntime, tensorrt or auto (default)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the backend's choice)")
    p.add_argument("--policy", default="last", help=f"window policy: {POLICY_HELP}; default last")
    p.add_argument("--max-batch", type=int, default=128, help="anonymizer: most windows per engine call")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="anonymizer: longest wait for a batch to fill (default 5 ms)")
    p.add_argument("--threads", type=int, default=None, help="anonymizer: CPU threads per engine call")
    p.add_argument("--spin", action=argparse.BooleanOptionalAction, default=False,
                   help="anonymizer: onnxruntime threads spin when idle (default: they sleep)")
    p.add_argument("--bones", choices=("dummy", "model"), default="dummy",
                   help="anonymizer: dummy (default) sets every output bone to the dummy's length; model: as the network gives")
    p.add_argument("--engine-thread", action="store_true", help="anonymizer: run the engine in its own thread")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="anonymizer: serve /metrics (Prometheus text) and /stats.json on this loopback port")  # fmt: skip
    p.add_argument("--output", default="out/stream_demo.mp4", help="side-by-side video (.mp4/.gif)")
    p.add_argument("--workdir", default="out/stream", help="recordings, stats and logs of the run")
    p.add_argument("--max-frames", type=int, default=None, help="stop the source after this many frames")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (webcam)")
    p.add_argument("--no-video", action="store_true", help="record only, no side-by-side video")
    p.add_argument("--width", type=int, default=480, help="panel width of the video (default 480)")
    p.add_argument("--height", type=int, default=360, help="panel height of the video (default 360)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pmr_stream.pipeline")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink", help="record anon/ and the capture->arrival latency (used by the pipeline)")
    s.add_argument("--endpoint", required=True)
    s.add_argument("--topic", action="append", default=None, help="topic (repeatable; default anon/)")
    s.add_argument("--output", required=True)
    s.add_argument("--latency-json", required=True)
    s.add_argument("--duration", type=float, default=None)
    r = sub.add_parser("run", help="the whole pipeline (same as pmr stream)")
    add_stream_arguments(r)
    args = parser.parse_args(argv)
    if args.cmd == "sink":
        return run_sink(args.endpoint, args.topic or ["anon/"], Path(args.output), Path(args.latency_json), args.duration)
    return run_pipeline(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
