"""A subscriber that hears nothing is told which topics the publisher carries (real sockets)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pmr_stream.wire.options import SocketOptions
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from pmr_stream.wire.topics import SilenceHint
from tests.waiting import wait_until
from tests.wire.messages import TCP_ANY, start

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def publishing(stream: str) -> Iterator[Publisher]:
    """A publisher that keeps announcing ``raw/<stream>`` (every 20 ms) while the block runs."""
    with Publisher(TCP_ANY) as pub:
        stop = threading.Event()

        def send() -> None:
            seq = 0
            while not stop.is_set():
                pub.send(start(stream, seq=seq))
                seq += 1
                stop.wait(0.02)  # pacing the publisher, not waiting for a result

        th = threading.Thread(target=send, daemon=True)
        th.start()
        try:
            yield pub
        finally:
            stop.set()
            th.join(5)


def test_silence_names_the_topics_that_are_there() -> None:
    lines: list[str] = []
    with publishing("cam1") as pub, Subscriber(pub.endpoint, ["raw/cam9"]) as sub:
        with SilenceHint(lambda: sub.received, [pub.endpoint], ["raw/cam9"], SocketOptions(), lines.append,
                         after_s=0.3, listen_s=0.5):  # fmt: skip
            wait_until(lambda: lines, timeout_s=20, what="the hint")
        assert sub.receive(0.2) is None  # the subscriber itself still gets nothing of raw/cam1
    assert len(lines) == 1
    assert lines[0].startswith("nothing on raw/cam9 after 0.3 s; topics on tcp://127.0.0.1:")
    assert "raw/cam1 (" in lines[0]


def test_no_hint_once_messages_arrive() -> None:
    lines: list[str] = []
    with publishing("cam1") as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        wait_until(lambda: sub.receive(0.1) is not None, timeout_s=20, what="the first message")
        hint = SilenceHint(lambda: sub.received, [pub.endpoint], ["raw/"], SocketOptions(), lines.append,
                           after_s=0.1, listen_s=0.2)  # fmt: skip
        with hint:
            wait_until(lambda: not hint._thread.is_alive(), timeout_s=20, what="the watcher to finish")
    assert lines == []


def test_pmr_probe_on_the_wrong_topic_says_what_is_there() -> None:
    with publishing("cam1") as pub:
        p = subprocess.run(
            [sys.executable, "-m", "pmr_stream.cli", "probe", "--endpoint", pub.endpoint, "--topic", "raw/cam9",
             "--duration", "6", "--interval", "10"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
        )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "pmr probe: nothing on raw/cam9 after 3 s; topics on" in p.stderr and "raw/cam1 (" in p.stderr
