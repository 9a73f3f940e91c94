"""The metrics endpoint under hostile clients, and per-stream ``seq_missing`` on ``/metrics``.

Real sockets: a :class:`MetricsServer` with 200 idle TCP connections, the anonymizer as a
``pmr anonymizer`` process (threads counted in ``/proc``), and the service in a thread with a
ZeroMQ connection cut in the middle of a stream.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.http import QUANTILES, MetricsOptions, MetricsServer, prometheus_text
from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.service import serve
from pmr_stream.wire.sockets import Publisher
from tests.service.conftest import end_msg, frame_msg, start_msg, wait_connected
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
IDLE = 200


def _closed_by_server(s: socket.socket, timeout_s: float) -> bool:
    """True when the server closed ``s`` (EOF or reset) within ``timeout_s``."""
    s.settimeout(timeout_s)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


def test_idle_connections_cost_no_threads_and_are_closed_after_the_timeout() -> None:
    with MetricsServer(0, options=MetricsOptions(timeout_s=1.0)) as m:
        m.update({"frames_in": 7})
        threads = threading.active_count()
        t0 = time.monotonic()
        idle = [socket.create_connection((m.host, m.port), timeout=5) for _ in range(IDLE)]
        try:
            assert threading.active_count() <= threads  # one serving thread, whatever connects
            assert "pmr_anonymizer_frames_in 7" in _get(f"{m.url}/metrics")  # still answers a scrape
            assert threading.active_count() <= threads
            assert m.open_connections <= m.options.max_connections
            # every idle connection is closed by the server, none later than the timeout (plus slack)
            assert all(_closed_by_server(s, max(0.1, t0 + 1.0 + 3.0 - time.monotonic())) for s in idle)
            assert time.monotonic() - t0 < 1.0 + 3.0
            wait_until(
                lambda: m.open_connections == 0,
                timeout_s=10,
                interval_s=0.05,
                what="the server to forget them",
            )
            assert m.counters.timeouts + m.counters.evicted >= IDLE
        finally:
            for s in idle:
                s.close()


def test_a_slow_client_is_cut_at_the_timeout_and_bad_requests_get_an_answer() -> None:
    with MetricsServer(0, options=MetricsOptions(timeout_s=0.5)) as m:
        s = socket.create_connection((m.host, m.port), timeout=5)
        s.sendall(b"GET /metr")  # and then nothing (slowloris)
        t0 = time.monotonic()
        assert _closed_by_server(s, 3) and time.monotonic() - t0 < 2
        s.close()
        for req, status in ((b"POST /metrics HTTP/1.1\r\n\r\n", b"405"), (b"nonsense\r\n\r\n", b"400"),
                            (b"GET /x HTTP/1.0\r\n\r\n", b"404")):  # fmt: skip
            with socket.create_connection((m.host, m.port), timeout=5) as c:
                c.sendall(req)
                assert c.recv(100).split(b" ")[1] == status


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
def test_pmr_anonymizer_metrics_endpoint_keeps_its_threads_under_200_idle_connections() -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "pmr_stream.cli", "anonymizer", "--raw", "tcp://127.0.0.1:9", "--anon",
         "tcp://127.0.0.1:*", "--backend", "onnxruntime", "--device", "cpu", "--metrics-port", "0",
         "--report", "0", "--duration", "60"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        assert p.stdout is not None
        url, ready = None, False
        while url is None or not ready:  # the metrics line comes first, then the ready line
            line = p.stdout.readline()
            assert line, f"the anonymizer exited ({p.poll()}) before it was ready"
            if (found := re.search(r"statistics on (http://[0-9.:]+)/metrics", line)) is not None:
                url = found.group(1)
            ready = ready or "anon/ on tcp://" in line
        _get(f"{url}/metrics")
        counts = [_threads(p.pid)]

        def settled() -> bool:  # its sockets' threads have all started: the same count three times
            counts.append(_threads(p.pid))
            return len(set(counts[-3:])) == 1

        wait_until(settled, interval_s=0.2, what="the anonymizer's thread count to settle")
        before = counts[-1]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        t0 = time.monotonic()
        idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(IDLE)]
        assert "pmr_anonymizer_frames_in 0" in _get(f"{url}/metrics")
        assert _threads(p.pid) <= before + 2, (
            f"{_threads(p.pid)} threads with {IDLE} idle connections, {before} before"
        )
        timeout = MetricsOptions().timeout_s
        assert all(_closed_by_server(s, max(0.1, t0 + timeout + 3 - time.monotonic())) for s in idle)
        assert _threads(p.pid) <= before + 2
    finally:
        for s in idle:
            s.close()
        p.kill()
        p.communicate(timeout=10)


@contextmanager
def _service_with_metrics(raw_endpoint: str, backend: Any) -> Iterator[tuple[str, threading.Event]]:
    """``serve`` in a thread with a metrics endpoint; yields its URL and the stop event."""
    urls: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            serve([raw_endpoint], "tcp://127.0.0.1:*", backend, "test-model",
                  ServiceOptions(report_s=0, metrics_port=0, stream_key=b"k" * 32), stop=stop, duration_s=60,
                  on_metrics=urls.append)  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            errors.append(exc)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    try:
        wait_until(lambda: urls or errors, timeout_s=30, interval_s=0.05, what="the metrics endpoint")
        assert not errors, errors
        yield urls[0], stop
    finally:
        stop.set()
        th.join(30)
        assert not errors, errors


def _metric(text: str, name: str) -> float | None:
    found = re.search(rf"^pmr_anonymizer_{re.escape(name)} (\S+)$", text, re.M)
    return None if found is None else float(found.group(1))


def _scrape_until(url: str, pred: Callable[[str], bool], what: str, timeout_s: float = 20) -> str:
    """``/metrics`` once ``pred`` holds for it."""
    return str(wait_until(lambda: (t := _get(f"{url}/metrics")) and pred(t) and t, timeout_s, 0.05, what))


def _anon_id(stream: str) -> str:
    from pmr_stream.wire.privacy import StreamIds

    return StreamIds(b"k" * 32).anon(stream)


def test_a_skipped_seq_shows_as_seq_missing_of_its_stream(backend: Any) -> None:
    """Seqs 1..10, then 106..110: 95 messages lost on the way, per stream (labelled with the
    stream's anon/ id, not its raw id) and in the total."""
    clip = np.zeros((25, 3), np.float32) + np.linspace(0, 0.5, 25, dtype=np.float32)[:, None]
    with Publisher("tcp://127.0.0.1:*") as raw, _service_with_metrics(raw.endpoint, backend) as (url, _):
        wait_connected(raw)
        for s in ("cam", "other"):
            raw.send(start_msg(s, 0))
        for seq in [*range(1, 11), *range(106, 111)]:
            raw.send(frame_msg("cam", seq, seq, clip))
            raw.send(frame_msg("other", seq - (95 if seq > 100 else 0), seq, clip))  # nothing lost
        series = f'seq_missing{{stream="{_anon_id("cam")}"}}'
        text = _scrape_until(url, lambda t: _metric(t, series) is not None, "seq_missing on /metrics")
    assert _metric(text, series) == 95
    assert _metric(text, "seq_missing_total") == 95
    assert f'stream="{_anon_id("other")}"' not in text and 'stream="cam"' not in text  # no raw id


def test_a_connection_cut_shows_its_lost_frames_as_seq_missing(backend: Any) -> None:
    """ZeroMQ cuts the service's raw/ connection (a message over the size limit); the frames
    sent while it reconnects are lost, and exactly that many show as the stream's ``seq_missing``,
    still after the stream ended and was forgotten."""
    clip = np.zeros((25, 3), np.float32) + np.linspace(0, 0.5, 25, dtype=np.float32)[:, None]
    with Publisher("tcp://127.0.0.1:*") as raw, _service_with_metrics(raw.endpoint, backend) as (url, _):
        wait_connected(raw)
        raw.send(start_msg("cam", 0))
        seq = 1
        for _ in range(20):
            raw.send(frame_msg("cam", seq, seq, clip))
            seq += 1
        _scrape_until(url, lambda t: _metric(t, "frames_in") == 20, "the first 20 frames")
        raw.send_raw(b"raw/cam\0" + bytes(2 << 20))  # over the 1 MiB limit: ZeroMQ cuts the connection
        cut = 'wire_drops{reason="connection_cut"}'
        while True:  # a frame every 2 ms until the service is connected again and gets them
            raw.send(frame_msg("cam", seq, seq, clip))
            seq += 1
            raw.poll_subscriptions()
            time.sleep(0.002)  # the producer's pace: how many frames the reconnection loses is under test
            text = _get(f"{url}/metrics") if seq % 25 == 0 else ""
            if _metric(text, cut) == 1 and (_metric(text, "frames_in") or 0) > 20:
                break
            assert seq < 20000, "the service never reconnected"
        raw.send(end_msg("cam", seq, seq - 1))
        series = f'seq_missing{{stream="{_anon_id("cam")}"}}'

        # the start and the end are out (every frame before the end was received), and the service
        # has forgotten the ended stream: its losses are still there for the next scrape
        text = _scrape_until(url, lambda t: (_metric(t, "published_other") or 0) >= 2 and _metric(t, "streams") == 0,
                             "the stream end and its eviction")  # fmt: skip
    frames_in = _metric(text, "frames_in")
    lost = (seq - 1) - frames_in  # frames sent - frames the service received
    assert lost > 0 and _metric(text, series) == lost and _metric(text, "seq_missing_total") == lost


def test_prometheus_text_labels_per_stream_counters_and_escapes_them() -> None:
    text = prometheus_text({"seq_missing": {'a"b\\c': 3, "s-1": 95}, "seq_missing_total": 98})
    assert 'pmr_anonymizer_seq_missing{stream="a\\"b\\\\c"} 3' in text
    assert (
        'pmr_anonymizer_seq_missing{stream="s-1"} 95' in text
        and "pmr_anonymizer_seq_missing_total 98" in text
    )


def test_prometheus_text_exports_refusals_by_reason() -> None:
    text = prometheus_text({"refused": {"too_many_streams": 4, "metadata_too_large": 1}})
    assert 'pmr_anonymizer_refused{reason="too_many_streams"} 4' in text
    assert 'pmr_anonymizer_refused{reason="metadata_too_large"} 1' in text


def test_prometheus_text_exports_the_declared_percentile_series_by_quantile() -> None:
    """Percentiles are found by the series the service declares (:data:`QUANTILES`), not by name:
    ``queue_wait_ms_p50``/``_p99`` become one labelled gauge, a series without samples is left
    out, and an undeclared ``*_p50`` key is a plain gauge."""
    assert set(QUANTILES) >= {"engine_ms_per_batch", "queue_wait_ms", "capture_to_publish_ms"}
    summary = {"queue_wait_ms_p50": 0.5, "queue_wait_ms_p99": 0.75, "engine_ms_per_batch_p50": None,
               "engine_ms_per_batch_p99": None, "other_p50": 3}  # fmt: skip
    text = prometheus_text(summary)
    assert text.count("# TYPE pmr_anonymizer_queue_wait_ms gauge") == 1
    assert 'pmr_anonymizer_queue_wait_ms{quantile="0.5"} 0.5' in text
    assert 'pmr_anonymizer_queue_wait_ms{quantile="0.99"} 0.75' in text
    assert "queue_wait_ms_p" not in text and "engine_ms_per_batch" not in text
    assert "pmr_anonymizer_other_p50 3" in text
    custom = prometheus_text({"x_ms_p90": 2.0}, quantiles={"x_ms": (90,)})
    assert 'pmr_anonymizer_x_ms{quantile="0.9"} 2.0' in custom
