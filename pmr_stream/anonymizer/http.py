"""A small HTTP endpoint for the anonymizer's live statistics.

``GET /metrics`` answers Prometheus text (exposition format 0.0.4), ``GET /stats.json``
the same statistics as JSON. It serves the latest snapshot the service loop handed over
(:meth:`MetricsServer.update`), so the HTTP side never touches the loop's live state.
Binds 127.0.0.1 unless told otherwise: the statistics carry no joints, but nothing
outside the host needs them by default.

One thread serves every connection (a selector over non-blocking sockets), so idle or
slow clients cost no threads: each connection must send its request and take the answer
within :attr:`MetricsOptions.timeout_s` or it is closed, at most
:attr:`MetricsOptions.max_connections` are open at once (a new one closes the oldest),
and every answer closes its connection.
"""

from __future__ import annotations

import errno
import json
import logging
import selectors
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from pmr_stream.stats import percentile_key

log = logging.getLogger(__name__)

#: Summary fields that are percentile series: the series' name and the percentiles (0-100)
#: the summary holds of it, each under :func:`~pmr_stream.stats.percentile_key`
#: (``engine_ms_per_batch_p50``, ``engine_ms_per_batch_p99``). The service builds its summary
#: from this table; ``/metrics`` exports each series as one gauge with a ``quantile`` label.
QUANTILES: Final[dict[str, tuple[float, ...]]] = {
    "batch_size": (50, 99),
    "engine_ms_per_batch": (50, 99),
    "engine_ms_per_window": (50, 99),
    "queue_wait_ms": (50, 99),
    "capture_to_publish_ms": (50, 99),
}
#: Summary fields that are a map of counters: the label each key becomes.
LABELLED: Final[dict[str, str]] = {
    "failed": "reason",
    "wire_drops": "reason",
    "refused": "reason",
    "seq_missing": "stream",
}


def _label_value(v: object) -> str:
    """A Prometheus label value, escaped (backslash, double quote, newline)."""
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def prometheus_text(
    summary: dict[str, Any],
    prefix: str = "pmr_anonymizer",
    quantiles: Mapping[str, Sequence[float]] = QUANTILES,
) -> str:
    """The numeric fields of a stats summary in Prometheus text format.

    Numbers become gauges ``<prefix>_<name>``; the maps named in :data:`LABELLED` become one
    series per key (``failed``/``wire_drops``/``refused`` by ``reason``, ``seq_missing`` by ``stream``);
    each series of ``quantiles`` (default :data:`QUANTILES`) becomes one gauge ``<prefix>_<series>``
    with a sample per percentile, ``{quantile="0.5"}`` from the summary's ``<series>_p50``, and
    so on (``None``, no samples yet, is left out).
    """
    lines: list[str] = []

    def gauge(name: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# TYPE {prefix}_{name} gauge")
        lines.extend(f"{prefix}_{name}{labels} {value}" for labels, value in samples)

    series_of = {percentile_key(name, q): name for name, qs in quantiles.items() for q in qs}
    done: set[str] = set()
    for k, v in summary.items():
        if k in series_of:  # the whole series where its first percentile stands
            name = series_of[k]
            if name not in done:
                done.add(name)
                pts = [(f'{{quantile="{q / 100:g}"}}', float(x)) for q in quantiles[name]
                       if _number(x := summary.get(percentile_key(name, q)))]  # fmt: skip
                if pts:
                    gauge(name, pts)
        elif isinstance(v, bool):
            continue
        elif isinstance(v, (int, float)):
            gauge(k, [("", v)])
        elif isinstance(v, dict) and k in LABELLED:
            label = LABELLED[k]
            gauge(k, [(f'{{{label}="{_label_value(r)}"}}', n) for r, n in sorted(v.items()) if _number(n)])
    return "\n".join(lines) + "\n"


class MetricsBindError(OSError):
    """The metrics endpoint cannot bind its address (the message names it and why)."""


@dataclass(frozen=True)
class MetricsOptions:
    """Limits of :class:`MetricsServer`.

    Attributes:
        timeout_s: seconds a connection has, from accept, to send its request and take the
            whole answer; then it is closed (idle and slow clients included).
        max_connections: connections open at once; one more closes the oldest.
        max_request_bytes: largest request head accepted (431 beyond it).
    """

    timeout_s: float = 5.0
    max_connections: int = 64
    max_request_bytes: int = 8192

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_connections < 1 or self.max_request_bytes < 64:
            raise ValueError("max_connections must be >= 1 and max_request_bytes >= 64")


@dataclass
class MetricsCounters:
    """What the endpoint did: connections accepted, requests answered, connections closed
    for running past the timeout or to make room (``evicted``)."""

    connections: int = 0
    requests: int = 0
    timeouts: int = 0
    evicted: int = 0


@dataclass
class _Conn:
    sock: socket.socket
    deadline: float  # time.monotonic()
    inbuf: bytearray = field(default_factory=bytearray)
    out: memoryview | None = None


_REASONS: Final[dict[int, str]] = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                                   431: "Request Header Fields Too Large"}  # fmt: skip


