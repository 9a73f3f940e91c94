"""`pmr produce`, `pmr record`, `pmr probe`, `pmr keys` end to end, in real processes where it matters."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.capture.producer import Producer, ProducerOptions
from pmr_stream.capture.synthetic import SyntheticSource
from pmr_stream.cli import main
from pmr_stream.formats.recording import Recording
from pmr_stream.wire.curve import CurveOptions, generate_keypair
from pmr_stream.wire.schema import FrameGap, FrameMessage, StreamEnd, StreamStart
from pmr_stream.wire.sockets import Publisher, SocketOptions
from pmr_stream.wire.subscriber import Subscriber
from tests.sinks.segments_seen import segment_infos
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def _pmr(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pmr_stream.cli", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _frame(seq: int, f: int, person: int = 0) -> FrameMessage:
    joints = np.full((25, 3), f / 100, np.float32) + np.arange(25, dtype=np.float32)[:, None] / 50
    return FrameMessage(
        "clip",
        person,
        seq,
        f,
        f / 30,
        time.monotonic_ns(),
        time.time_ns(),
        joints,
        np.full(25, 0.75, np.float32),
    )


def test_record_keeps_everything_received_when_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "rec.npz"
    with Publisher("tcp://127.0.0.1:*") as pub:
        proc = _pmr("record", "--endpoint", pub.endpoint, "--topic", "raw/", "--output", str(out))
        try:
            assert pub.wait_for_subscribers(1, timeout_s=30), "the recorder never subscribed"
            pub.send(
                StreamStart("clip", 0, "s", time.monotonic_ns(), time.time_ns(), 30.0, "test", max_persons=2)
            )
            seq = 1
            for f in range(200):
                if f % 50 == 49:
                    pub.send(FrameGap("clip", seq, f, f / 30, time.monotonic_ns(), time.time_ns()))
                    seq += 1
                    continue
                for p in range(2 if f % 2 else 1):
                    pub.send(_frame(seq, f, p))
                    seq += 1
            wait_until(lambda: any(199 in i["frames"] for i in segment_infos(out)),  # the last message, a gap
                       what="the recorder to write frame 199")  # fmt: skip
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"wrote {out} (200 frames of raw/clip)" in stdout
    rec = Recording.load(out)
    assert rec.joints.shape == (200, 2, 25, 3)
    gaps = [f for f in range(200) if f % 50 == 49]
    assert rec.present[:, 0].sum() == 196 and not rec.present[gaps].any()
    assert rec.present[:, 1].sum() == sum(1 for f in range(200) if f % 2 and f not in gaps)
    np.testing.assert_array_equal(rec.joints[10, 0], _frame(0, 10).joints)
    np.testing.assert_array_equal(rec.joints[11, 1], _frame(0, 11).joints)
    np.testing.assert_allclose(rec.timestamps, np.arange(200) / 30)
    assert rec.metadata["wire"]["ended"] is None  # interrupted, no end message


def test_produce_publishes_a_real_recording(ntu_dir: Path) -> None:
    src = ntu_dir / "S001C001P001R001A001.skeleton"
    proc = _pmr("produce", "--source", f"kinect:{src}", "--endpoint", "tcp://127.0.0.1:*", "--speed", "0",
                "--wait-subscribers", "1", "--report", "0")  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("publishing kinect:") and " on tcp://127.0.0.1:" in first, first
        endpoint = first.split(" on ")[1].split()[0]
        with Subscriber(endpoint, ["raw/S001C001P001R001A001"]) as sub:
            got = []
            for r in sub.iter(duration_s=30):
                got.append(r.message)
                if isinstance(r.message, StreamEnd):
                    break
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert isinstance(got[0], StreamStart) and got[0].source == "kinect:S001C001P001R001A001.skeleton"
    assert sum(isinstance(m, FrameMessage) for m in got) == 103
    assert got[-1].reason == "eof" and got[-1].frames == 103  # type: ignore[union-attr]
    assert "stopped (eof): 103 frames" in stdout
    stats = json.loads(
        next(line for line in stdout.splitlines() if line.startswith("stats ")).split(" ", 1)[1]
    )
    assert stats["frames"] == 103 and stats["drops"] == 0


def test_produce_stops_cleanly_on_ctrl_c() -> None:
    proc = _pmr(
        "produce",
        "--source",
        "synthetic",
        "--endpoint",
        "tcp://127.0.0.1:*",
        "--stream",
        "live",
        "--report",
        "0",
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().split(" on ")[1].split()[0]
        with Subscriber(endpoint, ["raw/live"]) as sub:
            got = []
            for r in sub.iter(duration_s=30):
                got.append(r.message)
                if len(got) == 10:
                    proc.send_signal(signal.SIGINT)
                if isinstance(r.message, StreamEnd):
                    break
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    end = got[-1]
    assert isinstance(end, StreamEnd) and end.reason == "interrupted"
    received = sum(isinstance(m, FrameMessage) for m in got)
    assert received >= 5 and end.frames >= received  # it counts frames sent before we joined too
    assert "stopped (interrupted)" in stdout


def test_record_over_curve(tmp_path: Path) -> None:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    assert main(["keys", "--output", str(keys), "--name", "server"]) == 0
    assert main(["keys", "--output", str(keys), "--name", "recorder"]) == 0
    clients.mkdir()
    (clients / "recorder.key").write_bytes((keys / "recorder.key").read_bytes())
    server = CurveOptions(keys / "server.key_secret", authorized_keys_dir=clients)
    out = tmp_path / "c.npz"
    with Publisher("tcp://127.0.0.1:*", SocketOptions(curve=server)) as pub:
        proc = _pmr("record", "--endpoint", pub.endpoint, "--output", str(out), "--until-end",
                    "--curve-secret", str(keys / "recorder.key_secret"), "--curve-server-key", str(keys / "server.key"))  # fmt: skip
        try:
            assert pub.wait_for_subscribers(1, timeout_s=30)
            src = SyntheticSource(1, stream="enc")
            Producer(src, pub, ProducerOptions(speed=0, max_frames=20, report_s=0)).run()
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, stderr
    assert Recording.load(out).num_frames == 20


def test_probe_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Publisher("tcp://127.0.0.1:*") as pub:
        stop = threading.Event()
        producer = Producer(
            SyntheticSource(2, stream="pr"), pub, ProducerOptions(speed=1.0, announce_s=0.5, report_s=0)
        )
        t = threading.Thread(target=producer.run, args=(stop,))
        t.start()
        try:
            rc = main(["probe", "--endpoint", pub.endpoint, "--duration", "1.5", "--interval", "0.5",
                       "--json", str(tmp_path / "p.json")])  # fmt: skip
        finally:
            stop.set()
            t.join(5)
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("topic") >= 3  # a table every half second
    assert "raw/pr-0" in out and "raw/pr-1" in out and "synthetic" in out
    stats = json.loads((tmp_path / "p.json").read_text())
    assert stats["streams"]["raw/pr-0"]["frames"] >= 20
    assert stats["streams"]["raw/pr-1"]["persons"] == 1


def test_keys_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "--output", str(tmp_path), "--name", "a"]) == 0
    assert main(["keys", "--output", str(tmp_path), "--name", "a"]) == 2
    assert "exists" in capsys.readouterr().err
    generate_keypair(tmp_path, "b")  # the library call writes the same files
    assert (tmp_path / "b.key").is_file() and (tmp_path / "b.key_secret").is_file()


@pytest.mark.parametrize(
    "argv,match",
    [
        (["produce", "--source", "rtsp:cam"], "unknown source"),
        (["produce", "--source", "kinect:/no/such.skeleton"], "no/such.skeleton"),
        (
            ["record", "--endpoint", "tcp://127.0.0.1:1", "--output", "x.npz", "--curve-server-key", "k"],
            "--curve-secret",
        ),
        (["produce", "--source", "synthetic", "--endpoint", "bogus://x"], "cannot bind"),
        (["stream", "--source", "synthetic:4", "--producers", "2"], "add --no-video"),
        (["stream", "--source", "synthetic:2", "--producers", "3", "--no-video"], "N >= 3 streams"),
        (["stream", "--producers", "2", "--no-video"], "splits a synthetic:N source"),
    ],
)
def test_bad_arguments_are_clear_errors(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert match in capsys.readouterr().err
