"""The streaming service's own cost per frame, the engine excluded (issue 16 section 1).

    python -m tools.bench_service_cost [--streams 60] [--frames 150] [--repeat 3] [--json FILE]
    python -m tools.bench_service_cost --profile 30      # + the 30 hottest functions (cProfile)

In-process and deterministic: ``--streams`` synthetic performers
(:class:`~pmr_stream.capture.synthetic.SyntheticSource`, seed ``--seed``) are encoded once into
real wire messages (a start, ``--frames`` frames and an end per stream, interleaved frame by
frame as producers send them). The run then feeds these bytes through the service's real code:
:meth:`~pmr_stream.wire.subscriber.Subscriber.handle` (decode, validate, stream state) and
:class:`~pmr_stream.anonymizer.service.AnonymizerService` (``take``, batches of every stream's
due windows, bones, output messages), which publishes on a real
:class:`~pmr_stream.wire.sockets.Publisher` on loopback TCP with a subscriber process draining
it. The order of calls is that of :meth:`AnonymizerService.step` with every stream's frame of
one capture instant queued at once (one batch per instant).

The engine is excluded: this harness's backend returns its input unchanged (it is a
measurement harness, not a stand-in anywhere in the product), and the time spent in it is
measured and subtracted. What is left is the service's cost per input frame:

* **total**: the feed loop without instrumentation, wall time and CPU time of the service
  thread (``time.thread_time``; the ZeroMQ I/O thread and the draining subscriber are not in
  it) and of the whole process (``time.process_time``), microseconds per frame. The CPU
  figures are the ones to steer by on a loaded machine.
* **stages**: a second pass with each stage's function wrapped in a timer (exclusive wall
  time, nested stages subtracted): decode + validate, take, window update, normalisation,
  batch assembly, result checks, denormalisation, bone step, output message, encode, publish,
  the publish loop; the rest of the loop is ``other``. The wrappers add ~0.3 us per call,
  so the stages sum to a little more than the total.

Prints a table and a JSON object (also written to ``--json``), with the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``(stage, module, attribute)``: a module function or a ``Class.method``; absent ones are skipped
#: (so the same table measures older and newer code). Order: as a frame passes through the service.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("decode+validate", "pmr_stream.wire.subscriber", "Subscriber.handle"),
    ("take", "pmr_stream.anonymizer.service", "AnonymizerService.take"),
    ("window update", "pmr_stream.anonymizer.window", "WindowStore.push"),
    ("normalisation", "pmr_stream.anonymizer.window", "center_windows"),
    ("normalisation", "pmr_stream.anonymizer.service", "center_batch"),
    ("batch assembly", "pmr_stream.anonymizer.service", "AnonymizerService._engine"),
    ("result checks", "pmr_stream.anonymizer.service", "AnonymizerService._complete"),
    ("denormalisation", "pmr_stream.anonymizer.window", "WindowStore.resolve"),
    ("denormalisation", "pmr_stream.anonymizer.window", "WindowStore.resolve_batch"),
    ("bone step", "pmr_stream.anonymizer.service", "AnonymizerService._resolve"),
    ("output message", "pmr_stream.anonymizer.service", "AnonymizerService._build"),
    ("encode", "pmr_stream.wire.sockets", "pack"),
    ("encode", "pmr_stream.anonymizer.service", "pack_anon_frame"),
    ("publish", "pmr_stream.wire.sockets", "Publisher.send_raw"),
    ("publish loop", "pmr_stream.anonymizer.service", "AnonymizerService._publish_ready"),
)
ENGINE = "engine (identity, excluded)"


class IdentityBackend:
    """The harness's engine: ``anonymize(x)`` returns ``x`` (its time is measured and subtracted).

    ``source.dummy_window`` is the shipped dummy, so the default bone step (``bones='dummy'``) runs.
    """

    name = "identity-harness"
    device = "cpu"

    def __init__(self) -> None:
        from pmr_stream.assets import DEFAULT_DUMMY
        from pmr_stream.backends.base import load_dummy_window

        class _Source:
            dummy_window = load_dummy_window(DEFAULT_DUMMY)

        self.source = _Source()
        self.calls = 0
        self.ns = 0

    def anonymize(self, x: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter_ns()
        self.calls += 1
        self.ns += time.perf_counter_ns() - t0
        return x


def make_messages(streams: int, frames: int, seed: int = 0) -> list[list[bytes]]:
    """Packed raw messages per capture instant: ``[starts], [frames of instant 0], .., [ends]``."""
    from pmr_stream.capture.synthetic import SyntheticSource
    from pmr_stream.wire.schema import FrameMessage, StreamEnd, StreamStart, pack

    src = SyntheticSource(streams, "bench", seed=seed)
    ids = [s.stream for s in src.streams]
    t0 = 1_000_000_000
    out: list[list[bytes]] = [[pack(StreamStart(sid, 0, f"sess{k}", t0, t0, 30.0, "synthetic")) for k, sid in
                               enumerate(ids)]]  # fmt: skip
    stop = threading.Event()
    instant: list[bytes] = []
    for f in src.frames(stop):
        p = f.persons[0]
        t = t0 + int(f.frame * 1e9 / 30)
        instant.append(pack(FrameMessage(f.stream, 0, f.frame + 1, f.frame, f.pts_s, t, time.time_ns(),
                                         np.asarray(p.joints, np.float32), np.asarray(p.confidence, np.float32))))  # fmt: skip
        if len(instant) == streams:
            out.append(instant)
            instant = []
            if len(out) > frames:
                break
    out.append([pack(StreamEnd(sid, frames + 1, t0, t0, "eof", frames)) for sid in ids])
    return out


@dataclass
class StageTimer:
    """Exclusive wall time per stage (time in nested wrapped calls goes to their own stage)."""

    ns: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    _stack: list[int] = field(default_factory=list)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        perf = time.perf_counter_ns

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append(0)
            t0 = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = perf() - t0
                child = self._stack.pop()
                self.ns[stage] += dt - child
                self.calls[stage] += 1
                if self._stack:
                    self._stack[-1] += dt

        return timed


@contextmanager
def instrumented(timer: StageTimer) -> Iterator[list[str]]:
    """Wrap every present stage of :data:`STAGES`; yields the ones wrapped; restores them after."""
    undo: list[tuple[Any, str, Any]] = []
    wrapped: list[str] = []
    for stage, mod_name, attr in STAGES:
        owner: Any = importlib.import_module(mod_name)
        *path, name = attr.split(".")
        for p in path:
            owner = getattr(owner, p, None)
        if owner is None or name not in vars(owner):
            continue
        orig = vars(owner)[name]
        setattr(owner, name, timer.wrap(stage, orig))
        undo.append((owner, name, orig))
        wrapped.append(f"{stage}: {mod_name}.{attr}")
    try:
        yield wrapped
    finally:
        for owner, name, orig in reversed(undo):
            setattr(owner, name, orig)


class Drain:
    """A subscriber in a process of its own counting what the publisher sends (so sending is real,
    and the sink competes for neither the service's GIL nor its thread)."""

    def __init__(self, endpoint: str, expected: int) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.result: Any = ctx.Queue()
        self.proc = ctx.Process(target=_drain_main, args=(endpoint, expected, self.result), daemon=True)
        self.proc.start()

    def close(self, timeout_s: float = 30.0) -> int:
        """Messages the subscriber received (it stops when all expected came, or after ``timeout_s``)."""
        count: int = self.result.get(timeout=timeout_s)
        self.proc.join(timeout_s)
        return count


def _drain_main(endpoint: str, expected: int, result: Any) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.RCVHWM, 0)
    s.setsockopt(zmq.SUBSCRIBE, b"anon/")
    s.connect(endpoint)
    n = 0
    while n < expected and s.poll(10000):
        s.recv()
        n += 1
    result.put(n)
    s.close(0)
    ctx.term()


