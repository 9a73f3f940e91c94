"""The whole path of a frame, timed stage by stage: ``pmr bench --end-to-end``.

    pmr bench --end-to-end --frames 100 --json out/bench_e2e.json
    pmr bench --end-to-end --source webcam:0 --frames 300 --backend onnxruntime

Three processes on loopback, each the real component:

* **producer** (a child process): the source (default: the NTU sample video
  ``S001C001P001R001A001_rgb.avi`` from :func:`pmr_stream.samples.ntu_samples_dir`; or
  ``--source video:FILE`` / ``webcam:N``) through real MediaPipe Pose
  (:class:`~pmr_stream.capture.camera.CameraSource`), published by the real
  :class:`~pmr_stream.capture.producer.Producer` on ``raw/`` over ZeroMQ;
* **service** (a child process): the real
  :class:`~pmr_stream.anonymizer.service.AnonymizerService` with the chosen backend,
  ``raw/`` in, ``anon/`` out, its options from the same flags as ``pmr anonymizer``;
* **subscriber** (this process): a :class:`~pmr_stream.wire.subscriber.Subscriber` on ``anon/``.

Every frame carries its capture time (``t_mono_ns``, ``CLOCK_MONOTONIC``, which all
processes of a host share); the producer notes when it sent each frame, the service
when it took each frame off its socket and when it published the anonymized one (sends
are stamped just before the socket; subclasses that only read the clock), the subscriber
when it arrived. Per frame:

* ``pose``: MediaPipe Pose on one frame (producer, per frame);
* ``producer``: capture -> sent on ``raw/``: colour conversion, pose, NTU map, message (per frame);
* ``wire_in``: producer -> service, ZeroMQ loopback, queued until taken (per frame);
* ``window_wait``: a due window waits for its batch (the service's ``queue_wait_ms``);
* ``engine``: one engine call (the service's ``engine_ms_per_batch``);
* ``service``: received -> anonymized frame published: window, engine, bone step, message (per frame);
* ``wire_out``: service -> subscriber, ZeroMQ loopback, decode and checks (per frame);
* ``total``: capture -> anonymized frame received (per frame).

``producer + wire_in + service + wire_out = total`` for every frame. A video file starts
over at its end, so ``--frames`` bounds the run; MediaPipe is warmed up before the stream
starts, and the first ``--warmup-frames`` frames are left out of the per-frame figures (the
service's own figures cover all frames). Like :mod:`tools.bench` it records
the load average and marks a run started above ``--quiet-load`` as taken under load.
A measuring tool, not a test; it needs no display.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from pmr_stream.anonymizer.options import add_service_arguments
from pmr_stream.backends.options import add_backend_arguments, backend_kwargs
from pmr_stream.capture.sources import add_source_arguments, parse_source
from pmr_stream.samples import NTU_SAMPLE_VIDEO, ntu_samples_dir
from pmr_stream.stats import percentiles

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
#: The stages, in the order of a frame's path: (name, what, where the figure comes from).
STAGES: Final[tuple[tuple[str, str, str], ...]] = (
    ("pose", "MediaPipe Pose, one frame", "producer, per frame"),
    ("producer", "capture -> sent on raw/ (incl. pose)", "producer, per frame"),
    ("wire_in", "producer -> service (raw/, ZeroMQ loopback)", "per frame"),
    ("window_wait", "window waits for its batch", "service stats (queue_wait_ms)"),
    ("engine", "engine call, one batch", "service stats (engine_ms_per_batch)"),
    ("service", "service: received -> published (incl. window, engine)", "per frame"),
    ("wire_out", "service -> subscriber (anon/, ZeroMQ loopback)", "per frame"),
    ("total", "capture -> anonymized frame received", "per frame"),
)
#: The per-frame stages that add up to ``total``.
PARTS: Final[tuple[str, ...]] = ("producer", "wire_in", "service", "wire_out")


@dataclass
class EndToEndOptions:
    """What :func:`run_end_to_end` runs.

    Attributes:
        source: ``video:FILE`` or ``webcam:N`` (``None``: the NTU sample video, :data:`NTU_SAMPLE_VIDEO`).
        frames: the producer stops after publishing this many frames (a video file starts over at its end).
        warmup_frames: the first frames left out of the per-frame figures.
        speed: 1 = the video's frame rate, like a camera (the newest frame wins when pose is
            slower); 0 = every frame, as fast as pose goes.
        source_args: further source flags (:func:`add_source_arguments`: ``--mirrored``, ``--smooth``).
        backend, device, model_path, dummy, privacy, threads: the service's backend.
        service_args: the service's flags (:func:`add_service_arguments`: ``--policy``, ``--max-batch``...).
        timeout_s: the longest the whole run may take, seconds.
    """

    source: str | None = None
    frames: int = 100
    warmup_frames: int = 5
    speed: float = 1.0
    source_args: tuple[str, ...] = ()
    backend: str = "auto"
    device: str | None = None
    model_path: str | None = None
    dummy: str | None = None
    privacy: str | None = None
    threads: int | None = None
    service_args: tuple[str, ...] = ()
    timeout_s: float = 300.0
    wait_quiet_s: float = 0.0
    quiet_load: float = 0.6
    json_path: str | None = None
    table_path: str | None = None

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"--frames must be >= 1, got {self.frames}")
        if not 0 <= self.warmup_frames < self.frames:
            raise ValueError(
                f"--warmup-frames must be >= 0 and below --frames ({self.frames}), got {self.warmup_frames}"
            )
        if not (self.speed >= 0 and np.isfinite(self.speed)):
            raise ValueError(f"--speed must be >= 0, got {self.speed}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout_s}")


def check_service_args(argv: Sequence[str]) -> None:
    """``ValueError`` (one line) when the service's flags are bad, before any process starts."""
    from pmr_stream.anonymizer.options import ServiceOptions

    p = argparse.ArgumentParser(prog="service", add_help=False, exit_on_error=False)
    add_service_arguments(p)
    try:
        ns, extra = p.parse_known_args(list(argv))
    except argparse.ArgumentError as exc:
        raise ValueError(f"service flags {' '.join(argv)}: {exc}") from None
    if extra:
        raise ValueError(f"not service flags: {' '.join(extra)}")
    ServiceOptions.from_args(ns)


