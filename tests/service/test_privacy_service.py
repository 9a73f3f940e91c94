"""What leaves on anon/: the live service (real ZeroMQ on loopback) fed hostile and labelled raw streams.

Every anon/ message is read as the bytes on the wire, so nothing a decoder would hide
(an extra field, a string in a nested map) escapes the checks.
"""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.formats.ntu import read_skeleton
from pmr_stream.wire.privacy import (
    ANON_METADATA,
    ANON_SOURCE,
    CONFIDENCE,
    is_pseudonym,
    pseudonym,
    service_metadata,
)
from pmr_stream.wire.schema import FrameGap, FrameMessage, Message, StreamEnd, StreamStart, unpack
from pmr_stream.wire.sockets import Publisher
from tests.service.conftest import end_msg, frame_msg, running_service, start_msg, wait_connected
from tests.test_privacy import PATH, RAW_ID, assert_no_pose, hostile_metadata, raw_strings

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def wire_tap(endpoint: str) -> Iterator[zmq.Socket]:
    """A plain SUB socket on everything ``endpoint`` publishes (the bytes as they travel)."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()


def read_until_ends(sock: zmq.Socket, ends: int, timeout_s: float = 20.0) -> list[tuple[bytes, Message]]:
    got: list[tuple[bytes, Message]] = []
    n, t_end = 0, time.monotonic() + timeout_s
    while n < ends and time.monotonic() < t_end:
        if sock.poll(100):
            data = sock.recv()
            got.append((data, unpack(data)[1]))
            n += isinstance(got[-1][1], StreamEnd)
    assert n == ends, f"{n} of {ends} stream ends arrived; got {len(got)} messages"
    return got


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_recording(DEMO_CLIP).joints[:40, 0].astype(np.float32)


def test_hostile_metadata_labels_and_ids_never_reach_anon(backend: Any, clip: np.ndarray) -> None:
    """A start whose metadata holds the raw pose, labels, paths, nested maps and the raw id; a labelled
    stream id; Kinect-like person slots; odd confidences; free-text reasons; then a restart."""
    pose = clip[0]
    now = time.monotonic_ns(), time.time_ns()
    sessions = {"producer-7f3a": (5, 3), "producer-8e21": (3,)}  # raw person slots of each run
    sent: list[FrameMessage] = []
    got: list[tuple[bytes, Message]] = []
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0)) as svc, \
                wire_tap(svc.anon_endpoint) as tap:  # fmt: skip
            wait_connected(raw)
            for session, persons in sessions.items():
                raw.send(StreamStart(stream=RAW_ID, seq=0, session=session, t_mono_ns=now[0], t_wall_ns=now[1],
                                     fps=30.0, source=f"kinect:{PATH}", max_persons=6,
                                     metadata=hostile_metadata(pose)))  # fmt: skip
                seq = 1
                for t in range(20):
                    if t == 10:
                        raw.send(FrameGap(RAW_ID, seq, t, t / 30, *now, reason="P001 left for /home/alice"))
                        seq += 1
                        continue
                    for k, p in enumerate(persons):
                        if p == 3 and t < 2 and len(persons) == 2:
                            continue  # raw person 5 appears first, 3 two frames later
                        m = FrameMessage(RAW_ID, p, seq, t, t / 30, *now, clip[t] + np.float32(k),
                                         np.full(25, 0.37, np.float32))  # fmt: skip
                        raw.send(m)
                        sent.append(m)
                        seq += 1
                    time.sleep(0.002)  # a live producer's pace (the service batches what comes together)
                raw.send(StreamEnd(RAW_ID, seq, *now, reason=f"closed {PATH}", frames=20))
                got += read_until_ends(tap, 1)
    blob = b"".join(data for data, _ in got)
    assert not any(s in blob for s in raw_strings())
    assert b"/home" not in blob and not any(s.encode() in blob for s in sessions)
    assert_no_pose(blob, pose)
    anon_id = got[0][1].stream  # a pseudonym under the service's own random key (no stream_key given)
    assert is_pseudonym(anon_id) and anon_id != RAW_ID
    assert all(d.startswith(f"anon/{anon_id}\0".encode()) and m.anonymized for d, m in got)
    runs: list[list[Message]] = []  # the anon/ messages of each raw session, in order
    for _, m in got:
        if isinstance(m, StreamStart):
            runs.append([])
        runs[-1].append(m)
    assert len(runs) == 2
    starts = [r[0] for r in runs]
    assert all(isinstance(s, StreamStart) and s.source == ANON_SOURCE and s.max_persons == 6
               and s.metadata == service_metadata("dummy", "last", False) for s in starts)  # fmt: skip
    assert set(starts[0].metadata) <= set(ANON_METADATA)  # type: ignore[union-attr]
    assert len({s.session for s in starts}) == 2  # type: ignore[union-attr]
    frames = [m for m in (x for r in runs for x in r) if isinstance(m, FrameMessage)]
    assert len(frames) == len(sent)
    assert all(np.array_equal(m.confidence, CONFIDENCE) for m in frames)
    raw_joints = np.stack([m.joints for m in sent])
    for m in frames:
        assert np.abs(raw_joints - m.joints).max(axis=(1, 2)).min() > 1e-3
    first = {(m.frame, m.person) for m in runs[0] if isinstance(m, FrameMessage)}
    assert (0, 0) in first and (0, 1) not in first and (2, 1) in first and max(p for _, p in first) == 1
    assert {m.person for m in runs[1] if isinstance(m, FrameMessage)} == {
        0
    }  # raw 3 is first after the restart
    assert {m.reason for m in frames_or_control(got)} == {"other"}


def frames_or_control(got: list[tuple[bytes, Message]]) -> list[FrameGap | StreamEnd]:
    return [m for _, m in got if isinstance(m, FrameGap | StreamEnd)]


def test_a_real_ntu_replay_leaves_no_label_on_anon(backend: Any, ntu_dir: Path) -> None:
    """``S001C001P001R001A001.skeleton`` replayed by the real producer: the stream id, the performer,
    the Kinect body ids, the source path and the raw confidences stay off anon/."""
    from pmr_stream.capture.producer import Producer, ProducerOptions
    from pmr_stream.capture.replay import RecordingReplay

    path = ntu_dir / "S001C001P001R001A001.skeleton"
    if not path.exists():
        pytest.skip(f"{path} not found")
    body_ids = read_skeleton(path).body_ids()
    source = RecordingReplay(path, stream=path.stem)  # what `pmr produce --source kinect:FILE` streams as
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0)) as svc, \
                wire_tap(svc.anon_endpoint) as tap:  # fmt: skip
            wait_connected(raw)
            producer = Producer(source, raw, ProducerOptions(speed=0, report_s=0))
            producer.run()
            got = read_until_ends(tap, 1)
    blob = b"".join(d for d, _ in got)
    stream_ids = {m.stream for _, m in got}
    assert len(stream_ids) == 1 and path.stem not in stream_ids and "P001" not in next(iter(stream_ids))
    for word in ("S001C001P001R001A001", "P001", "performer", "ntu_name", str(path.parent), "kinect:"):
        assert word.encode() not in blob, word
    for b in body_ids:
        assert str(b).encode() not in blob and struct.pack(">Q", b) not in blob
    assert producer.session.encode() not in blob
    frames = [m for _, m in got if isinstance(m, FrameMessage)]
    assert len(frames) > 50 and all(np.array_equal(m.confidence, CONFIDENCE) for m in frames)
    assert {m.person for m in frames} == {0}


def test_pmr_anonymizer_key_file_and_public_ids(clip: np.ndarray, tmp_path: Path) -> None:
    """``pmr anonymizer --stream-key FILE --public-stream-id cam-lobby``: the key file is made
    (mode 0600); cam-lobby keeps its id, the labelled stream gets the key's pseudonym."""
    key_file = tmp_path / "keys" / "stream_key"
    port = _free_port()
    with Publisher("tcp://127.0.0.1:*") as raw:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pmr_stream.cli", "anonymizer", "--raw", raw.endpoint, "--anon",
             f"tcp://127.0.0.1:{port}", "--backend", "onnxruntime", "--device", "cpu", "--report", "0",
             "--stream-key", str(key_file), "--public-stream-id", "cam-lobby", "--wait-subscribers", "1",
             "--until-end", "--duration", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )  # fmt: skip
        try:
            with wire_tap(f"tcp://127.0.0.1:{port}") as tap:
                assert raw.wait_for_subscribers(1, timeout_s=60), "the anonymizer did not start"
                for s in ("cam-lobby", RAW_ID):
                    raw.send(start_msg(s, 0))
                for t in range(5):
                    for s in ("cam-lobby", RAW_ID):
                        raw.send(frame_msg(s, t + 1, t, clip[t]))
                for s in ("cam-lobby", RAW_ID):
                    raw.send(end_msg(s, 6, 5))
                got = read_until_ends(tap, 2)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    key = key_file.read_bytes()
    assert {m.stream for _, m in got} == {"cam-lobby", pseudonym(key, RAW_ID)}
    assert str(key_file) in out and key.hex() not in out
    starts = {m.stream: m for _, m in got if isinstance(m, StreamStart)}
    assert starts["cam-lobby"].metadata["stream_id"] == "public"
    assert starts[pseudonym(key, RAW_ID)].metadata["stream_id"] == "pseudonym"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
