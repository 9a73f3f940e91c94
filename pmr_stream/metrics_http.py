"""A small HTTP endpoint for the anonymizer's live statistics.

``GET /metrics`` answers Prometheus text (exposition format 0.0.4), ``GET /stats.json``
the same statistics as JSON. It serves the latest snapshot the service loop handed over
(:meth:`MetricsServer.update`), so the HTTP thread never touches the loop's live state.
Binds 127.0.0.1 unless told otherwise: the statistics carry no joints, but nothing
outside the host needs them by default.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

_QUANTILE_SUFFIX = "_p50_p99"


def prometheus_text(summary: dict[str, Any], prefix: str = "pmr_anonymizer") -> str:
    """The numeric fields of a stats summary in Prometheus text format.

    Numbers become gauges ``<prefix>_<name>``; ``failed`` and ``wire_drops`` become one
    series per reason; ``*_p50_p99`` pairs become ``{quantile="0.5"}`` / ``{quantile="0.99"}``.
    """
    lines: list[str] = []

    def gauge(name: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# TYPE {prefix}_{name} gauge")
        lines.extend(f"{prefix}_{name}{labels} {value}" for labels, value in samples)

    for k, v in summary.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            gauge(k, [("", v)])
        elif isinstance(v, dict) and k in ("failed", "wire_drops"):
            gauge(k, [(f'{{reason="{r}"}}', n) for r, n in sorted(v.items()) if isinstance(n, (int, float))])
        elif isinstance(v, list) and k.endswith(_QUANTILE_SUFFIX) and len(v) == 2:
            pts = [(f'{{quantile="{q}"}}', x) for q, x in zip(("0.5", "0.99"), v, strict=True) if x is not None]
            if pts:
                gauge(k[: -len(_QUANTILE_SUFFIX)], pts)
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serve the latest statistics snapshot over HTTP in a daemon thread.

    ``port=0`` picks a free port (see :attr:`port`).
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._snapshot: dict[str, Any] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                snap = server.snapshot()
                if self.path.split("?")[0] == "/metrics":
                    body, ctype = prometheus_text(snap).encode(), "text/plain; version=0.0.4; charset=utf-8"
                elif self.path.split("?")[0] == "/stats.json":
                    body, ctype = json.dumps(snap).encode(), "application/json"
                else:
                    self.send_error(404, "try /metrics or /stats.json")
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                log.debug("metrics %s: " + format, self.address_string(), *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[0], int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def update(self, summary: dict[str, Any]) -> None:
        """Hand over a new snapshot (called by the service loop)."""
        with self._lock:
            self._snapshot = dict(summary)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._snapshot

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["MetricsServer", "prometheus_text"]