def resolve_source(source: str | None) -> str:
    """The source to run: ``video:``/``webcam:`` checked to open; ``ValueError`` naming it otherwise."""
    from pmr_stream.demo import check_source

    if source is None:
        path = ntu_samples_dir() / NTU_SAMPLE_VIDEO
        if not path.is_file():
            raise ValueError(f"no video for the end-to-end bench: {path} not found "
                             "(set PMR_NTU_DIR, or pass --source video:FILE or --source webcam:N)")  # fmt: skip
        source = f"video:{path}"
    if parse_source(source).kind not in ("video", "webcam"):
        raise ValueError(
            f"--source {source}: the end-to-end bench runs pose estimation: use video:FILE or webcam:N"
        )
    check_source(source)
    return source


# ----------------------------------------------------------------------------- the child processes


def _stamping_publisher(stamps: dict[int, int]) -> Any:
    """A :class:`~pmr_stream.wire.sockets.Publisher` class that notes, for every frame message,
    when it went to the socket: ``stamps[frame] = time.monotonic_ns()`` just before the send."""
    from pmr_stream.wire.schema import FrameMessage, Message, unpack
    from pmr_stream.wire.sockets import Publisher

    class StampingPublisher(Publisher):
        def send(self, msg: Message) -> int:
            if isinstance(msg, FrameMessage):
                stamps[msg.frame] = time.monotonic_ns()
            return super().send(msg)

        def send_raw(self, data: bytes) -> int:
            # the service's lean path publishes frames already packed: stamp, send, then read the
            # frame number back (after the send, so that the decode is not timed as the service's)
            t = time.monotonic_ns()
            n = super().send_raw(data)
            msg = unpack(data)[1]
            if isinstance(msg, FrameMessage):
                stamps[msg.frame] = t
            return n

    return StampingPublisher


def _warm_pose(width: int, height: int) -> None:
    """Import MediaPipe and run its pose graph once on a black image, before the stream starts: the
    seconds of start-up would otherwise fall between the stream's start and its first frame, where
    the service may take the stream for idle (``--idle``) and forget it."""
    from pmr_stream.capture.pose import PoseEstimator, PoseOptions

    t = time.perf_counter()
    with PoseEstimator(PoseOptions()) as pe:
        pe.process(np.zeros((height, width, 3), np.uint8))
    log.info("MediaPipe warmed up in %.2f s", time.perf_counter() - t)


