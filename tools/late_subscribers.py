"""Measure what late subscribers lose on ``raw/`` and on ``anon/``: frames before their ``start``.

    python -m tools.late_subscribers [--rounds 5] [--frames 30] [--announce 1] [--json FILE]

Starts a real ``pmr produce --source synthetic`` (30 fps) and a real ``pmr anonymizer``
(onnxruntime, CPU) as processes on loopback, with one ``anon/`` subscriber connected from
the start. Once anonymized frames flow, each round subscribes late, at a random moment, to
``anon/`` and then (at another random moment) to ``raw/``, one subscriber at a time (a late
``raw/`` subscription makes the producer announce, which the service passes on, so the two
are never joined together), and reads until ``--frames`` frames were accepted (or 10 s).
Per subscriber: ``unknown_stream`` drops (frames before the ``start``), milliseconds from
subscribing to the ``start``, and any other drop (``seq_backwards`` above all); for the early
subscriber, its drops and lost numbers over the whole run (the late subscribers' starts
must reach it in sequence).

Prints a table and a JSON object (also written to ``--json``); the JSON records the load
average before and after: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pmr_stream.wire.schema import FrameMessage, StreamStart
from pmr_stream.wire.subscriber import Subscriber

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _late(endpoint: str, topic: str, frames: int, timeout_s: float = 10.0) -> dict[str, Any]:
    """Subscribe to ``topic`` now; read until ``frames`` frames were accepted (at most ``timeout_s``)."""
    t0 = time.monotonic()
    first_start_ms: float | None = None
    n = 0
    with Subscriber(endpoint, [topic]) as sub:
        while n < frames and time.monotonic() - t0 < timeout_s:
            r = sub.receive(0.1)
            if r is None:
                continue
            if isinstance(r.message, StreamStart) and first_start_ms is None:
                first_start_ms = round((time.monotonic() - t0) * 1000, 1)
            n += isinstance(r.message, FrameMessage)
        drops = dict(sub.drops)
    return {"topic": topic, "unknown_stream": drops.pop("unknown_stream", 0), "other_drops": drops,
            "start_after_ms": first_start_ms, "frames": n}  # fmt: skip


def _cli(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pmr_stream.cli", *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def measure(rounds: int, frames: int, announce_s: float, seed: int = 0) -> dict[str, Any]:
    """Run the producer and the service, and ``rounds`` late subscriptions to each topic."""
    rng = random.Random(seed)
    raw_ep, anon_ep = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    keys = tempfile.TemporaryDirectory()  # a throw-away stream key: the deployment's is not touched
    service = _cli("anonymizer", "--raw", raw_ep, "--anon", anon_ep, "--backend", "onnxruntime",
                   "--device", "cpu", "--report", "0", "--stream-key", str(Path(keys.name) / "key"))  # fmt: skip
    producer = _cli("produce", "--source", "synthetic", "--stream", "late", "--endpoint", raw_ep,
                    "--announce", str(announce_s), "--wait-subscribers", "1", "--wait-timeout", "120",
                    "--report", "0")  # fmt: skip
    results: list[dict[str, Any]] = []
    try:
        with Subscriber(anon_ep, ["anon/"]) as early:
            t_end = time.monotonic() + 120
            got = 0
            while got < 10 and time.monotonic() < t_end:  # anonymized frames flow
                r = early.receive(0.1)
                got += r is not None and isinstance(r.message, FrameMessage)
            if got < 10:
                raise SystemExit("late_subscribers: no anonymized frames within 120 s")
            for _ in range(rounds):
                for endpoint, topic in ((anon_ep, "anon/"), (raw_ep, "raw/")):
                    wait = time.monotonic() + rng.uniform(0.0, 1.0)
                    while time.monotonic() < wait:  # the early subscriber keeps reading meanwhile
                        early.receive(0.02)
                    results.append(_late(endpoint, topic, frames))
            early.drain()
            early_drops = dict(early.drops)
            early_missing = early.seq_missing
            early_starts = sum(st.starts for st in early.streams.values())
    finally:
        for p in (producer, service):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in (producer, service):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        keys.cleanup()

    def summary(topic: str) -> dict[str, Any]:
        rows = [r for r in results if r["topic"] == topic]
        lost = [r["unknown_stream"] for r in rows]
        after = [r["start_after_ms"] for r in rows if r["start_after_ms"] is not None]
        return {"rounds": len(rows), "unknown_stream": lost, "unknown_stream_max": max(lost),
                "unknown_stream_mean": round(sum(lost) / len(lost), 2), "start_after_ms": after,
                "no_start": sum(r["start_after_ms"] is None for r in rows),
                "other_drops": sum(sum(r["other_drops"].values()) for r in rows)}  # fmt: skip

    return {"announce_s": announce_s, "frames": frames, "raw": summary("raw/"), "anon": summary("anon/"),
            "early_anon_subscriber": {"drops": early_drops, "seq_missing": early_missing, "starts": early_starts}}  # fmt: skip


def _table(res: dict[str, Any]) -> str:
    lines = [f"late subscribers (producer --announce {res['announce_s']} s, {res['frames']} frames each)",
             f"{'topic':<6} {'rounds':>6} {'unknown_stream mean':>20} {'max':>4} {'no start':>9} {'other drops':>12}"]  # fmt: skip
    for k in ("raw", "anon"):
        s = res[k]
        lines.append(f"{k + '/':<6} {s['rounds']:>6} {s['unknown_stream_mean']:>20} {s['unknown_stream_max']:>4} "
                     f"{s['no_start']:>9} {s['other_drops']:>12}")  # fmt: skip
    e = res["early_anon_subscriber"]
    lines.append(f"early anon/ subscriber: {e['starts']} starts, drops {e['drops'] or 'none'}, "
                 f"seq_missing {e['seq_missing']}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="late subscriptions to each topic (default 5)")
    ap.add_argument("--frames", type=int, default=30, help="frames each late subscriber reads (default 30)")
    ap.add_argument("--announce", type=float, default=1.0,
                    help="the producer's re-announcement period, seconds (default 1; 0: never)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="seed of the random subscription moments")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.frames < 1:
        ap.error("--rounds and --frames must be >= 1")
    load_before = [round(x, 2) for x in os.getloadavg()]
    res = measure(args.rounds, args.frames, args.announce, args.seed)
    res["env"] = {"cpus": os.cpu_count(), "load_before": load_before,
                  "load_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    print(_table(res))
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
