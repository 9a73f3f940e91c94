"""The anonymized-stream sink of the demo (``python -m pmr_stream.sinks.latency``): records
``anon/`` and every frame's latency from the producer's capture timestamp to its arrival.

It fails closed: a frame on its topics that is not marked anonymized ends it with status 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmr_stream.stats import percentiles
from pmr_stream.wire.curve import add_curve_arguments, curve_from_args
from pmr_stream.wire.sockets import SocketOptions, restore_ctrl_c


def run_sink(
    endpoint: str,
    topics: Sequence[str],
    output: Path,
    latency_json: Path,
    duration_s: float | None,
    socket_options: SocketOptions | None = None,
) -> int:
    """Record ``topics`` until every stream ended; write capture->arrival latencies as JSON
    (percentiles) and, beside it, every frame's latency in ms as ``.npy`` (for merging).
    ``socket_options``: e.g. CURVE, as a client of the anonymizer's ``anon/`` publisher."""
    import gc

    from pmr_stream.sinks.recorder import Recorder
    from pmr_stream.wire.schema import FrameMessage, StreamEnd
    from pmr_stream.wire.sockets import stop_on_signals
    from pmr_stream.wire.subscriber import Subscriber

    lat: list[float] = []
    gc.freeze()  # what is loaded stays; full collections over it would show up as latency
    with Subscriber(endpoint, list(topics), socket_options) as sub, stop_on_signals() as stop:
        rec = Recorder(sub, output)
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
        written = rec.save()
        drops = dict(sub.drops)
    a = np.asarray(lat, dtype=np.float64)
    np.save(latency_json.with_suffix(".npy"), a, allow_pickle=False)
    latency_json.write_text(json.dumps(latency_summary(a, drops, [str(p) for p, _ in written]), indent=1))
    return 0 if written else 1


def latency_summary(a: np.ndarray, drops: dict[str, int], files: list[str]) -> dict[str, Any]:
    """What ``latency.json`` holds: frame count, drops, files and p50/p99/max of ``a`` (ms)."""
    return {
        "frames": len(a), "drops": drops, "files": files, **percentiles(a, "latency_ms", maximum=True),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pmr_stream.sinks.latency", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--topic", action="append", default=None, help="topic (repeatable; default anon/)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--latency-json", required=True)
    parser.add_argument("--duration", type=float, default=None)
    add_curve_arguments(parser, role="client", raw=False)  # a client of the anonymizer's anon/
    args = parser.parse_args(argv)
    sockets = SocketOptions(curve=curve_from_args(args, bind=False))
    return run_sink(args.endpoint, args.topic or ["anon/"], Path(args.output), Path(args.latency_json), args.duration,
                    sockets)  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    restore_ctrl_c()
    sys.exit(main())