def _producer_main(args: argparse.Namespace) -> int:
    """Role ``producer``: the source through the real producer on ``raw/``; per-frame times to ``--out``."""
    from pmr_stream.capture.producer import Producer, ProducerOptions
    from pmr_stream.capture.source import SourceFrame
    from pmr_stream.capture.sources import open_source_from_args
    from pmr_stream.wire.sockets import stop_on_signals

    rows: list[list[Any]] = []  # frame, capture ns, pose ms, persons
    sent: dict[int, int] = {}  # frame -> sent on raw/, ns

    class TimedProducer(Producer):
        def publish(self, f: SourceFrame) -> None:
            t_cap = f.t_mono_ns if f.t_mono_ns is not None else time.monotonic_ns()
            super().publish(f)
            rows.append([f.frame, t_cap, None if f.pose_s is None else f.pose_s * 1e3, len(f.persons)])

    src = open_source_from_args(args)
    meta = src.streams[0].metadata.get("capture", {})
    _warm_pose(int(meta.get("width") or 640), int(meta.get("height") or 480))
    opts = ProducerOptions(speed=args.speed, max_frames=args.frames, wait_subscribers=1,
                           wait_timeout_s=args.wait_timeout, report_s=0)  # fmt: skip
    with _stamping_publisher(sent)("tcp://127.0.0.1:*") as pub, stop_on_signals() as stop:
        print(f"endpoint {pub.endpoint}", flush=True)
        stats = TimedProducer(src, pub, opts).run(stop)
    out = {"frames": rows, "sent": sorted(sent.items()), "summary": stats.summary(),
           "captured": getattr(src, "captured", None), "capture": meta, "source": src.streams[0].source}  # fmt: skip
    Path(args.out).write_text(json.dumps(out))
    return 0


def _service_main(args: argparse.Namespace) -> int:
    """Role ``service``: the real anonymizer service, ``raw/`` in, ``anon/`` out; per-frame times to ``--out``."""
    import gc

    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.service import AnonymizerService
    from pmr_stream.backends import get_backend
    from pmr_stream.wire.schema import FrameMessage
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Received, Subscriber

    recv: dict[int, int] = {}  # frame -> taken off the raw/ socket, ns
    sent: dict[int, int] = {}  # frame -> anonymized frame published, ns

    class TimedService(AnonymizerService):
        def take(self, r: Received) -> None:
            if isinstance(r.message, FrameMessage):
                recv[r.message.frame] = r.t_recv_mono_ns
            super().take(r)

    opts = ServiceOptions.from_args(args)  # --stats-json FILE: the service's statistics there too
    backend = get_backend(args.backend, **backend_kwargs(args, max_batch=max(args.max_batch, 1)))
    backend.warmup((1, min(8, args.max_batch)))
    gc.collect()
    gc.freeze()  # as `pmr anonymizer`: the backend stays out of full collections
    with _stamping_publisher(sent)("tcp://127.0.0.1:*", carries_raw=False) as pub, stop_on_signals() as stop:
        print(f"endpoint {pub.endpoint}", flush=True)
        if not pub.wait_for_subscribers(1, args.wait_timeout, stop):
            raise RuntimeError(f"no anon/ subscriber within {args.wait_timeout} s")
        with Subscriber([args.raw], ["raw/"]) as sub:
            svc = TimedService(backend, backend.source.model_id, sub, pub, opts)
            summary = svc.run(stop, duration_s=args.wait_timeout, until_end=True)
    out = {"recv": sorted(recv.items()), "sent": sorted(sent.items()), "summary": summary,
           "device": str(getattr(backend, "device", "?")), "privacy": backend.source.privacy}  # fmt: skip
    Path(args.out).write_text(json.dumps(out))
    return 0


