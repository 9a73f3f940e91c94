"""``pmr anonymizer --workers N``: N service processes behind one pair of endpoints.

::

    producers --raw/--> [front WireProxy] --ipc--> worker 0..N-1 --ipc--> [back WireProxy] --anon/--> sinks
                 XSUB (CURVE client)  XPUB            (--shard i/N)          XSUB        XPUB (CURVE server)

The two forwarders are ZeroMQ's own ``XSUB``/``XPUB`` proxy (:class:`~pmr_stream.wire.proxy.WireProxy`),
no hand-made router: every worker receives every ``raw/`` message and keeps the streams whose
topic hashes to its index (:mod:`pmr_stream.wire.shard`; another shard's frames are skipped
unread), so a stream is always served by the same worker. The private ``ipc://`` sockets lie in
a folder only this user can open. CURVE stays where the links leave the host: on the front
proxy's connections to the producers and on the ``--anon`` endpoint.

A worker that dies is started again (after 0.5 s, doubling up to 5 s while it keeps dying);
the producers see its subscription again and announce their streams to it, so its streams
resume, their windows starting afresh with padding. All workers read the same stream-id key,
so a stream keeps its ``anon/`` pseudonym whichever worker serves it.

Each worker prints its stats lines (``stats {...}``); the supervisor passes them on with
``"worker": i`` added (only if ``--report`` asked for them) and writes ``--stats-json`` as the
per-worker stats plus totals. ``--metrics-port P`` gives worker ``i`` the port ``P + i``
(``0``: a free port each). With ``--until-end`` a worker stops when every stream it served has
ended; the supervisor stops the workers that never served a stream once another has ended.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pmr_stream.wire.options import SocketOptions
from pmr_stream.wire.proxy import WireProxy

log = logging.getLogger(__name__)

#: seconds before a dead worker is started again (doubling while it keeps dying, up to :data:`RESTART_MAX_S`)
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 5.0
#: a worker that ran this long before dying starts again after :data:`RESTART_FIRST_S`
_STABLE_S = 30.0
#: the totals of ``--stats-json`` (sums over the workers' latest stats)
_SUMMED = ("frames_in", "published_frames", "published_other", "streams", "streams_seen", "persons",
           "windows", "batches", "shard_skipped", "seq_missing_total")  # fmt: skip


#: percentiles and maxima of ``--stats-json``: the worst worker's
_WORST = ("_p50", "_p99", "_max")


@dataclass
class _Worker:
    index: int
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff_s: float = RESTART_FIRST_S
    finished: bool = False  # ended by itself (duration or until-end), not to be restarted
    ready: bool = False
    ever_ready: bool = False
    last_line: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    readers: list[threading.Thread] = field(default_factory=list)


class WorkerFailed(RuntimeError):
    """A worker exited before it ever served (its flags, model or endpoints are wrong)."""


@dataclass(frozen=True)
class ShardPlan:
    """How the supervisor runs its workers.

    Attributes:
        workers: number of service processes (>= 2).
        raw: producer endpoints (the front proxy connects to them).
        anon: the ``anon/`` endpoint (the back proxy binds it).
        raw_options, anon_options: socket options of the two outer sides (CURVE, hwm).
        worker_argv: the flags every worker gets (backend, service, stream ids, duration);
            ``--raw``, ``--anon``, ``--shard`` and the per-worker flags are added here.
        report_s: seconds between stats lines asked for (0: none shown).
        stats_json: where to write the per-worker stats and totals.
        metrics_port: first metrics port (worker ``i`` gets ``+ i``; 0: a free port each).
        until_end: stop when the streams have ended.
        wait_subscribers, wait_timeout_s: wait for this many ``anon/`` subscribers first.
        python: the interpreter the workers run under.
    """

    workers: int
    raw: list[str]
    anon: str
    raw_options: SocketOptions
    anon_options: SocketOptions
    worker_argv: list[str]
    report_s: float = 5.0
    stats_json: Path | None = None
    metrics_port: int | None = None
    until_end: bool = False
    wait_subscribers: int = 0
    wait_timeout_s: float = 60.0
    python: str = sys.executable

    def __post_init__(self) -> None:
        if self.workers < 2:
            raise ValueError(f"--workers must be >= 2 for shards, got {self.workers}")


class ShardSupervisor:
    """Runs the proxies and the workers of a :class:`ShardPlan` until stopped (see the module)."""

    def __init__(
        self,
        plan: ShardPlan,
        out: Callable[[str], None] | None = None,
        err: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        #: where the workers' stdout lines go (stats lines tagged), and their stderr lines
        self.out = out or (lambda line: print(line, flush=True))
        self.err = err or (lambda line: print(line, file=sys.stderr, flush=True))
        self._dir = Path(tempfile.mkdtemp(prefix="pmr-shards-"))
        os.chmod(self._dir, 0o700)  # the ipc sockets carry raw skeletons: this user only
        self._lock = threading.Lock()
        self.workers = [_Worker(i, self._argv(i)) for i in range(plan.workers)]
        self.front: WireProxy | None = None
        self.back: WireProxy | None = None
        self._next_json = 0.0

    # ------------------------------------------------------------------ set-up

    def _ipc(self, name: str) -> str:
        return f"ipc://{self._dir / name}"

    def _argv(self, i: int) -> list[str]:
        p = self.plan
        argv = [p.python, "-m", "pmr_stream.cli", "anonymizer", *p.worker_argv,
                "--raw", self._ipc("raw"), "--anon", self._ipc(f"anon-{i}"), "--shard", f"{i}/{p.workers}",
                "--report", str(p.report_s if p.report_s > 0 else 1.0)]  # fmt: skip
        if p.until_end:
            argv.append("--until-end")
        if p.wait_subscribers > 0:  # the sinks are there: wait for their subscriptions through the proxy
            argv += ["--wait-subscribers", "1", "--wait-timeout", str(p.wait_timeout_s)]
        if p.metrics_port is not None:
            argv += ["--metrics-port", str(p.metrics_port + i if p.metrics_port else 0)]
        return argv

    def start(self, ready: Callable[[str], None] | None = None, stop: threading.Event | None = None) -> str:
        """Bind ``anon`` (``ready`` gets the bound endpoint), wait for its subscribers (if asked),
        connect to the producers and start the workers; the bound ``anon/`` endpoint."""
        p = self.plan
        inner = SocketOptions(hwm=p.anon_options.hwm, max_message_bytes=p.anon_options.max_message_bytes)
        self.back = WireProxy([self._ipc(f"anon-{i}") for i in range(p.workers)], p.anon, inner, p.anon_options,
                              carries_raw=False, name="anon-proxy", start=False)  # fmt: skip
        if ready is not None:
            ready(self.back.endpoint)
        if p.wait_subscribers > 0:
            got = self.back.wait_subscribers(p.wait_subscribers, p.wait_timeout_s, stop)
            if got < p.wait_subscribers:
                log.warning("only %d of %d anon subscribers after %.0f s; serving anyway",
                            got, p.wait_subscribers, p.wait_timeout_s)  # fmt: skip
        self.back.start()
        inner_raw = SocketOptions(hwm=p.raw_options.hwm, max_message_bytes=p.raw_options.max_message_bytes)
        self.front = WireProxy(p.raw, self._ipc("raw"), p.raw_options, inner_raw, carries_raw=True,
                               name="raw-proxy", start=False)  # fmt: skip
        for w in self.workers:
            self._spawn(w)
        # the producers hear of us once every worker has subscribed (after loading its model), so
        # that no worker misses the first frames of its streams
        got = self.front.wait_subscribers(p.workers, p.wait_timeout_s + 120.0, stop,
                                          abort=lambda: any(w.proc is None or w.proc.poll() is not None
                                                            for w in self.workers))  # fmt: skip
        self.poll()  # a worker that failed before serving raises WorkerFailed here
        if got < p.workers:
            log.warning("only %d of %d workers subscribed to raw/; serving anyway", got, p.workers)
        self.front.start()
        return self.back.endpoint

    def _spawn(self, w: _Worker) -> None:
        w.proc = subprocess.Popen(w.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  text=True, bufsize=1)  # fmt: skip
        w.started_at = time.monotonic()
        w.ready = False
        w.readers = [
            threading.Thread(target=self._read, args=(w, w.proc.stdout, self._line), name=f"worker-{w.index}-out",
                             daemon=True),
            threading.Thread(target=self._read, args=(w, w.proc.stderr, self._err_line),
                             name=f"worker-{w.index}-err", daemon=True),
        ]  # fmt: skip
        for t in w.readers:
            t.start()

    @staticmethod
    def _read(w: _Worker, stream: IO[str] | None, handle: Callable[[_Worker, str], None]) -> None:
        """Pass one of a worker's outputs on, line by line."""
        if stream is None:  # pragma: no cover - always a pipe
            return
        with stream:
            for line in stream:
                handle(w, line.rstrip("\n"))

    def _err_line(self, w: _Worker, line: str) -> None:
        """A worker's log line: on stderr, prefixed with the worker."""
        if line.strip():
            w.last_line = line
        self.err(f"[worker {w.index}] {line}")

    def _line(self, w: _Worker, line: str) -> None:
        if line.startswith("stats "):
            try:
                d = json.loads(line[6:])
            except json.JSONDecodeError:
                self.out(f"[worker {w.index}] {line}")
                return
            with self._lock:
                w.stats = d
            if self.plan.report_s > 0:
                self.out("stats " + json.dumps({"worker": w.index, **d}, default=str))
            self._write_json()
        elif line.startswith("anonymizer: ") and " anon/ on " in line:
            w.ready = w.ever_ready = True
            log.debug("worker %d: %s", w.index, line)
        else:
            self.out(f"[worker {w.index}] {line}")

    # ------------------------------------------------------------------ running

    def all_ready(self) -> bool:
        """Every live worker has said it serves."""
        return all(w.ready or w.finished for w in self.workers)

    def poll(self) -> bool:
        """Restart dead workers; ``False`` once every worker has finished (or must stop)."""
        now = time.monotonic()
        for w in self.workers:
            if w.finished or w.proc is None:
                continue
            rc = w.proc.poll()
            if rc is None:
                continue
            if w.next_start == 0.0:  # just died or ended
                if rc == 0:
                    w.finished = True
                    log.info("worker %d ended", w.index)
                    continue
                if not w.ever_ready:  # it never served: a bad flag or a broken model, not a crash to ride out
                    for t in w.readers:
                        t.join(5.0)
                    raise WorkerFailed(f"worker {w.index} failed before serving (exit {rc}): "
                                       f"{w.last_line or 'see its log above'}")  # fmt: skip
                if now - w.started_at > _STABLE_S:
                    w.backoff_s = RESTART_FIRST_S
                w.next_start = now + w.backoff_s
                log.warning("worker %d (shard %d/%d) exited with %d; starting it again in %.1f s",
                            w.index, w.index, self.plan.workers, rc, w.backoff_s)  # fmt: skip
                w.backoff_s = min(w.backoff_s * 2, RESTART_MAX_S)
            elif now >= w.next_start:
                w.next_start = 0.0
                w.restarts += 1
                self._spawn(w)
        if self.plan.until_end and any(w.finished for w in self.workers):
            idle = [w for w in self.workers if not w.finished and w.proc is not None and w.proc.poll() is None
                    and w.stats and not w.stats.get("streams_seen")]  # fmt: skip
            busy = [w for w in self.workers if not w.finished and w not in idle]
            if not busy:
                for w in idle:  # never served a stream: nothing will end for it
                    self._terminate(w)
                    w.finished = True
        return not all(w.finished for w in self.workers)

    def run(
        self, stop: threading.Event, duration_s: float | None = None, poll_s: float = 0.1
    ) -> dict[str, Any]:
        """Supervise until ``stop``, ``duration_s`` or every worker finished; the final totals."""
        t_end = (
            None if duration_s is None else time.monotonic() + duration_s + 30.0
        )  # workers stop themselves
        while not stop.wait(poll_s):
            if not self.poll():
                break
            if t_end is not None and time.monotonic() > t_end:
                log.warning("workers still running 30 s past --duration: stopping them")
                break
        return self.close()

    def _terminate(self, w: _Worker, timeout_s: float = 10.0) -> None:
        if w.proc is None or w.proc.poll() is not None:
            return
        w.proc.send_signal(signal.SIGTERM)
        try:
            w.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("worker %d did not stop within %.0f s: killed", w.index, timeout_s)
            w.proc.kill()
            w.proc.wait()

    def kill_worker(self, index: int) -> int:
        """Kill worker ``index`` (SIGKILL, as a crash would); its pid. For tests and drills."""
        proc = self.workers[index].proc
        if proc is None:
            raise ValueError(f"worker {index} is not running")
        proc.kill()
        return proc.pid

    def totals(self) -> dict[str, Any]:
        """The workers' latest stats summed (:data:`_SUMMED`), with restarts and per-worker stats."""
        with self._lock:
            per = {w.index: dict(w.stats) for w in self.workers}
        out: dict[str, Any] = {k: sum(int(d.get(k) or 0) for d in per.values()) for k in _SUMMED}
        n_batches = sum(int(d.get("batches") or 0) for d in per.values())
        out["batch_size_mean"] = (round(sum(float(d.get("batch_size_mean") or 0) * int(d.get("batches") or 0)
                                            for d in per.values()) / n_batches, 2) if n_batches else None)  # fmt: skip
        for k in ("windows_per_s", "arrival_rate_per_s"):
            out[k] = round(sum(float(d.get(k) or 0.0) for d in per.values()), 1)
        failed: dict[str, int] = {}
        for d in per.values():
            for k, v in (d.get("failed") or {}).items():
                failed[k] = failed.get(k, 0) + int(v)
        out["failed"] = failed
        for k in sorted({k for d in per.values() for k in d if k.endswith(_WORST) or k == "max_queue"}):
            vals = [d[k] for d in per.values() if isinstance(d.get(k), (int, float))]
            out[k] = max(vals) if vals else None  # the worst worker's
        for k in ("backend", "model_id", "policy", "max_batch"):
            out[k] = next((d[k] for d in per.values() if k in d), None)
        out["workers"] = len(self.workers)
        out["restarts"] = sum(w.restarts for w in self.workers)
        out["per_worker"] = per
        return out

    def _write_json(self, force: bool = False) -> None:
        path = self.plan.stats_json
        if path is None or (not force and time.monotonic() < self._next_json):
            return
        self._next_json = time.monotonic() + 1.0
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.totals(), indent=1, default=str))
        tmp.replace(path)

    def close(self) -> dict[str, Any]:
        """Stop the workers (SIGTERM: they publish what is due and print their final stats),
        then the proxies; the final totals."""
        for w in self.workers:
            self._terminate(w)
        for w in self.workers:
            for t in w.readers:
                t.join(5.0)
        for px in (self.front, self.back):
            if px is not None:
                px.close()
        self.front = self.back = None
        final = self.totals()
        self._write_json(force=True)
        if self._dir.is_dir():
            for f in self._dir.iterdir():
                f.unlink(missing_ok=True)
            self._dir.rmdir()
        return final


__all__ = ["ShardPlan", "ShardSupervisor", "WorkerFailed", "RESTART_FIRST_S", "RESTART_MAX_S"]
