"""Measure the wire: msgpack encode/decode per frame, loopback latency, sustained producer rate.

    python -m tools.bench_wire [--json FILE] [--seconds 3] [--latency-rate 500]

Three measurements, each with a subscriber in a *separate process* where sockets are
involved (so the figures include the real inter-process path):

1. **codec**: building a :class:`~pmr_stream.wire.schema.FrameMessage` from arrays (it
   validates them), :func:`~pmr_stream.wire.schema.pack` and
   :func:`~pmr_stream.wire.schema.unpack` (full validation) of a one-person frame,
   microseconds per frame, and the subscriber's whole per-message handling
   (:meth:`~pmr_stream.wire.subscriber.Subscriber.handle`: decode, checks, stream state).
2. **latency**: frames published at ``--latency-rate`` messages per second on
   ``tcp://127.0.0.1``; the subscriber process takes each off its socket, validates it,
   and subtracts the producer's ``t_mono_ns`` (``CLOCK_MONOTONIC`` is shared by all
   processes of a host) -> p50 / p99 / max milliseconds.
3. **throughput**: one producer process (:class:`~pmr_stream.capture.producer.Producer`)
   replaying a Kinect recording in a loop as fast as possible (``--speed 0``), and the
   synthetic generator likewise, for ``--seconds``; frames per second published, and
   what the subscriber process received and lost.

Prints a table and a JSON object (also written to ``--json``). Timings depend on the
machine and its load: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.stats import percentiles

REPO = Path(__file__).resolve().parents[1]


def _frame(seq: int, frame: int = 0, t_mono_ns: int | None = None) -> Any:
    from pmr_stream.wire.schema import FrameMessage

    rng = np.random.default_rng(seq)
    return FrameMessage(
        "bench", 0, seq, frame, frame / 30.0, t_mono_ns or time.monotonic_ns(), time.time_ns(),
        rng.uniform(-1, 3, (25, 3)).astype(np.float32), rng.uniform(0, 1, 25).astype(np.float32),
    )  # fmt: skip


def bench_codec(n: int = 20000) -> dict[str, Any]:
    """Microseconds per frame: building a (validated) message, pack, unpack, the subscriber's handle()."""
    from pmr_stream.wire.schema import FrameMessage, StreamStart, pack, unpack
    from pmr_stream.wire.subscriber import Subscriber

    msgs = [_frame(i + 1, i) for i in range(256)]
    datas = [pack(m) for m in msgs]
    out: dict[str, Any] = {"frames": n, "bytes_per_frame": len(datas[0])}
    fields = [
        dict(stream=m.stream, person=m.person, seq=m.seq, frame=m.frame, pts_s=m.pts_s, t_mono_ns=m.t_mono_ns,
             t_wall_ns=m.t_wall_ns, joints=m.joints, confidence=m.confidence)
        for m in msgs
    ]  # fmt: skip
    t = time.perf_counter()
    for i in range(n):
        FrameMessage(**fields[i & 255])
    out["build_us"] = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for i in range(n):
        pack(msgs[i & 255])
    out["encode_us"] = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for i in range(n):
        unpack(datas[i & 255])
    out["decode_us"] = (time.perf_counter() - t) / n * 1e6
    out["encode_decode_us"] = out["encode_us"] + out["decode_us"]
    # the subscriber's whole per-message path, without the socket
    stream = [pack(_frame(i + 1, i)) for i in range(n)]
    start = pack(StreamStart("bench", 0, "s", 1, 1, 30.0, "bench"))
    with Subscriber("tcp://127.0.0.1:1", ["raw/"]) as sub:  # connects lazily; never used
        sub.handle(start)
        t = time.perf_counter()
        for d in stream:
            sub.handle(d)
        out["subscriber_handle_us"] = (time.perf_counter() - t) / n * 1e6
        assert sub.streams["raw/bench"].frames == n and not sub.drops
    return out


# ----------------------------------------------------------------------------- subscriber process


def _sub_main(endpoint: str, mode: str, seconds: float) -> None:
    """Role ``sub``: receive for ``seconds`` (after the first message), print a JSON line."""
    from pmr_stream.wire.schema import FrameMessage
    from pmr_stream.wire.subscriber import Subscriber, SubscriberOptions

    lat: list[float] = []
    frames = 0
    t_first = t_last = 0.0
    with Subscriber(endpoint, ["raw/"], options=SubscriberOptions(require_start=mode == "count")) as sub:
        print("ready", flush=True)
        deadline = time.monotonic() + seconds + 30
        idle_since = None
        while time.monotonic() < deadline:
            r = sub.receive(0.1)
            if r is None:
                if frames and idle_since is None:
                    idle_since = time.monotonic()
                if idle_since is not None and time.monotonic() - idle_since > 1.0:
                    break  # the publisher is done
                continue
            idle_since = None
            m = r.message
            if isinstance(m, FrameMessage):
                if not frames:
                    t_first = time.monotonic()
                frames += 1
                t_last = time.monotonic()
                if mode == "latency":
                    lat.append((r.t_recv_mono_ns - m.t_mono_ns) / 1e6)
            if m.kind == "end":
                break
        res: dict[str, Any] = {"received_frames": frames, "drops": dict(sub.drops)}
        res["seq_missing"] = sum(s.seq_missing for s in sub.streams.values())
        if frames > 1:
            res["receive_fps"] = (frames - 1) / max(t_last - t_first, 1e-9)
        if lat:
            res.update(percentiles(lat, "latency_ms", maximum=True), samples=len(lat))
    print(json.dumps(res), flush=True)


