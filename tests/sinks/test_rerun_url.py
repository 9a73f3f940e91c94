"""`pmr view --rerun URL --rrd FILE`: a real producer's raw/ stream to a real headless rerun server
(``rerun --save``: a gRPC server that writes what it receives) and to a file at once."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from pmr_stream.wire.schema import FrameMessage, StreamEnd
from pmr_stream.wire.subscriber import Subscriber
from tests.sinks.rrd_read import logged_persons
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _rerun_binary() -> Path:
    """The viewer binary of the installed rerun-sdk (the ``rerun`` script on PATH only wraps it)."""
    spec = importlib.util.find_spec("rerun_cli")
    assert spec is not None and spec.submodule_search_locations, "rerun-sdk installs no rerun_cli"
    exe = Path(list(spec.submodule_search_locations)[0]) / "rerun"
    assert exe.is_file(), exe
    return exe


def test_view_streams_to_a_rerun_server_and_a_file(tmp_path: Path) -> None:
    port, raw_port = _free_port(), _free_port()
    server_rrd, local_rrd = tmp_path / "server.rrd", tmp_path / "local.rrd"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("DISPLAY", None)  # headless: the server never opens a window
    env.pop("WAYLAND_DISPLAY", None)
    server = subprocess.Popen([str(_rerun_binary()), "--bind", "127.0.0.1", "--port", str(port), "--save",
                               str(server_rrd)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)  # fmt: skip
    procs: list[subprocess.Popen[str]] = []
    try:
        wait_until(lambda: server.poll() is not None or _listening(port), timeout_s=30,
                   what="the rerun server to listen")  # fmt: skip
        assert server.poll() is None, server.communicate()[0]
        raw_ep = f"tcp://127.0.0.1:{raw_port}"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pmr_stream.cli", "view", "--endpoint", raw_ep, "--show-original", "--topic",
             "raw/", "--rerun", f"rerun+http://127.0.0.1:{port}/proxy", "--rrd", str(local_rrd), "--until-end",
             "--duration", "60"], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        with Subscriber(raw_ep, ["raw/"]) as tap:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "pmr_stream.cli", "produce", "--source", "synthetic", "--stream", "lab",
                 "--endpoint", raw_ep, "--max-frames", "40", "--speed", "4", "--wait-subscribers", "2",
                 "--wait-timeout", "60", "--report", "0"],
                cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            sent: list[FrameMessage] = []
            for r in tap.iter(duration_s=60):
                if isinstance(r.message, FrameMessage):
                    sent.append(r.message)
                elif isinstance(r.message, StreamEnd):
                    break
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], "\n---\n".join(outputs)
        assert "logged 40 person-frames" in outputs[0], outputs[0]
        want = sent  # the server writes as it receives: wait until it holds every frame, then stop it
        wait_until(lambda: server_rrd.is_file() and len(_frames(server_rrd)) == len(want), timeout_s=30,
                   interval_s=0.2, what="the rerun server to write the 40 frames")  # fmt: skip
    finally:
        for p in [*procs, server]:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
    assert len(want) == 40 and {m.person for m in want} == {0}
    joints = np.stack([m.joints for m in want])  # (40, 25, 3)
    for rrd in (server_rrd, local_rrd):
        got = logged_persons(rrd)
        assert set(got) == {"/raw/lab/person0"}, rrd
        g = got["/raw/lab/person0"]
        assert g.frames == [m.frame for m in want] and g.capture_ns == [m.t_wall_ns for m in want]
        np.testing.assert_array_equal(g.joints, joints)


def _frames(rrd: Path) -> list[int]:
    try:
        got = logged_persons(rrd)
    except Exception:  # still being written
        return []
    return got["/raw/lab/person0"].frames if "/raw/lab/person0" in got else []
