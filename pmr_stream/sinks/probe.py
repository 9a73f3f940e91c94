"""The probe: subscribe and show, per stream, what is arriving and how well.

Columns of :func:`format_table`:

============ ==============================================================
topic        ``raw/<stream>`` or ``anon/<stream>``
source       what the stream's start announced (``kinect:...``, ``webcam:0``)
fps          announced frame rate
rate         captured frames per second received over the last window
persons      distinct persons over the last window
frames       frame messages accepted (one per person and frame)
empty        frames without a person (gaps reported by the producer)
lost         sequence numbers that never arrived
drops        messages of this stream dropped, by reason
lat p50/p99  capture (producer wall clock) to reception, milliseconds
state        ``live``, ``ended (<reason>)``, ``silent`` (nothing for 3 s)
============ ==============================================================

Below the table: messages dropped before a stream could be told (decode errors by
reason), unknown streams, and connection drops.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from pmr_stream.wire.subscriber import StreamState, Subscriber

_COLUMNS = (
    "topic",
    "source",
    "fps",
    "rate",
    "persons",
    "frames",
    "empty",
    "lost",
    "drops",
    "lat p50/p99 ms",
    "state",
)


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}")


def _row(s: StreamState, now_ns: int, window_s: float) -> list[str]:
    p50, p99 = s.latency_percentiles()
    if s.end is not None:
        state = f"ended ({s.end.reason})"
    elif s.last_recv_mono_ns and now_ns - s.last_recv_mono_ns > 3e9:
        state = "silent"
    else:
        state = "live"
    drops = ",".join(f"{k}={v}" for k, v in sorted(s.drops.items())) or "0"
    return [
        s.topic, s.start.source if s.start else "?", f"{s.start.fps:g}" if s.start else "?",
        f"{s.rate(now_ns, window_s):.1f}", str(s.persons()), str(s.frames), str(s.gaps), str(s.seq_missing),
        drops, f"{_ms(p50)}/{_ms(p99)}", state,
    ]  # fmt: skip


def format_table(sub: Subscriber, now_mono_ns: int | None = None) -> str:
    """The probe's table for the current state of ``sub`` (plain text, fixed-width)."""
    now = time.monotonic_ns() if now_mono_ns is None else now_mono_ns
    rows = [list(_COLUMNS)] + [_row(s, now, sub.options.window_s) for s in sub.streams.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(rows) == 1:
        lines.append("(no stream announced yet)")
    t = sub.socket.events()
    decode = {k: v for k, v in sub.drops.items() if k not in ("unknown_stream", "seq_backwards")}
    lines.append(
        f"received {sub.received}  decode errors {sum(decode.values())}"
        + (f" ({', '.join(f'{k}={v}' for k, v in sorted(decode.items()))})" if decode else "")
        + f"  unknown-stream drops {sub.drops.get('unknown_stream', 0)}"
        + (f" ({', '.join(sorted(sub.unknown_streams)[:5])})" if sub.unknown_streams else "")
        + f"  disconnects {t.disconnects}"
    )
    return "\n".join(lines)


def run_probe(
    sub: Subscriber,
    out: Callable[[str], None],
    *,
    interval_s: float = 1.0,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Receive continuously and call ``out(table)`` every ``interval_s`` seconds.

    Stops when ``stop`` is set or after ``duration_s``; prints a last table and returns
    :meth:`Subscriber.stats`.
    """
    stop = stop or threading.Event()
    t0 = time.monotonic()
    next_print = t0 + interval_s
    while not stop.is_set():
        now = time.monotonic()
        if duration_s is not None and now - t0 >= duration_s:
            break
        sub.receive(min(0.1, max(0.0, next_print - now)))
        if time.monotonic() >= next_print:
            out(format_table(sub))
            next_print += interval_s * max(1, math.ceil((time.monotonic() - next_print) / interval_s))
    sub.drain()
    out(format_table(sub))
    return sub.stats()


__all__ = ["format_table", "run_probe"]
