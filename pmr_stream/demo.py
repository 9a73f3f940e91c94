"""One command for the whole streaming pipeline on loopback: ``pmr stream`` / ``run_stream.py``.

Four processes, each a ``pmr`` command of its own:

* ``produce``: the source (default: a Kinect replay of the shipped demo clip) on ``raw/``
  (``--producers K`` with ``synthetic:N``: K producer processes sharing the N streams, each
  with its own sink, for load tests on hosts with more cores);
* ``anonymizer``: ``raw/`` -> windows -> backend -> ``anon/`` (:mod:`pmr_stream.anonymizer.service`);
* ``record`` of ``raw/`` (only for the side-by-side video);
* the anonymized-stream sink (:mod:`pmr_stream.sinks.latency`): records ``anon/``
  and every frame's latency from the producer's capture timestamp to its arrival.

With ``--curve`` (a fresh key set in ``WORKDIR/curve/``, :func:`make_stream_keys`) or
``--curve-keys DIR`` every link is CurveZMQ: each process has its own key pair, and each
binding side admits only the keys of its clients (:class:`StreamKeys`).

When the replay ends (or on Ctrl-C) the producer sends its stream end, the others stop
when every stream they saw has ended, the two recordings are rendered side by side
(original | anonymized) and a latency summary is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.anonymizer.options import add_service_arguments
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.backends.options import add_backend_arguments
from pmr_stream.capture.sources import add_source_arguments
from pmr_stream.flags import forward_argv
from pmr_stream.sinks.latency import latency_summary
from pmr_stream.wire.curve import generate_keypair, load_key_file
from pmr_stream.wire.privacy import StreamIds, add_stream_id_arguments, stream_ids_from_args
from pmr_stream.wire.sockets import restore_ctrl_c

DEFAULT_SOURCE = f"replay:{DEMO_CLIP}"
#: The anonymizer's flags the demo sets itself (it reads the stats file and prints its own lines).
_DEMO_SETS: tuple[str, ...] = ("--stats-json", "--report")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- the launcher


def _spawn(name: str, args: list[str], logs: Path) -> tuple[str, subprocess.Popen[bytes], Any]:
    fh = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed by run_pipeline once the process is stopped
    p = subprocess.Popen([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT)
    return name, p, fh


def _stop(procs: list[tuple[str, subprocess.Popen[bytes], Any]], timeout_s: float) -> set[str]:
    """Ctrl-C every process still running, kill those that do not stop in time; the names signalled."""
    signalled = set()
    for name, p, _ in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            signalled.add(name)
    deadline = time.monotonic() + timeout_s
    for _, p, _ in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return signalled


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _error_line(path: Path) -> str:
    """The line of a process's log that says what went wrong: its last ``error:`` line or exception
    line, else its last non-empty line."""
    lines = [ln.strip() for ln in _tail(path, 200).splitlines() if ln.strip()]
    for ln in reversed(lines):
        if (
            " error: " in ln
            or ln.startswith(("error:", "ERROR "))
            or re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)
        ):
            return ln
    return lines[-1] if lines else "(its log is empty)"


# ----------------------------------------------------------------------------- checks before anything starts


def check_source(source: str) -> None:
    """Open ``--source`` the way the producer will, and close it again (a file must exist and
    parse, a camera must open); ``ValueError`` naming the source and what is wrong."""
    from pmr_stream.capture.sources import parse_source

    spec = parse_source(source)
    try:
        if spec.kind == "replay":
            from pmr_stream.capture.replay import RecordingReplay

            RecordingReplay(spec.arg).close()
        elif spec.kind in ("video", "webcam"):
            import cv2

            from pmr_stream.capture.pose import open_capture

            level = cv2.getLogLevel()
            cv2.setLogLevel(0)  # silent: OpenCV's own lines on a missing camera say less than ours
            try:
                open_capture(spec.device if spec.kind == "webcam" else spec.arg).release()
            finally:
                cv2.setLogLevel(level)
    except (OSError, ValueError, KeyError) as exc:
        msg = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"--source {source}: {msg}") from exc


def check_backend(backend: str, device: str | None, triton_url: str | None = None) -> None:
    """``ValueError`` saying why ``--backend``/``--device`` (``--triton-url``) cannot run here (nothing is built)."""
    from pmr_stream.backends.registry import unavailable_reason

    if backend == "auto":  # auto always finds torch on the CPU; on CUDA it needs CUDA
        reason = unavailable_reason("torch", device=device) if device and device.startswith("cuda") else None
    else:
        options = {"device": device} if device else {}
        if triton_url is not None:
            options["triton_url"] = triton_url
        reason = unavailable_reason(backend, **options)
    if reason is not None:
        raise ValueError(f"--backend {backend}{f' --device {device}' if device else ''}: {reason}")


def check_port(port: int | None, flag: str) -> None:
    """``ValueError`` when loopback ``port`` (``None``/0: none or any) cannot be bound now."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ValueError(f"{flag} {port}: cannot bind 127.0.0.1:{port} ({exc.strerror or exc})") from exc


