"""The service's limits: persons per stream and in all, streams, metadata size -- refused, counted, never
published; and what ends or idles out is freed everywhere the service keeps it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.window import WindowOptions, WindowStore
from pmr_stream.cli import build_parser
from pmr_stream.wire.schema import FrameMessage, StreamStart
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.service.cheap_service import CheapBackend
from tests.service.conftest import collect, end_msg, frame_msg, running_service, start_msg, wait_connected
from tests.waiting import wait_until

POSE = np.stack([np.arange(25) / 50, 0.8 - np.arange(25) / 40, 3 + np.arange(25) / 100], axis=1).astype(
    np.float32
)


def test_window_store_person_limits_refuse_count_and_free() -> None:
    ws = WindowStore(WindowOptions(max_persons_per_stream=2, max_persons=3))
    pushed = {(s, p): ws.push(s, p, 0, POSE, None, 0)[0] is not None for s, p in
              [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)]}  # fmt: skip
    assert pushed == {("a", 0): True, ("a", 1): True, ("a", 2): False, ("b", 0): True, ("b", 1): False}
    assert dict(ws.counters.refused) == {"too_many_persons_in_stream": 1, "too_many_persons": 1}
    assert ws.push("a", 0, 1, POSE, None, 1)[0] is not None  # a person with a track always goes on
    assert ws.keys_of("a") == [("a", 0), ("a", 1)] and ws.keys_of("b") == [("b", 0)] and ws.streams() == 2
    for key in ws.keys_of("a"):  # the stream ends: its tracks are dropped, room for others
        ws.drop(key)
    assert ws.keys_of("a") == [] and ws.streams() == 1
    assert ws.admit("b", 1) and ws.push("b", 1, 0, POSE, None, 2)[0] is not None
    for key in ws.keys_of("b"):
        ws.drop(key)
    assert not ws.tracks and ws.streams() == 0  # nothing left per stream either
    with pytest.raises(ValueError, match="max_persons"):
        WindowOptions(max_persons=0)


def test_the_live_service_refuses_and_counts_over_its_limits(tmp_path: Path) -> None:
    stats_json = tmp_path / "stats.json"
    opts = ServiceOptions(report_s=0.1, stats_json=stats_json, bones="model", idle_s=0.5, max_persons_per_stream=3,
                          max_persons=5, max_streams=3, max_metadata_bytes=4096)  # fmt: skip
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, CheapBackend(), opts) as svc, \
                Subscriber(svc.anon_endpoint, ["anon/"]) as sub:  # fmt: skip
            wait_connected(raw)  # the service subscribed to raw/ after it saw this anon/ subscriber
            seq = {s: 1 for s in "abcde"}
            for s in "abde":
                raw.send(start_msg(s, 0))
            raw.send(StreamStart(stream="c", seq=0, session="s1", t_mono_ns=time.monotonic_ns(),
                                 t_wall_ns=time.time_ns(), fps=30.0, source="test",
                                 metadata={"pose": [[0.5] * 75] * 10}))  # ~7 KB: over 4096  # fmt: skip
            for f in range(2):
                for s, persons in (("a", 5), ("b", 3), ("c", 1), ("e", 1)):
                    for p in range(persons):
                        raw.send(frame_msg(s, seq[s], f, POSE + np.float32(p), person=p))
                        seq[s] += 1
            for s in "abd":
                raw.send(end_msg(s, seq[s], 2))
            got = collect(sub, until_ends=3)

            def freed() -> dict[str, Any] | None:  # everything published, then every stream forgotten
                try:
                    d: dict[str, Any] = json.loads(stats_json.read_text())
                except (OSError, ValueError):  # not written yet
                    return None
                done = (
                    d.get("published_frames") == 10
                    and d["streams_tracked"] == 0 == d["streams"] == d["persons"]
                )
                return d if done else None

            live = wait_until(freed, interval_s=0.05, what="every stream to be freed in the stats file")
        stats = svc.result
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    # a: persons 0-2 (3 and 4 over 3 per stream); b: persons 0-1 (2 is over 5 in all); c and e never opened
    assert len(frames) == (3 + 2) * 2 == stats["published_frames"]
    assert all(m.person < 3 for m in frames)
    assert stats["refused"] == {"too_many_persons_in_stream": 2 * 2, "too_many_persons": 1 * 2,
                                "metadata_too_large": 1, "too_many_streams": 1}  # fmt: skip
    assert stats["wire_drops"] == {"unknown_stream": 2 * 2}  # the frames of c and e
    assert stats["frames_in"] == 2 * (5 + 3)  # refused frames came in, and nothing of them went out
    assert live["streams_tracked"] == 0 == live["streams"] == live["persons"]  # all freed once ended / idle
    assert isinstance(stats["streams_seen"], int) and stats["streams_seen"] == 3


def test_limit_flags_and_their_defaults() -> None:
    p = build_parser()
    args = p.parse_args(["anonymizer", "--raw", "tcp://127.0.0.1:5555"])
    d = ServiceOptions()  # the flags' defaults are the options' own
    assert (args.max_metadata_bytes, args.max_streams, args.max_persons_per_stream, args.max_persons) == \
        (d.max_metadata_bytes, d.max_streams, d.max_persons_per_stream, d.max_persons)  # fmt: skip
    args = p.parse_args(["anonymizer", "--raw", "tcp://127.0.0.1:5555", "--max-metadata-bytes", "2048",
                         "--max-streams", "8", "--max-persons-per-stream", "4", "--max-persons", "16"])  # fmt: skip
    assert (args.max_metadata_bytes, args.max_streams, args.max_persons_per_stream, args.max_persons) == \
        (2048, 8, 4, 16)  # fmt: skip
    with pytest.raises(ValueError, match="max_streams"):
        ServiceOptions(max_streams=0)


def test_until_end_waits_for_a_stream_forgotten_as_idle(backend: Any) -> None:
    """A stream that announces itself and then stays quiet past ``--idle`` is forgotten, but it has
    not ended: ``--until-end`` keeps serving until it comes back and ends (a slow camera start)."""
    joints = np.zeros((25, 3), np.float32)
    joints[:, 2] = 2.5
    with Publisher("tcp://127.0.0.1:*") as raw:
        opts = ServiceOptions(report_s=0.1, idle_s=0.3)
        with running_service(raw.endpoint, backend, opts, wait_subscribers=0, until_end=True) as svc:
            wait_connected(raw)
            raw.send(start_msg("slow-cam", 0))
            wait_until(lambda: svc.summary.get("streams_seen") == 1 and svc.summary.get("streams") == 0,
                       timeout_s=20, interval_s=0.05, what="the quiet stream to be forgotten")  # fmt: skip
            assert not svc.result, "the service stopped although no stream had ended"
            raw.send(start_msg("slow-cam", 1))
            for t in range(3):
                raw.send(frame_msg("slow-cam", t + 2, t, joints))
            raw.send(end_msg("slow-cam", 5, 3))
            wait_until(
                lambda: svc.result, timeout_s=20, interval_s=0.05, what="the service to stop at the end"
            )
    assert svc.result["frames_in"] == 3
