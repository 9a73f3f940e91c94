"""Shared pieces of the streaming-anonymizer tests: a loaded backend, a service running in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.service import serve
from pmr_stream.wire.schema import FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher, SocketOptions
from pmr_stream.wire.subscriber import Subscriber
from tests.waiting import wait_until


@pytest.fixture(scope="session")
def backend() -> Any:
    from pmr_stream.backends import get_backend

    b = get_backend("onnxruntime", device="cpu")
    b.warmup((1, 8))
    return b


class Running:
    def __init__(self) -> None:
        self.anon_endpoint = ""
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.result: dict[str, Any] = {}
        #: the service's latest stats line (every ``ServiceOptions.report_s`` seconds while it runs)
        self.summary: dict[str, Any] = {}
        self.error: BaseException | None = None


@contextmanager
def running_service(raw_endpoint: str, backend: Any, options: ServiceOptions | None = None,
                    wait_subscribers: int = 1, until_end: bool = False,
                    socket_options: SocketOptions | None = None) -> Iterator[Running]:  # fmt: skip
    """The anonymizer in a thread (real sockets on loopback), stopped on exit."""
    r = Running()

    def ready(ep: str) -> None:
        r.anon_endpoint = ep
        r.ready.set()

    def report(d: dict[str, Any]) -> None:
        r.summary = d

    def target() -> None:
        try:
            r.result = serve([raw_endpoint], "tcp://127.0.0.1:*", backend, "test-model",
                             options or ServiceOptions(report_s=0), socket_options, stop=r.stop, duration_s=60,
                             until_end=until_end, wait_subscribers=wait_subscribers, wait_timeout_s=10,
                             report=report, ready=ready)  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            r.error = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    assert r.ready.wait(30), "service did not start"
    try:
        yield r
    finally:
        r.stop.set()
        th.join(30)
        assert not th.is_alive()
        if r.error is not None:
            raise r.error


def start_msg(stream: str, seq: int, session: str = "s1") -> StreamStart:
    return StreamStart(stream=stream, seq=seq, session=session, t_mono_ns=time.monotonic_ns(),
                       t_wall_ns=time.time_ns(), fps=30.0, source="test", max_persons=2)  # fmt: skip


def frame_msg(stream: str, seq: int, frame: int, joints: np.ndarray, person: int = 0) -> FrameMessage:
    return FrameMessage(stream=stream, person=person, seq=seq, frame=frame, pts_s=frame / 30,
                        t_mono_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(), joints=joints,
                        confidence=np.ones(25, np.float32))  # fmt: skip


def end_msg(stream: str, seq: int, frames: int) -> StreamEnd:
    return StreamEnd(
        stream=stream, seq=seq, t_mono_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(), frames=frames
    )


def announce(raw: Publisher, sub: Subscriber, stream: str, seq: int = 0, session: str = "s1") -> list[Any]:
    """Send the start of ``stream`` and wait until the service has published it to ``sub``: from
    then on the service's loop runs and delivers to ``sub``. Returns what ``sub`` received (the start)."""
    raw.send(start_msg(stream, seq, session))
    got: list[Any] = []

    def started() -> bool:
        r = sub.receive(0.1)
        if r is not None:
            got.append(r)
        return any(isinstance(x.message, StreamStart) for x in got)

    wait_until(started, timeout_s=30, interval_s=0, what=f"the service to publish the start of {stream}")
    return got


def collect(sub: Subscriber, until_ends: int = 1, timeout_s: float = 20.0) -> list[Any]:
    """Messages accepted on ``sub`` until ``until_ends`` stream ends arrived (or the timeout)."""
    got: list[Any] = []
    ends = 0
    t_end = time.monotonic() + timeout_s
    while ends < until_ends and time.monotonic() < t_end:
        r = sub.receive(0.1)
        if r is None:
            continue
        got.append(r)
        if isinstance(r.message, StreamEnd):
            ends += 1
    return got


def wait_connected(pub: Publisher, n: int = 1) -> None:
    assert pub.wait_for_subscribers(n, timeout_s=15), "the service did not subscribe"