def preflight(args: argparse.Namespace) -> None:
    """What ``pmr stream`` checks before it starts any process (about a second, or the
    time it takes to load the recording): the source opens, the backend can run on the
    device, the policy parses, the metrics port is free. Raises ``ValueError`` (one line)."""
    from pmr_stream.anonymizer.window import WindowPolicy

    check_source(args.source)
    WindowPolicy.parse(args.policy)
    check_port(args.metrics_port, "--metrics-port")
    check_backend(args.backend, args.device, getattr(args, "triton_url", None))


#: The roles of a ``pmr stream`` key set: one CurveZMQ key pair each.
STREAM_KEY_NAMES: tuple[str, ...] = ("producer", "anonymizer", "recorder", "sink")


@dataclass(frozen=True)
class StreamKeys:
    """A CurveZMQ key set for ``pmr stream``, in one folder.

    ``NAME.key`` / ``NAME.key_secret`` for each of :data:`STREAM_KEY_NAMES`, and two
    folders of admitted clients: ``raw_clients/`` (the producer admits the anonymizer and
    the raw recorder) and ``anon_clients/`` (the anonymizer's ``anon/`` admits the sinks).
    """

    folder: Path

    def secret(self, name: str) -> Path:
        return self.folder / f"{name}.key_secret"

    def public(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    @property
    def raw_clients(self) -> Path:
        return self.folder / "raw_clients"

    @property
    def anon_clients(self) -> Path:
        return self.folder / "anon_clients"

    def flags(self, process: str) -> list[str]:
        """The CURVE flags of one process: ``producer``, ``recorder``, ``anonymizer`` or ``sink``."""
        if process == "producer":  # binds raw/: the server of the anonymizer and the raw recorder
            return ["--curve-secret", str(self.secret("producer")), "--curve-clients", str(self.raw_clients)]
        if process == "recorder":
            return [
                "--curve-secret",
                str(self.secret("recorder")),
                "--curve-server-key",
                str(self.public("producer")),
            ]
        if process == "anonymizer":  # a client of the producers, the server of the sinks
            return ["--raw-curve-secret", str(self.secret("anonymizer")),
                    "--raw-curve-server-key", str(self.public("producer")),
                    "--anon-curve-secret", str(self.secret("anonymizer")),
                    "--anon-curve-clients", str(self.anon_clients)]  # fmt: skip
        if process == "sink":
            return [
                "--curve-secret",
                str(self.secret("sink")),
                "--curve-server-key",
                str(self.public("anonymizer")),
            ]
        raise ValueError(f"no CURVE flags for process {process!r}")


def make_stream_keys(folder: str | os.PathLike[str]) -> StreamKeys:
    """Write a fresh :class:`StreamKeys` set into ``folder`` (the files of an earlier set there are replaced)."""
    keys = StreamKeys(Path(folder))
    keys.folder.mkdir(parents=True, exist_ok=True)
    for name in STREAM_KEY_NAMES:
        keys.public(name).unlink(missing_ok=True)
        keys.secret(name).unlink(missing_ok=True)
    admitted = {keys.raw_clients: ("anonymizer", "recorder"), keys.anon_clients: ("sink",)}
    for d in admitted:
        d.mkdir(exist_ok=True)
        for old in d.glob("*.key"):
            old.unlink()
    for name in STREAM_KEY_NAMES:
        generate_keypair(keys.folder, name)
    for d, names in admitted.items():
        for name in names:
            (d / f"{name}.key").write_bytes(keys.public(name).read_bytes())
    return keys


def load_stream_keys(folder: str | os.PathLike[str]) -> StreamKeys:
    """Check an existing :class:`StreamKeys` folder (``--curve-keys``); ``ValueError`` naming what is missing."""
    keys = StreamKeys(Path(folder))
    try:
        if not keys.folder.is_dir():
            raise FileNotFoundError(f"not a folder: {keys.folder} (`pmr stream --curve` writes a key set)")
        for name in STREAM_KEY_NAMES:
            load_key_file(keys.public(name))
            load_key_file(keys.secret(name), secret=True)
        for d in (keys.raw_clients, keys.anon_clients):
            if not d.is_dir() or not any(d.glob("*.key")):
                raise FileNotFoundError(f"{d}: no folder of admitted clients' public .key files")
    except (OSError, ValueError) as exc:
        raise ValueError(f"--curve-keys {folder}: {exc}") from None
    return keys


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
        return [_Group(args.source, args.stream, ("anon/",), args.seed, f"tcp://127.0.0.1:{free_port()}")]
    from pmr_stream.capture.sources import parse_source
    from pmr_stream.capture.synthetic import stream_ids

    spec = parse_source(args.source)
    n = int(spec.arg) if spec.kind == "synthetic" else 0
    if n < k:
        raise ValueError(
            f"--producers {k} splits a synthetic:N source with N >= {k} streams, not {args.source!r}"
        )
    if not args.no_video or args.max_frames:
        raise ValueError(
            "--producers > 1 is for load tests: add --no-video, and limit the run with --duration"
        )
    out = []
    for i in range(k):
        n_i = n // k + (i < n % k)
        stream = f"{args.stream}.p{i}"
        topics = tuple(f"anon/{sid}" for sid in stream_ids(n_i, stream))
        out.append(
            _Group(f"synthetic:{n_i}", stream, topics, args.seed + i * n, f"tcp://127.0.0.1:{free_port()}")
        )
    return out


def _report_s(status_s: float) -> float:
    """The anonymizer's stats interval: often enough for the status lines (at most every 5 s)."""
    return 5.0 if status_s <= 0 else max(0.2, min(5.0, status_s / 2))


def _print_status(service_json: Path, elapsed_s: float) -> None:
    """One status line from the anonymizer's latest stats (nothing before its first report)."""
    try:
        d = json.loads(service_json.read_text())
    except (OSError, ValueError):
        return
    p99 = d.get("capture_to_publish_ms_p99")
    failed = d.get("failed") or {}
    n_failed = sum(failed.values()) if isinstance(failed, dict) else int(failed)
    print(f"pipeline: {elapsed_s:.0f} s: {d.get('frames_in', 0)} frames in, {d.get('published_frames', 0)} "
          f"anonymized, {n_failed} failed; capture -> publish p99 "
          f"{'-' if p99 is None else f'{p99:.1f} ms'}", flush=True)  # fmt: skip


def _anon_topic(topic: str, ids: StreamIds) -> str:
    """``anon/<raw id>`` as the service publishes it (``anon/<pseudonym>``); a prefix stays."""
    head, _, stream = topic.partition("/")
    return f"{head}/{ids.anon(stream)}" if stream else topic


def _merge_latency(work: Path, parts: list[Path]) -> None:
    """The sinks' latencies as one ``latency.json`` (percentiles over every frame of every sink)."""
    summaries = [json.loads(p.read_text()) for p in parts if p.exists()]
    samples = [
        np.load(p.with_suffix(".npy"), allow_pickle=False) for p in parts if p.with_suffix(".npy").exists()
    ]
    a = np.concatenate(samples) if samples else np.zeros(0)
    drops: dict[str, int] = {}
    for d in summaries:
        for reason, count in d["drops"].items():
            drops[reason] = drops.get(reason, 0) + count
    merged = latency_summary(a, drops, [f for d in summaries for f in d["files"]]) | {"sinks": len(parts)}
    (work / "latency.json").write_text(json.dumps(merged, indent=1))


def run_pipeline(args: argparse.Namespace) -> int:
    """Run producer, anonymizer and subscribers as separate processes; render; summarise."""
    work = Path(args.workdir)
    groups = _groups(args)
    keys = load_stream_keys(args.curve_keys) if getattr(args, "curve_keys", None) else None  # checked first
    preflight(args)  # fail in about a second with one line, before any process starts
    ids = stream_ids_from_args(args, create=True)  # the deployment's key: anon/ ids are its pseudonyms
    work.mkdir(parents=True, exist_ok=True)
    for old in [
        *work.glob("*.npz"),
        *work.glob("latency*.json"),
        *work.glob("latency*.npy"),
        *work.glob("service.json"),
    ]:
        old.unlink()
    for parts in work.glob("*.npz.parts"):  # segments of an earlier run that was killed
        shutil.rmtree(parts)
    if keys is None and getattr(args, "curve", False):  # CURVE on every link, with a fresh key set
        keys = make_stream_keys(work / "curve")

    def curve(process: str) -> list[str]:
        return keys.flags(process) if keys is not None else []

    raw_ep = groups[0].raw_ep
    anon_ep = f"tcp://127.0.0.1:{free_port()}"
    # the others start first and wait for the producer: their safety limit runs longer
    limit = ["--duration", str(args.duration + 60)] if args.duration else []
    cli = ["-m", "pmr_stream.cli"]
    backend = forward_argv(add_backend_arguments, args)
    backend += forward_argv(lambda p: add_service_arguments(p, skip=_DEMO_SETS), args)
    backend += ["--stream-key", str(ids.key_path)] + [
        a for s in sorted(ids.public) for a in ("--public-stream-id", s)
    ]
    one = len(groups) == 1
    sink_json = [work / ("latency.json" if one else f"latency.p{i}.json") for i in range(len(groups))]
    procs = []
    for i, g in enumerate(groups):
        topics = [a for t in g.topics for a in ("--topic", _anon_topic(t, ids))]
        procs.append(_spawn("sink" if one else f"sink.p{i}",
                            ["-m", "pmr_stream.sinks.latency", "--endpoint", anon_ep, *topics, "--output",
                             str(work / ("anon.npz" if one else f"anon.p{i}.npz")), "--latency-json", str(sink_json[i]),
                             *limit, *curve("sink")], work))  # fmt: skip
    if not args.no_video:
        procs.append(_spawn("raw_recorder", [*cli, "record", "--endpoint", raw_ep, "--topic", "raw/",
                                             "--output", str(work / "raw.npz"), "--until-end", "--silence-hint", "0", *limit,
                                             *curve("recorder")], work))  # fmt: skip
    raws = [a for g in groups for a in ("--raw", g.raw_ep)]
    n_subs = sum(len(g.topics) for g in groups)  # ZeroMQ counts one subscription per sink and topic
    procs.append(_spawn("anonymizer", [*cli, "anonymizer", *raws, "--anon", anon_ep, *backend,
                                       "--wait-subscribers", str(n_subs), "--until-end",
                                       "--stats-json", str(work / "service.json"), "--report", str(_report_s(args.status)), *limit,
                                       *curve("anonymizer")], work))  # fmt: skip
    producers = []
    for i, g in enumerate(groups):
        producer_args = [*cli, "produce", "--source", g.source, "--endpoint", g.raw_ep, "--stream", g.stream,
                         "--wait-subscribers", str(1 if args.no_video else 2), "--wait-timeout", "120", "--report", "0"]  # fmt: skip
        producer_args += ["--seed", str(g.seed)] if g.seed else []
        producer_args += forward_argv(add_source_arguments, args, skip=("source", "stream", "seed"))
        producer_args += curve("producer")
        if args.max_frames:
            producer_args += ["--max-frames", str(args.max_frames)]
        if args.duration:
            producer_args += ["--duration", str(args.duration)]
        producers.append(_spawn("producer" if one else f"producer.p{i}", producer_args, work))
    procs = producers + procs
    src = args.source if one else f"{args.source} ({len(groups)} producers)"
    print(f"pipeline: {src} -> {raw_ep if one else 'one endpoint each'} (raw/) -> anonymizer [{args.backend}, "
          f"{args.policy}] -> {anon_ep} (anon/) -> recorder; logs in {work}/ (Ctrl-C stops)", flush=True)  # fmt: skip
    if keys is not None:
        print(
            f"pipeline: every link encrypted and authenticated with CurveZMQ (keys in {keys.folder}/)",
            flush=True,
        )
    interrupted = False
    signalled: set[str] = set()

    def failed() -> bool:
        return any(p.poll() not in (None, 0) for _, p, _ in procs)

    t_start = time.monotonic()
    next_status = t_start + args.status if args.status > 0 else float("inf")
    try:
        while any(p.poll() is None for _, p, _ in producers) and not failed():
            time.sleep(0.1)
            if time.monotonic() >= next_status:  # a long video or webcam: say how it goes
                _print_status(work / "service.json", time.monotonic() - t_start)
                next_status += args.status
        # the replay ended: the others stop by themselves once they saw the stream end (not after a failure)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not failed() and any(p.poll() is None for _, p, _ in procs):
            time.sleep(0.1)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping the pipeline", flush=True)
        for n, p, _ in producers:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                signalled.add(n)
        for _, p, _ in producers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        time.sleep(0.5)
    finally:
        signalled |= _stop(procs, 15)
        for _, _, fh in procs:
            fh.close()
    bad = [(n, p.returncode) for n, p, _ in procs if p.returncode not in (0, -signal.SIGINT)]
    own = [(n, rc) for n, rc in bad if n not in signalled]  # failed by itself, not because it was stopped
    for n, rc in own or bad:  # the others only stopped because of it
        print(f"pmr stream: error: {n} {'failed' if n in dict(own) else 'did not stop by itself'} (exit {rc}): "
              f"{_error_line(work / f'{n}.log')} [log: {work / f'{n}.log'}]", file=sys.stderr, flush=True)  # fmt: skip
    if bad:
        return 2 if any(rc == 2 for _, rc in own) else 1
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
    eng50, eng99 = svc.get("engine_ms_per_batch_p50"), svc.get("engine_ms_per_batch_p99")
    print(f"latency capture -> anonymized frame received: p50 {p50:.2f} ms, p99 {p99:.2f} ms over "
          f"{lat['frames']} frames (engine per batch p50 {eng50} ms, p99 {eng99} ms)", flush=True)  # fmt: skip
    if args.no_video:
        print(f"anonymized recording: {Path(anon_files[0]).resolve()}", flush=True)
        return 0
    from pmr_stream.render import RenderOptions, compare_recordings

    raw_file = work / "raw.npz"
    if not raw_file.exists():
        print("the raw recording is missing; no video", file=sys.stderr, flush=True)
        return 1
    out = Path(args.output)
    try:
        compare_recordings(raw_file, anon_files[0], out, RenderOptions(width=args.width, height=args.height))
    except (ValueError, OSError) as exc:
        print(f"pmr stream: error: side-by-side video {out}: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"{'interrupted; ' if interrupted else ''}side-by-side video (original | anonymized): {out.resolve()}",
          flush=True)  # fmt: skip
    return 0


def add_stream_arguments(p: argparse.ArgumentParser) -> None:

    add_source_arguments(p, default=DEFAULT_SOURCE, default_stream="demo")
    p.add_argument(
        "--producers",
        type=int,
        default=1,
        help="load tests: split a synthetic:N source over this many producer processes, each with its "
        "own sink (needs --no-video and --duration; for hosts with more cores)",
    )
    add_backend_arguments(p, "anonymizer: ")
    add_service_arguments(p, skip=_DEMO_SETS)
    add_stream_id_arguments(p)  # passed on to the anonymizer; the sinks subscribe to the pseudonyms
    c = p.add_mutually_exclusive_group()
    c.add_argument(
        "--curve",
        action="store_true",
        help="CurveZMQ on every link: a fresh key set in WORKDIR/curve/ (one key pair per process, "
        "each server admits only its clients' keys)",
    )
    c.add_argument(
        "--curve-keys",
        default=None,
        metavar="DIR",
        help="CurveZMQ with an existing key set (as --curve writes it: producer, anonymizer, recorder, "
        "sink .key/.key_secret, raw_clients/, anon_clients/)",
    )
    p.add_argument("--output", default="out/stream_demo.mp4", help="side-by-side video (.mp4/.gif)")
    p.add_argument("--workdir", default="out/stream", help="recordings, stats and logs of the run")
    p.add_argument("--max-frames", type=int, default=None, help="stop the source after this many frames")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (webcam)")
    p.add_argument("--no-video", action="store_true", help="record only, no side-by-side video")
    p.add_argument("--status", type=float, default=10.0, metavar="SECONDS",
                   help="print a status line this often while the source runs (default 10; 0: never)")  # fmt: skip
    p.add_argument("--width", type=int, default=480, help="panel width of the video (default 480)")
    p.add_argument("--height", type=int, default=360, help="panel height of the video (default 360)")


def main(argv: list[str] | None = None) -> int:
    """``python -m pmr_stream.demo`` = ``pmr stream``."""
    parser = argparse.ArgumentParser(prog="python -m pmr_stream.demo")
    add_stream_arguments(parser)
    return run_pipeline(parser.parse_args(argv))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    restore_ctrl_c()
    sys.exit(main())