def _spawn_sub(endpoint: str, mode: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", f"{__package__}.bench_wire", "--role", "sub", "--endpoint", endpoint, "--mode", mode,
         "--seconds", str(seconds)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"subscriber process did not start: {line!r}")
    return proc


def _collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return res


def bench_latency(rate: float, seconds: float) -> dict[str, Any]:
    """Publish ``rate`` frames per second for ``seconds``; latency measured by a subscriber process."""
    from pmr_stream.wire.schema import StreamEnd
    from pmr_stream.wire.sockets import Publisher

    with Publisher("tcp://127.0.0.1:*") as pub:
        proc = _spawn_sub(pub.endpoint, "latency", seconds)
        if not pub.wait_for_subscribers(1, 30):
            raise RuntimeError("the subscriber process never subscribed")
        time.sleep(0.2)
        n = int(rate * seconds)
        t0 = time.monotonic()
        for i in range(n):
            due = t0 + i / rate
            while (d := due - time.monotonic()) > 0:
                time.sleep(min(d, 0.002))
            m = _frame(i + 1, i, time.monotonic_ns())
            pub.send(m)
        pub.send(StreamEnd("bench", n + 1, time.monotonic_ns(), time.time_ns(), "eof", n))
        res = _collect(proc)
    res.update(sent=n, rate_hz=rate)
    return res


def bench_throughput(kind: str, seconds: float) -> dict[str, Any]:
    """One producer at ``--speed 0`` for ``seconds``: frames per second published and received."""
    from pmr_stream.capture.producer import Producer, ProducerOptions
    from pmr_stream.wire.sockets import Publisher

    if kind == "kinect":
        from pmr_stream.capture.replay import RecordingReplay
        from pmr_stream.formats.recording import Recording

        ntu = REPO.parent / "shared" / "data" / "ntu" / "S001C001P001R001A001.skeleton"
        if ntu.is_file():
            src: Any = RecordingReplay(ntu, stream="bench", loop=True)
        else:
            rng = np.random.default_rng(0)
            src = RecordingReplay(
                Recording.from_clip(rng.uniform(-1, 3, (103, 25, 3)).astype(np.float32)), "bench", loop=True
            )
    else:
        from pmr_stream.capture.synthetic import SyntheticSource

        src = SyntheticSource(1, stream="bench")
    with Publisher("tcp://127.0.0.1:*") as pub:
        proc = _spawn_sub(pub.endpoint, "count", seconds)
        producer = Producer(
            src, pub, ProducerOptions(speed=0, duration_s=seconds, wait_subscribers=1, report_s=0)
        )
        stats = producer.run(threading.Event())
        res = _collect(proc)
    s = stats.summary()
    res.update(source=kind, published_frames=s["frames"], producer_fps=s["rate_fps"],
               messages=s["messages"], mbytes_per_s=s["bytes"] / max(stats.elapsed_s, 1e-9) / 1e6)  # fmt: skip
    return res


def _table(r: dict[str, Any]) -> str:
    c, lat = r["codec"], r["latency"]
    rows = [
        ("frame message", f"{c['bytes_per_frame']} bytes"),
        ("build FrameMessage (validates)", f"{c['build_us']:.1f} us/frame"),
        ("encode (pack)", f"{c['encode_us']:.1f} us/frame"),
        ("decode + validate (unpack)", f"{c['decode_us']:.1f} us/frame"),
        ("encode + decode", f"{c['encode_decode_us']:.1f} us/frame"),
        ("subscriber handle (decode+checks+state)", f"{c['subscriber_handle_us']:.1f} us/frame"),
        (f"loopback latency at {lat['rate_hz']:g} msg/s",
         f"p50 {lat.get('latency_ms_p50', float('nan')):.3f} ms, p99 {lat.get('latency_ms_p99', float('nan')):.3f} ms, "
         f"max {lat.get('latency_ms_max', float('nan')):.3f} ms ({lat['received_frames']}/{lat['sent']} received)"),
    ]  # fmt: skip
    for t in r["throughput"]:
        rows.append((f"one producer, {t['source']} --speed 0",
                     f"{t['producer_fps']:.0f} frames/s published, {t.get('receive_fps', 0):.0f}/s received, "
                     f"{t['received_frames']}/{t['published_frames']} received, {t['seq_missing']} lost"))  # fmt: skip
    w = max(len(a) for a, _ in rows)
    env = r["env"]
    head = f"bench_wire on {env['cpus']} CPUs, load {env['load_before']} -> {env['load_after']}, libzmq {env['libzmq']}"
    return "\n".join([head] + [f"  {a.ljust(w)}  {b}" for a, b in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None, help="also write the results to this file")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per socket measurement (default 3)")
    ap.add_argument(
        "--latency-rate", type=float, default=500.0, help="messages per second for the latency run"
    )
    ap.add_argument("--codec-frames", type=int, default=20000)
    ap.add_argument("--role", choices=("bench", "sub"), default="bench", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", choices=("latency", "count"), default="count", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "sub":
        _sub_main(args.endpoint, args.mode, args.seconds)
        return 0

    import msgpack
    import zmq

    load_before = [round(x, 2) for x in os.getloadavg()]
    results: dict[str, Any] = {
        "env": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pyzmq": zmq.__version__,
            "libzmq": zmq.zmq_version(),
            "msgpack": ".".join(map(str, msgpack.version)),
            "machine": platform.machine(),
            "load_before": load_before,
        },  # fmt: skip
        "codec": bench_codec(args.codec_frames),
        "latency": bench_latency(args.latency_rate, args.seconds),
        "throughput": [bench_throughput("kinect", args.seconds), bench_throughput("synthetic", args.seconds)],
    }
    results["env"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(_table(results))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