def run_once(instants: list[list[bytes]], timer: StageTimer | None, profile: cProfile.Profile | None,
             max_batch: int) -> dict[str, Any]:  # fmt: skip
    """Feed every message once through a fresh service; times and counts."""
    from pmr_stream.anonymizer.options import ServiceOptions
    from pmr_stream.anonymizer.service import AnonymizerService
    from pmr_stream.wire.sockets import Publisher, SocketOptions
    from pmr_stream.wire.subscriber import Subscriber

    backend = IdentityBackend()
    n_msgs = sum(len(i) for i in instants)
    opts = ServiceOptions(report_s=0, max_batch=max_batch, stream_key=b"k" * 32)
    with Publisher("tcp://127.0.0.1:*", SocketOptions(hwm=n_msgs + 1000), carries_raw=False) as pub, \
            Subscriber(["tcp://127.0.0.1:9"], ["raw/"]) as sub:  # fmt: skip
        drain = Drain(pub.endpoint, n_msgs)
        pub.wait_for_subscribers(1, 10.0)
        svc = AnonymizerService(backend, "bench-model", sub, pub, opts)
        svc._publish_ready()  # take the subscription now, outside the timed loop
        frames = sum(len(i) for i in instants[1:-1])
        cm = instrumented(timer) if timer is not None else _nothing()
        with cm:
            if timer is not None:
                backend.anonymize = timer.wrap(ENGINE, backend.anonymize)  # type: ignore[method-assign]
            if profile is not None:
                profile.enable()
            w0, c0, p0 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
            for instant in instants:  # what step() does with everything queued at once
                for data in instant:
                    r = sub.handle(data)
                    if r is None:
                        raise RuntimeError(f"the harness's message was dropped: {sub.last_error}")
                    svc.take(r)
                    if len(svc.due) >= svc.options.max_batch:
                        svc._run_due()
                        svc._publish_ready()
                svc._run_due()
                svc._publish_ready()
            w1, c1, p1 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
            if profile is not None:
                profile.disable()
        published = svc.stats.published_frames
        received = drain.close()
    if published != frames:
        raise RuntimeError(f"published {published} of {frames} frames (failed: {dict(svc.stats.failed)})")
    return {"frames": frames, "messages": n_msgs, "received_by_drain": received, "wall_ns": w1 - w0,
            "thread_cpu_ns": c1 - c0, "process_cpu_ns": p1 - p0, "engine_ns": backend.ns,
            "batches": svc.stats.batches}  # fmt: skip


