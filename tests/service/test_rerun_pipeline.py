"""`pmr view --rrd` end to end: a real NTU replay, the anonymizer and the viewer as processes on loopback,
the recording read back with rerun's own API and compared with what travelled on the wire."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats.io import load_recording
from pmr_stream.sinks.rerun import CAPTURE_TIMELINE, FRAME_TIMELINE
from pmr_stream.skeleton import NTU25
from pmr_stream.wire.schema import FrameMessage, StreamEnd
from pmr_stream.wire.subscriber import Subscriber
from tests.sinks.rrd_read import logged_persons, timelines

ROOT = Path(__file__).resolve().parents[2]
TAKE = "S001C003P008R002A058"  # two persons (handshaking), 70 frames


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pmr(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pmr_stream.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip


def test_view_rrd_of_a_real_replay_through_the_anonymizer(ntu_dir: Path, tmp_path: Path) -> None:
    take = ntu_dir / f"{TAKE}.skeleton"
    if not take.is_file():
        pytest.skip(f"real NTU sample {take} not found")
    raw_ep, anon_ep = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "view.rrd"
    procs: list[subprocess.Popen[str]] = []
    try:
        # the viewer first: its one socket subscribes to anon/ and raw/ on both endpoints (two subscriptions
        # each); the anonymizer waits for those and the test's own anon/ tap, then subscribes to raw/; the
        # producer waits for the viewer's two and the anonymizer's one
        procs.append(_pmr("view", "--endpoint", anon_ep, "--show-original", "--raw-endpoint", raw_ep,
                          "--rrd", str(out), "--until-end", "--duration", "120"))  # fmt: skip
        with Subscriber(anon_ep, ["anon/"]) as tap:
            procs.append(_pmr("anonymizer", "--raw", raw_ep, "--anon", anon_ep, "--backend", "onnxruntime",
                              "--device", "cpu", "--report", "0", "--wait-subscribers", "3", "--until-end",
                              "--duration", "120"))  # fmt: skip
            procs.append(_pmr("produce", "--source", f"kinect:{take}", "--endpoint", raw_ep, "--speed", "2",
                              "--wait-subscribers", "3", "--wait-timeout", "90", "--report", "0"))  # fmt: skip
            anon: list[FrameMessage] = []
            for r in tap.iter(duration_s=120):
                if isinstance(r.message, FrameMessage):
                    anon.append(r.message)
                if isinstance(r.message, StreamEnd):
                    break
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
    viewer_out = outputs[0]
    assert f"wrote {out}" in viewer_out and "logged 280 person-frames" in viewer_out, viewer_out

    assert {CAPTURE_TIMELINE, FRAME_TIMELINE} <= timelines(out)
    got = logged_persons(out)
    anon_stream = anon[0].stream
    assert anon_stream != TAKE  # anon/ carries the keyed pseudonym
    persons = sorted({m.person for m in anon})
    assert len(persons) == 2
    assert set(got) == {f"/raw/{TAKE}/person0", f"/raw/{TAKE}/person1"} | {
        f"/anon/{anon_stream}/person{p}" for p in persons
    }
    bones = np.asarray(NTU25.bones)  # (24, 2)
    rec = load_recording(take)  # what the producer replayed: (70, 2, 25, 3)
    for k in (0, 1):
        g = got[f"/raw/{TAKE}/person{k}"]
        assert g.frames == list(range(70)) and not g.cleared
        assert np.all(np.diff(g.capture_ns) > 0)
        np.testing.assert_array_equal(g.joints, rec.joints[:, k])
        np.testing.assert_array_equal(g.bones, rec.joints[:, k][:, bones])
    for k in persons:
        sent = [m for m in anon if m.person == k]
        g = got[f"/anon/{anon_stream}/person{k}"]
        assert len(sent) == 70 and g.frames == [m.frame for m in sent] == list(range(70))
        assert g.capture_ns == [m.t_wall_ns for m in sent]
        joints = np.stack([m.joints for m in sent])  # (70, 25, 3)
        np.testing.assert_array_equal(g.joints, joints)
        np.testing.assert_array_equal(g.bones, joints[:, bones])
        assert not np.allclose(g.joints, rec.joints[:, 0], atol=1e-3)  # anonymized, not the raw motion