def _spawn(role: str, argv: list[str], log_file: IO[bytes]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", f"{__package__}.bench_e2e", "--role", role, *argv]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file)


def _endpoint(proc: subprocess.Popen[bytes], role: str, log_path: Path, timeout_s: float) -> str:
    """The ``endpoint ...`` line a child prints once it has bound its socket."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if sel.select(min(1.0, max(0.0, deadline - time.monotonic()))):
                line = proc.stdout.readline().decode(errors="replace").strip()
                if line.startswith("endpoint "):
                    return line.split(" ", 1)[1]
                if not line and proc.poll() is not None:
                    break
            elif proc.poll() is not None:
                break
    finally:
        sel.close()
    raise RuntimeError(f"the {role} process did not start (exit {proc.poll()}): {_last_line(log_path)}")


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(its log is empty)"


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p.stdout is not None:
            p.stdout.close()


# ----------------------------------------------------------------------------- the run


def _receive(anon_ep: str, service: subprocess.Popen[bytes], procs: Sequence[subprocess.Popen[bytes]],
             timeout_s: float) -> tuple[dict[int, int], dict[str, int]]:  # fmt: skip
    """Subscribe to ``anon/`` and take frames until the stream ends or the service is gone and
    nothing more comes: frame -> received, ns; and the subscriber's drops."""
    from pmr_stream.wire.schema import FrameMessage, StreamEnd
    from pmr_stream.wire.subscriber import Subscriber

    got: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s
    with Subscriber(anon_ep, ["anon/"]) as sub:
        while time.monotonic() < deadline:
            r = sub.receive(0.1)
            if r is None:
                if service.poll() is not None or any(p.poll() not in (None, 0) for p in procs):
                    break  # the service is gone (its socket flushed on close) or a child failed
                continue
            if isinstance(r.message, FrameMessage):
                if not r.message.anonymized:  # pragma: no cover - the service never does this
                    raise RuntimeError(f"a raw frame on {r.topic}")
                got[r.message.frame] = r.t_recv_mono_ns
            elif isinstance(r.message, StreamEnd):
                break
        drops = dict(sub.drops)
    return got, drops


def run_end_to_end(opts: EndToEndOptions) -> dict[str, Any]:
    """Run producer, service and subscriber once; the report (also written as JSON/table if asked)."""
    from pmr_stream.demo import check_backend

    from .bench import load_average, machine_info, wait_until_quiet

    source = resolve_source(opts.source)  # everything checked in about a second, before any process starts
    check_backend(opts.backend, opts.device)
    check_service_args(opts.service_args)
    load_before = (
        wait_until_quiet(opts.quiet_load, opts.wait_quiet_s) if opts.wait_quiet_s > 0 else load_average()
    )
    backend_ns = argparse.Namespace(backend=opts.backend, device=opts.device, model_path=opts.model_path,
                                    dummy=opts.dummy, privacy=opts.privacy, threads=opts.threads)  # fmt: skip
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pmr-bench-e2e-") as td:
        prod, svc, received = _run_processes(source, opts, backend_ns, Path(td))
    report = summarize(prod, svc, received, opts.warmup_frames)
    report = {"mode": "end-to-end", "machine": machine_info(opts.device or "cpu"), "load_before": load_before,
              "loaded": load_before is not None and load_before[0] >= opts.quiet_load, "quiet_load": opts.quiet_load,
              "options": asdict(opts) | {"source": source}, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              **report, "load_after": load_average(), "wall_s": round(time.monotonic() - t_start, 2)}  # fmt: skip
    report["table"] = format_table(report)
    if opts.json_path:
        Path(opts.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.json_path).write_text(json.dumps(report, indent=2, default=str) + "\n")
    if opts.table_path:
        Path(opts.table_path).parent.mkdir(parents=True, exist_ok=True)
        Path(opts.table_path).write_text(report["table"] + "\n")
    return report


def _run_processes(source: str, opts: EndToEndOptions, backend_ns: argparse.Namespace,
                   work: Path) -> tuple[dict[str, Any], dict[str, Any], dict[int, int]]:  # fmt: skip
    """Start the producer and the service, subscribe to ``anon/``: the producer's and the
    service's reports and the subscriber's arrival times. Logs and reports go to ``work``."""
    t_start = time.monotonic()
    roles = ("producer", "service")
    logs = {r: work / f"{r}.log" for r in roles}
    outs = {r: work / f"{r}.json" for r in roles}
    wait = str(opts.timeout_s)
    loop = ["--loop"] if parse_source(source).kind == "video" and "--loop" not in opts.source_args else []
    argv = {
        "producer": ["--source", source, "--speed", str(opts.speed), "--frames", str(opts.frames), *loop,
                     *opts.source_args],
        "service": [*_forward(add_backend_arguments, backend_ns), *opts.service_args],
    }  # fmt: skip
    procs: dict[str, subprocess.Popen[bytes]] = {}
    received: dict[int, int] = {}
    drops: dict[str, int] = {}

    def state() -> str:
        return "; ".join(f"{r}: {'running' if p.poll() is None else f'exit {p.returncode}'}, log: "
                         f"{_last_line(logs[r])}" for r, p in procs.items())  # fmt: skip

    with open(logs["producer"], "wb") as plog, open(logs["service"], "wb") as slog:
        try:
            common = ["--wait-timeout", wait]
            procs["producer"] = _spawn(
                "producer", [*common, "--out", str(outs["producer"]), *argv["producer"]], plog
            )
            raw_ep = _endpoint(procs["producer"], "producer", logs["producer"], opts.timeout_s)
            procs["service"] = _spawn("service", [*common, "--out", str(outs["service"]), "--raw", raw_ep,
                                                  *argv["service"]], slog)  # fmt: skip
            anon_ep = _endpoint(procs["service"], "service", logs["service"], opts.timeout_s)
            left = opts.timeout_s - (time.monotonic() - t_start)
            received, drops = _receive(anon_ep, procs["service"], list(procs.values()), left)
            for p in procs.values():
                p.wait(max(5.0, opts.timeout_s - (time.monotonic() - t_start)))
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"the end-to-end run took longer than {opts.timeout_s:g} s "
                f"({len(received)} anonymized frames received): {state()}"
            ) from None
        finally:
            _stop(list(procs.values()))
    for role, p in procs.items():
        if p.returncode != 0:
            raise RuntimeError(f"the {role} process failed (exit {p.returncode}; {len(received)} anonymized "
                               f"frames received): {_last_line(logs[role])}")  # fmt: skip
    prod, svc = json.loads(outs["producer"].read_text()), json.loads(outs["service"].read_text())
    if not received:
        s = svc["summary"]
        raise RuntimeError(f"no anonymized frame arrived: the producer published {prod['summary']['persons']} "
                           f"frames, the service took {s['frames_in']} and published {s['published_frames']} "
                           f"(wire drops {s['wire_drops']}, subscriber drops {drops})")  # fmt: skip
    svc["subscriber_drops"] = drops
    return prod, svc, received