@contextmanager
def _nothing() -> Iterator[list[str]]:
    yield []


def measure(
    streams: int, frames: int, repeat: int, seed: int, max_batch: int, top: int = 0
) -> dict[str, Any]:
    """The whole measurement: ``repeat`` plain runs (totals), one instrumented run (stages)."""
    instants = make_messages(streams, frames, seed)
    load0 = os.getloadavg()
    run_once(instants, None, None, max_batch)  # warm-up (imports, allocator)
    runs = [run_once(instants, None, None, max_batch) for _ in range(repeat)]
    n = runs[0]["frames"]

    def per_frame(key: str) -> dict[str, float]:
        vals = [(r[key] - (r["engine_ns"] if key == "wall_ns" else 0)) / n / 1e3 for r in runs]
        return {"min": round(min(vals), 1), "median": round(statistics.median(vals), 1)}

    timer = StageTimer()
    staged = run_once(instants, timer, None, max_batch)
    stages: dict[str, float] = {}
    for stage, _, _ in STAGES:
        if stage not in stages:
            stages[stage] = round(timer.ns[stage] / n / 1e3, 2)
    stages[ENGINE] = round(timer.ns[ENGINE] / n / 1e3, 2)
    covered = sum(timer.ns.values())
    stages["other (loop)"] = round(max(staged["wall_ns"] - covered, 0) / n / 1e3, 2)
    out: dict[str, Any] = {
        "streams": streams, "frames_per_stream": frames, "frames": n, "messages": runs[0]["messages"],
        "max_batch": max_batch, "batches": runs[0]["batches"], "repeat": repeat, "seed": seed,
        "received_by_drain": runs[-1]["received_by_drain"],
        "us_per_frame": {"wall_minus_engine": per_frame("wall_ns"), "thread_cpu": per_frame("thread_cpu_ns"),
                         "process_cpu": per_frame("process_cpu_ns")},
        "engine_us_per_frame": round(runs[0]["engine_ns"] / n / 1e3, 3),
        "stages_us_per_frame": stages, "stage_calls": dict(timer.calls),
        "stages_wall_us_per_frame_instrumented": round((staged["wall_ns"] - timer.ns[ENGINE]) / n / 1e3, 1),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }  # fmt: skip
    if top:
        prof = cProfile.Profile()
        run_once(instants, None, prof, max_batch)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
        out["profile"] = s.getvalue()
    return out


def table(d: dict[str, Any]) -> str:
    u = d["us_per_frame"]
    lines = [f"service cost per frame, engine excluded: {d['streams']} streams x {d['frames_per_stream']} frames "
             f"(max_batch {d['max_batch']}, {d['batches']} batches), load {d['loadavg_before'][0]} on "
             f"{d['cpus']} CPUs", "",
             f"{'total':<28}{'min us':>10}{'median us':>11}"]  # fmt: skip
    for k, v in u.items():
        lines.append(f"  {k:<26}{v['min']:>10.1f}{v['median']:>11.1f}")
    lines += ["", f"{'stage (instrumented, wall)':<34}{'us/frame':>10}"]
    for k, v in d["stages_us_per_frame"].items():
        lines.append(f"  {k:<32}{v:>10.2f}")
    lines.append(f"  {'sum without engine':<32}{d['stages_wall_us_per_frame_instrumented']:>10.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=60, help="streams (one person each)")
    p.add_argument("--frames", type=int, default=150, help="frames per stream")
    p.add_argument("--repeat", type=int, default=3, help="plain runs for the totals (min and median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-batch", type=int, default=128, help="the service's max_batch")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="also print the N hottest functions")
    p.add_argument("--json", help="write the result here too")
    a = p.parse_args(argv)
    d = measure(a.streams, a.frames, a.repeat, a.seed, a.max_batch, a.profile)
    prof = d.pop("profile", None)
    print(table(d))
    if prof:
        print(prof)
    print(json.dumps(d, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(d, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