class MetricsServer:
    """Serve the latest statistics snapshot over HTTP from one daemon thread.

    ``port=0`` picks a free port (see :attr:`port`). The address is bound in the
    constructor: :class:`MetricsBindError` (an ``OSError``) names it when it is taken.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", options: MetricsOptions | None = None) -> None:
        self.options = options or MetricsOptions()
        self.counters = MetricsCounters()
        self._snapshot: dict[str, Any] = {}
        self._lock = threading.Lock()
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, _, _, _, addr = infos[0]
            lsock = socket.socket(family, socket.SOCK_STREAM)
        except (OSError, IndexError) as exc:
            raise MetricsBindError(
                f"metrics endpoint {host}:{port}: cannot use this address ({exc})"
            ) from exc
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(addr)
            lsock.listen(128)
            lsock.setblocking(False)
        except OSError as exc:
            lsock.close()
            why = (
                "the port is in use by another process"
                if exc.errno == errno.EADDRINUSE
                else exc.strerror or exc
            )
            raise MetricsBindError(f"metrics endpoint {host}:{port}: cannot bind ({why}); choose another "
                                   "--metrics-port (0: any free port)") from exc  # fmt: skip
        self._listener = lsock
        self.host, self.port = str(lsock.getsockname()[0]), int(lsock.getsockname()[1])
        self._sel = selectors.DefaultSelector()
        self._sel.register(lsock, selectors.EVENT_READ, None)
        self._conns: dict[int, _Conn] = {}  # by fd, in accept order (oldest first)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    # ------------------------------------------------------------------ snapshot

    def update(self, summary: dict[str, Any]) -> None:
        """Hand over a new snapshot (called by the service loop)."""
        with self._lock:
            self._snapshot = dict(summary)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._snapshot

    @property
    def url(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections open now (accepted, not yet answered or closed)."""
        return len(self._conns)

    # ------------------------------------------------------------------ the serving thread

    def _serve(self) -> None:
        try:
            while not self._closing.is_set():
                for key, mask in self._sel.select(0.1):
                    if key.data is None:
                        self._accept()
                    else:
                        self._io(key.data, mask)
                now = time.monotonic()
                for c in [c for c in self._conns.values() if now >= c.deadline]:
                    self.counters.timeouts += 1
                    log.debug("metrics: closed a connection after %.1f s without a complete exchange",
                              self.options.timeout_s)  # fmt: skip
                    self._drop(c)
        except Exception:  # noqa: BLE001 - the endpoint must never take the service down
            log.exception("metrics endpoint stopped")
        finally:
            for c in list(self._conns.values()):
                self._drop(c)
            self._sel.close()
            self._listener.close()

    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: free one, try again on the next round
                log.warning("metrics: accept failed: %s", exc)
                if self._conns:
                    self.counters.evicted += 1
                    self._drop(next(iter(self._conns.values())))
                else:
                    time.sleep(0.05)  # the listener stays readable: do not spin
                return
            sock.setblocking(False)
            if len(self._conns) >= self.options.max_connections:
                self.counters.evicted += 1
                self._drop(next(iter(self._conns.values())))
            c = _Conn(sock, time.monotonic() + self.options.timeout_s)
            self._conns[sock.fileno()] = c
            self._sel.register(sock, selectors.EVENT_READ, c)
            self.counters.connections += 1

    def _drop(self, c: _Conn) -> None:
        fd = c.sock.fileno()
        if fd >= 0 and self._conns.pop(fd, None) is not None:
            self._sel.unregister(c.sock)
        c.sock.close()

    def _io(self, c: _Conn, mask: int) -> None:
        try:
            if c.out is None and mask & selectors.EVENT_READ:
                data = c.sock.recv(4096)
                if not data:
                    self._drop(c)
                    return
                c.inbuf += data
                end = c.inbuf.find(b"\r\n\r\n")
                end = end if end >= 0 else c.inbuf.find(b"\n\n")
                if end < 0:
                    if len(c.inbuf) > self.options.max_request_bytes:
                        self._answer(c, 431, b"request too large\n", "text/plain")
                    return
                self._answer(c, *self._respond(bytes(c.inbuf[:end])))
            elif c.out is not None and mask & selectors.EVENT_WRITE:
                self._send(c)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the peer and the like
            self._drop(c)

    def _respond(self, head: bytes) -> tuple[int, bytes, str]:
        """``(status, body, content type)`` for one request head."""
        parts = head.split(b"\n", 1)[0].decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, b"bad request\n", "text/plain"
        if parts[0] not in ("GET", "HEAD"):
            return 405, b"only GET\n", "text/plain"
        path = parts[1].split("?", 1)[0]
        if path == "/metrics":
            return 200, prometheus_text(self.snapshot()).encode(), "text/plain; version=0.0.4; charset=utf-8"
        if path == "/stats.json":
            return 200, json.dumps(self.snapshot()).encode(), "application/json"
        return 404, b"try /metrics or /stats.json\n", "text/plain"

    def _answer(self, c: _Conn, status: int, body: bytes, ctype: str) -> None:
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
        head_only = c.inbuf[:5] == b"HEAD "
        c.out = memoryview(head if head_only else head + body)
        c.inbuf.clear()
        self.counters.requests += 1
        self._sel.modify(c.sock, selectors.EVENT_WRITE, c)
        self._send(c)

    def _send(self, c: _Conn) -> None:
        assert c.out is not None
        n = c.sock.send(c.out)
        c.out = c.out[n:]
        if not len(c.out):
            try:
                c.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._drop(c)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop serving and close every connection and the listening socket."""
        self._closing.set()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "LABELLED",
    "QUANTILES",
    "MetricsBindError",
    "MetricsCounters",
    "MetricsOptions",
    "MetricsServer",
    "prometheus_text",
]
