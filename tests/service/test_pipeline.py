"""`pmr stream` end to end: separate processes on loopback, a short replay, a video at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pmr_stream.formats.io import load_recording
from pmr_stream.wire.privacy import StreamIds, load_stream_key
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_pmr_stream_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "side.mp4"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run(
        [sys.executable, str(ROOT / "run_stream.py"), "--max-frames", "60", "--workdir", str(tmp_path / "w"),
         "--output", str(out), "--width", "160", "--height", "120", "--backend", "onnxruntime", "--device", "cpu",
         "--status", "0.5"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "latency capture -> anonymized frame received: p50" in p.stdout
    # while the source ran, status lines from the anonymizer's own statistics
    status = [
        line for line in p.stdout.splitlines() if line.startswith("pipeline: ") and " frames in, " in line
    ]
    assert status and all(" failed; capture -> publish p99 " in line for line in status), p.stdout
    assert str(out.resolve()) in p.stdout and out.stat().st_size > 0
    raw = load_recording(tmp_path / "w" / "raw.npz")
    anon = load_recording(tmp_path / "w" / "anon.npz")
    assert len(raw.joints) == len(anon.joints) == 60  # one anonymized frame per input frame
    assert not np.allclose(raw.joints, anon.joints, atol=1e-3)
    svc = json.loads((tmp_path / "w" / "service.json").read_text())
    assert svc["published_frames"] == svc["frames_in"] == 60 and not svc["failed"]
    lat = json.loads((tmp_path / "w" / "latency.json").read_text())
    assert lat["frames"] == 60 and lat["latency_ms_p99"] < 1000


def test_pmr_stream_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    import signal

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(
        # a synthetic source that would run for 120 s: the Ctrl-C always lands mid-stream,
        # however slow the start-up is on a loaded machine
        [sys.executable, str(ROOT / "run_stream.py"), "--workdir", str(tmp_path / "w"), "--no-video",
         "--backend", "onnxruntime", "--device", "cpu", "--source", "synthetic:1", "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        log = tmp_path / "w" / "anonymizer.log"
        wait_until(lambda: p.poll() is not None or (log.exists() and '"published_frames"' in log.read_text()),
                   timeout_s=60, interval_s=0.2, what="the anonymizer's first stats line: frames are flowing")  # fmt: skip
        p.send_signal(signal.SIGINT)
        stdout, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()  # a killed run leaves no open pipe behind for a later test's warning
    assert p.returncode == 0, stdout
    assert "interrupted" in stdout and "anonymized recording:" in stdout
    anon = load_recording(tmp_path / "w" / "anon.npz")
    assert 30 < len(anon.joints) < 120 * 30


def test_several_producers_each_with_its_sink(tmp_path: Path) -> None:
    """``--producers 2``: 5 synthetic streams over two producer processes and two sinks,
    one anonymizer subscribed to both; every frame is anonymized and received once."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    work = tmp_path / "w"
    p = subprocess.run(
        [sys.executable, str(ROOT / "run_stream.py"), "--source", "synthetic:5", "--producers", "2", "--no-video",
         "--duration", "3", "--workdir", str(work), "--backend", "onnxruntime", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(2 producers)" in p.stdout
    svc = json.loads((work / "service.json").read_text())
    lat = json.loads((work / "latency.json").read_text())
    assert svc["streams_seen"] == 5 and not svc["failed"]
    assert lat["sinks"] == 2 and lat["frames"] == svc["published_frames"] == svc["frames_in"] > 5 * 60
    assert not lat["drops"] and lat["latency_ms_p99"] is not None
    # the sinks subscribed to the streams' anon/ pseudonyms (the deployment key, here the test session's)
    anon_id = StreamIds(load_stream_key(create=False)).anon
    names = sorted(Path(f).name for f in lat["files"])
    want = [f"anon.p0.{anon_id(f'demo.p0-{k}')}.npz" for k in range(3)] + [
        f"anon.p1.{anon_id(f'demo.p1-{k}')}.npz" for k in range(2)
    ]
    assert names == sorted(want)
    firsts = set()
    for f in lat["files"]:  # every stream is its own generator: the producers got different seeds
        rec = load_recording(f)
        assert rec.num_frames > 60 and "seed" not in rec.metadata  # nothing of the raw start's metadata
        firsts.add(rec.joints[0, 0].tobytes())
    assert len(firsts) == 5
