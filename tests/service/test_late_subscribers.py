"""Late subscribers to ``anon/``: the service announces to a new subscription at once, as producers do.

A real producer (the synthetic performer, paced at 30 fps) publishes ``raw/``, the service
(real ZeroMQ on loopback, the ONNX backend) publishes ``anon/``. Once anonymized frames flow,
a subscriber joins ``raw/`` and one joins ``anon/``: each loses at most the frames in flight
before its stream's ``start`` reaches it (``unknown_stream``), and nothing goes backwards,
for the late one or for a subscriber that was there from the start.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.capture.producer import Producer, ProducerOptions
from pmr_stream.capture.synthetic import SyntheticSource
from pmr_stream.wire.schema import FrameMessage, StreamStart
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Received, Subscriber
from tests.service.conftest import running_service
from tests.waiting import wait_until

#: Frames a late subscriber reads before it is judged (one second of the 30 fps stream).
FRAMES = 30
#: The most frames a late subscriber may lose before its ``start`` (the producers' bound on raw/).
MAX_UNKNOWN = 3


def _late(endpoint: str, topic: str, timeout_s: float = 10.0) -> tuple[list[Received], Subscriber]:
    """Subscribe to ``topic`` now and read until :data:`FRAMES` frames were accepted (at most
    ``timeout_s``: without a start none is, and the drops are what the test reports)."""
    sub = Subscriber(endpoint, [topic])
    got: list[Received] = []
    t_end = time.monotonic() + timeout_s
    with sub:
        while sum(isinstance(x.message, FrameMessage) for x in got) < FRAMES and time.monotonic() < t_end:
            r = sub.receive(0.1)
            if r is not None:
                got.append(r)
    return got, sub


@pytest.mark.parametrize("announce_s", [1.0, 0.0])
def test_a_late_anon_subscriber_loses_about_as_little_as_a_late_raw_one(
    backend: Any, announce_s: float
) -> None:
    """``announce_s`` 0: the producer never re-announces by itself, so only the service's own
    announcement to the new subscription can reach a late ``anon/`` subscriber."""
    with Publisher("tcp://127.0.0.1:*") as raw:
        stop = threading.Event()
        producer = Producer(SyntheticSource(1, stream="late"), raw,
                            ProducerOptions(speed=1.0, announce_s=announce_s, wait_subscribers=1, report_s=0))  # fmt: skip
        th = threading.Thread(target=producer.run, args=(stop,), daemon=True)
        opts = ServiceOptions(report_s=0.05)
        try:
            with running_service(raw.endpoint, backend, opts) as svc, \
                    Subscriber(svc.anon_endpoint, ["anon/"]) as early:  # fmt: skip
                th.start()  # the service's raw/ subscription starts the producer
                early_got: list[Received] = []

                def flowing() -> bool:  # anonymized frames flow (and the early subscriber reads them)
                    r = early.receive(0.1)
                    if r is not None:
                        early_got.append(r)
                    return sum(isinstance(x.message, FrameMessage) for x in early_got) >= 10

                wait_until(flowing, timeout_s=30, interval_s=0, what="anonymized frames to flow")
                # anon/ first: a third of a second into the stream, far from the producer's next announcement
                anon_got, anon_sub = _late(svc.anon_endpoint, "anon/")
                raw_got, raw_sub = _late(raw.endpoint, "raw/")
                early_got += early.drain()
                early_drops, early_starts = dict(early.drops), early.streams
        finally:
            stop.set()
            th.join(20)
    raw_unknown = raw_sub.drops.get("unknown_stream", 0)
    anon_unknown = anon_sub.drops.get("unknown_stream", 0)
    print(f"late subscriber unknown_stream drops (announce_s={announce_s}): raw/ {raw_unknown}, "
          f"anon/ {anon_unknown}")  # fmt: skip
    for got, sub in ((raw_got, raw_sub), (anon_got, anon_sub)):
        assert got, dict(sub.drops)
        assert isinstance(got[0].message, StreamStart)  # the start comes first, then the frames
        assert sub.drops.get("unknown_stream", 0) <= MAX_UNKNOWN, dict(sub.drops)
        assert not set(sub.drops) - {"unknown_stream"}, dict(sub.drops)  # nothing backwards, nothing bad
        assert sub.seq_missing == 0
    assert anon_got[0].message.anonymized and anon_got[0].message.session != raw_got[0].message.session
    # the subscriber that was there all along sees the extra starts in sequence: nothing dropped or lost
    assert not early_drops and early.seq_missing == 0
    (state,) = early_starts.values()
    assert state.starts >= 2 and state.frames >= FRAMES
