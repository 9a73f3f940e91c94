"""The anonymizer with ``--backend triton`` against a real Triton server (``pmr serve`` on loopback): a
killed server fails closed (drops counted, nothing raw published) and the service recovers when it is
back; two service shards share one server, whose dynamic batcher joins their requests."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.backends import get_backend
from pmr_stream.formats.io import load_recording
from pmr_stream.wire.schema import FrameMessage
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.service.conftest import (
    announce,
    collect,
    end_msg,
    frame_msg,
    running_service,
    start_msg,
    wait_connected,
)
from tests.triton_server import triton_server
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_recording(DEMO_CLIP).joints[:120, 0].astype(np.float32)  # (120, 25, 3)


class Feed:
    """Frames of one stream sent one at a time, and what came back on ``anon/``."""

    def __init__(self, raw: Publisher, sub: Subscriber, stream: str, clip: np.ndarray) -> None:
        self.raw, self.sub, self.stream, self.clip = raw, sub, stream, clip
        self.seq = 1  # the raw sequence number; the frame number is seq - 1 (anon/ numbers its own seq)
        self.sent: dict[int, np.ndarray] = {}  # by frame number
        self.got: list[Any] = []

    def step(self, wait_s: float = 0.01) -> None:
        joints = self.clip[(self.seq - 1) % len(self.clip)]
        self.raw.send(frame_msg(self.stream, self.seq, self.seq - 1, joints))
        self.sent[self.seq - 1] = joints
        self.seq += 1
        deadline = time.monotonic() + wait_s
        while (r := self.sub.receive(max(deadline - time.monotonic(), 0.0))) is not None:
            self.got.append(r)

    def frames(self, after_frame: int = -1) -> list[FrameMessage]:
        """The anonymized frames received, of frame numbers above ``after_frame``."""
        got = [r.message for r in self.got if isinstance(r.message, FrameMessage)]
        return [m for m in got if m.frame > after_frame]


@pytest.mark.slow  # starts a Triton server (5-30 s on a busy 2-core host)
def test_a_killed_server_fails_closed_then_the_service_recovers(clip: np.ndarray) -> None:
    with triton_server() as server:
        backend = get_backend("triton", triton_url=server.url, triton_timeout_ms=300)
        with Publisher("tcp://127.0.0.1:*") as raw:
            opts = ServiceOptions(max_batch=8, report_s=0)
            with (
                running_service(raw.endpoint, backend, opts) as svc,
                Subscriber(svc.anon_endpoint, [""]) as sub,
            ):
                wait_connected(raw)
                feed = Feed(raw, sub, "cam1", clip)
                feed.got += announce(raw, sub, "cam1")
                wait_until(lambda: feed.step() or len(feed.frames()) >= 10, timeout_s=60, interval_s=0,
                           what="frames anonymized through Triton")  # fmt: skip
                server.kill()
                killed_at = feed.seq - 1  # the next frame's number
                wait_until(lambda: feed.step() or backend.failures > 0, timeout_s=60, interval_s=0,
                           what="the dead server to fail a batch")  # fmt: skip
                for _ in range(20):  # down: frames dropped at once (no wait per batch)
                    feed.step()
                restarted_at = feed.seq - 1
                # same ports: the service reconnects by itself; the camera goes on meanwhile (an idle stream
                # would be evicted)
                restart = threading.Thread(target=server.start)
                restart.start()
                wait_until(lambda: feed.step(0.02) or feed.frames(restarted_at), timeout_s=180, interval_s=0,
                           what="frames anonymized again after the server restarted")  # fmt: skip
                restart.join()
                raw.send(end_msg("cam1", feed.seq, feed.seq - 1))
                feed.got += collect(sub)
            stats = svc.result
    frames = feed.frames()
    dropped = stats["failed"].get("backend_error", 0)
    assert dropped > 0 and backend.connections >= 2
    accounted = dropped + stats["failed"].get("non_finite", 0) + len(frames)
    assert accounted == len(feed.sent)  # every frame published or counted as dropped
    assert not [
        m.frame for m in frames if killed_at + 1 < m.frame < restarted_at
    ]  # nothing while it was down
    assert all(r.topic.startswith("anon/") for r in feed.got)
    for m in frames:  # only what the model returned: no input joints copied out
        assert m.anonymized and not np.allclose(m.joints, feed.sent[m.frame], atol=1e-4)


@pytest.mark.slow  # starts a Triton server (5-30 s on a busy 2-core host)
def test_two_shards_share_one_server_and_its_batcher(clip: np.ndarray) -> None:
    # 20 ms of queue delay: requests of the two shards that arrive that close together run as one batch (a
    # server batch of 64 has room for several shard batches of at most 8)
    with triton_server(["--max-batch", "64", "--max-queue-delay-us", "20000"]) as server:
        shards = [get_backend("triton", triton_url=server.url, triton_timeout_ms=2000) for _ in range(2)]
        before = server.metrics()
        opts = ServiceOptions(max_batch=8, report_s=0, engine_thread=True)  # < the server's: never split
        streams = [f"s{i}" for i in range(3)]
        with Publisher("tcp://127.0.0.1:*") as raw_a, Publisher("tcp://127.0.0.1:*") as raw_b, \
                running_service(raw_a.endpoint, shards[0], opts) as svc_a, \
                running_service(raw_b.endpoint, shards[1], opts) as svc_b, \
                Subscriber(svc_a.anon_endpoint, ["anon/"]) as sub_a, \
                Subscriber(svc_b.anon_endpoint, ["anon/"]) as sub_b:  # fmt: skip
            for raw in (raw_a, raw_b):
                wait_connected(raw)
                for s in streams:
                    raw.send(start_msg(s, 0))
            for t in range(40):  # both shards at once, three streams each
                for raw in (raw_a, raw_b):
                    for s in streams:
                        raw.send(frame_msg(s, t + 1, t, clip[t]))
                time.sleep(0.005)
            for raw in (raw_a, raw_b):
                for s in streams:
                    raw.send(end_msg(s, 41, 40))
            got = [collect(sub_a, until_ends=3, timeout_s=60), collect(sub_b, until_ends=3, timeout_s=60)]
        after = server.metrics()
    for shard, svc in zip(got, (svc_a, svc_b), strict=True):
        assert sum(isinstance(r.message, FrameMessage) for r in shard) == 3 * 40 and not svc.result["failed"]
    requests = after["nv_inference_request_success"] - before["nv_inference_request_success"]
    executions = after["nv_inference_exec_count"] - before["nv_inference_exec_count"]
    windows = after["nv_inference_count"] - before["nv_inference_count"]
    assert windows >= 2 * 3 * 40
    # each shard has one request in flight at a time, so an execution serving two requests joined both shards
    assert executions < requests, (
        f"{executions} executions for {requests} requests: no batching across shards"
    )