def _forward(add: Any, ns: argparse.Namespace) -> list[str]:
    from pmr_stream.flags import forward_argv

    return forward_argv(add, ns)


def summarize(
    prod: dict[str, Any], svc: dict[str, Any], received: dict[int, int], warmup: int
) -> dict[str, Any]:
    """Join the three processes' times frame by frame; the stages' percentiles, counts and rates."""
    recv, sent, prod_sent = dict(svc["recv"]), dict(svc["sent"]), dict(prod["sent"])
    rows = [r for r in prod["frames"] if r[3] > 0]  # frames with a person: the ones anonymized
    timed = [r for r in rows[warmup:] if all(r[0] in d for d in (prod_sent, recv, sent, received))]
    ms: dict[str, np.ndarray] = {
        "pose": np.array([r[2] for r in timed if r[2] is not None], dtype=np.float64),
        "producer": np.array([(prod_sent[r[0]] - r[1]) / 1e6 for r in timed]),
        "wire_in": np.array([(recv[r[0]] - prod_sent[r[0]]) / 1e6 for r in timed]),
        "service": np.array([(sent[r[0]] - recv[r[0]]) / 1e6 for r in timed]),
        "wire_out": np.array([(received[r[0]] - sent[r[0]]) / 1e6 for r in timed]),
        "total": np.array([(received[r[0]] - r[1]) / 1e6 for r in timed]),
    }
    s = svc["summary"]
    from_service = {"window_wait": "queue_wait_ms", "engine": "engine_ms_per_batch"}
    stages: dict[str, dict[str, Any]] = {}
    for name, what, where in STAGES:
        if name in from_service:
            key = from_service[name]
            fig: dict[str, Any] = {"ms_mean": None, "ms_p50": s.get(f"{key}_p50"), "ms_p99": s.get(f"{key}_p99"),
                                   "ms_max": None, "samples": s["batches"] if name == "engine" else s["windows"]}  # fmt: skip
        else:
            fig = {
                **percentiles(ms[name], "ms", ndigits=3, mean=True, maximum=True),
                "samples": len(ms[name]),
            }
        stages[name] = {"what": what, "from": where, **fig}
    ps = prod["summary"]

    def rate(stamps: Sequence[int]) -> float | None:  # frames per second between the first and the last
        return round((len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1e9), 2) if len(stamps) > 1 else None

    frames = {"captured": prod.get("captured"), "published": ps["frames"], "persons": ps["persons"], "gaps": ps["gaps"],
              "dropped_at_capture": ps["drops"], "service_in": s["frames_in"], "service_published": s["published_frames"],
              "received": len(received), "warmup": warmup, "timed": len(timed)}  # fmt: skip
    rates = {"published": rate(list(prod_sent.values())), "received": rate(list(received.values()))}
    service = {k: s.get(k) for k in ("backend", "model_id", "policy", "max_batch", "max_wait_ms", "batches",
                                     "batch_size_mean", "batch_size_p99", "engine_ms_per_window_p50", "failed",
                                     "wire_drops", "seq_missing_total", "out_of_date")}  # fmt: skip
    service |= {
        "device": svc.get("device"),
        "privacy": svc.get("privacy"),
        "subscriber_drops": svc.get("subscriber_drops"),
    }
    return {"source": prod.get("source"), "capture": prod.get("capture"), "frames": frames, "frames_per_s": rates,
            "stages": stages, "service": service}  # fmt: skip


