"""Helpers for the wire tests: valid messages to start from."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pmr_stream.wire.schema import FrameMessage, StreamStart
from pmr_stream.wire.subscriber import Received, Subscriber


def frame(
    stream: str = "cam0", seq: int = 1, frame_index: int = 0, person: int = 0, **kw: Any
) -> FrameMessage:
    """A valid frame message with recognisable joints (joint j = (j, -j, 2 + j) / 10 metres)."""
    j = np.arange(25, dtype=np.float32)
    joints = np.stack([j / 10, -j / 10, 2 + j / 10], axis=1)
    args: dict[str, Any] = dict(
        stream=stream, person=person, seq=seq, frame=frame_index, pts_s=frame_index / 30,
        t_mono_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(), joints=joints + seq,
        confidence=np.linspace(0, 1, 25, dtype=np.float32),
    )  # fmt: skip
    args.update(kw)
    return FrameMessage(**args)


def start(stream: str = "cam0", seq: int = 0, session: str = "s1", **kw: Any) -> StreamStart:
    args: dict[str, Any] = dict(stream=stream, seq=seq, session=session, t_mono_ns=time.monotonic_ns(),
                                t_wall_ns=time.time_ns(), fps=30.0, source="test")  # fmt: skip
    args.update(kw)
    return StreamStart(**args)


#: A loopback endpoint on a free port (the binding side resolves it via LAST_ENDPOINT).
TCP_ANY = "tcp://127.0.0.1:*"


def receive_all(sub: Subscriber, until: int, timeout_s: float = 20.0) -> list[Received]:
    """Accepted messages until ``until`` frames were taken off the socket (accepted or not)."""
    out: list[Received] = []
    deadline = time.monotonic() + timeout_s
    while sub.received < until and time.monotonic() < deadline:
        r = sub.receive(0.05)
        if r is not None:
            out.append(r)
    assert sub.received >= until, f"only {sub.received} of {until} messages arrived"
    return out