def format_table(report: dict[str, Any]) -> str:
    """The end-to-end report as a readable table (Markdown), in the style of :func:`tools.bench.format_table`."""
    m, f, sv, cap = report["machine"], report["frames"], report["service"], report.get("capture") or {}
    lines = [f"machine: {m.get('cpu')} ({m.get('cpu_count')} CPUs), torch {m.get('torch')}, "
             f"onnxruntime {m.get('onnxruntime')}"]  # fmt: skip
    lb, la = report.get("load_before"), report.get("load_after")
    if lb:
        lines.append(f"load average (1/5/15 min): before {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}"
                     + (f", after {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}" if la else ""))  # fmt: skip
    if report.get("loaded") and lb:
        lines.append(f"**taken under load** (1-min load {lb[0]:.2f} >= {report['quiet_load']} before the run): "
                     "not comparable with a quiet machine's figures; use --wait-quiet")  # fmt: skip
    speed = report["options"]["speed"]
    lines.append(f"end to end: {report['source']} ({cap.get('width')}x{cap.get('height')} @ {cap.get('fps')} fps, "
                 f"speed {speed:g}) -> MediaPipe -> producer -> raw/ -> anonymizer [{sv['backend']} on {sv['device']}, "
                 f"policy {sv['policy']}, max batch {sv['max_batch']}] -> anon/ -> subscriber, ZeroMQ on loopback")  # fmt: skip
    lines.append(f"frames: {f['captured']} captured, {f['published']} published ({f['dropped_at_capture']} dropped at "
                 f"capture: newest frame wins; {f['gaps']} without a person), {f['service_in']} into the service, "
                 f"{f['service_published']} anonymized, {f['received']} received; {f['timed']} timed "
                 f"(first {f['warmup']} left out as warm-up)")  # fmt: skip
    r = report["frames_per_s"]
    lines.append(f"frames/s: {r['published']} published, {r['received']} anonymized "
                 "frames received (first to last frame); "
                 f"{sv['batches']} engine calls, batch mean {sv['batch_size_mean']}")  # fmt: skip
    lines.append("")
    lines.append("| stage | what | p50 ms | p99 ms | mean ms | from |")
    lines.append("|---|---|---:|---:|---:|---|")

    def v(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    for name, st in report["stages"].items():
        lines.append(f"| {name} | {st['what']} | {v(st['ms_p50'])} | {v(st['ms_p99'])} | {v(st['ms_mean'])} | "
                     f"{st['from']} |")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the children's command line


def main(argv: Sequence[str] | None = None) -> int:
    """The child processes' entry (``--role producer|service``); ``pmr bench --end-to-end`` starts them."""
    ap = argparse.ArgumentParser(prog="python -m tools.bench_e2e", description=__doc__.split("\n")[0])
    ap.add_argument("--role", choices=("producer", "service"), required=True)
    ap.add_argument("--out", required=True, help="where the role writes its times (JSON)")
    ap.add_argument(
        "--wait-timeout", type=float, default=300.0, help="longest wait for the other processes, s"
    )
    role = ap.parse_known_args(argv)[0].role
    if role == "producer":
        add_source_arguments(ap)
        ap.add_argument("--frames", type=int, required=True)
    else:
        ap.add_argument("--raw", required=True, help="the producer's endpoint")
        add_backend_arguments(ap)
        add_service_arguments(ap)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"{role}: %(levelname)s %(name)s: %(message)s")
    if role == "producer":
        return _producer_main(args)
    return _service_main(args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
