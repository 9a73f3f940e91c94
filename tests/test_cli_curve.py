"""CurveZMQ on the command line: the one flag set in every command, the --insecure rule, `pmr stream --curve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.cli import main
from pmr_stream.demo import load_stream_keys, make_stream_keys
from pmr_stream.formats.io import load_recording

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["produce", "--source", "synthetic", "--endpoint", "tcp://0.0.0.0:*"], "refusing to bind tcp://0.0.0.0:*"),
        (["produce", "--source", "synthetic", "--endpoint", "tcp://*:*"], "--curve-secret FILE with --curve-clients"),
        (["produce", "--source", "synthetic", "--endpoint", "tcp://10.1.2.3:5555", "--connect"], "refusing to connect"),
        (["record", "--bind", "--endpoint", "tcp://[::]:*", "--output", "{tmp}/x.npz"], "refusing to bind tcp://[::]"),
        (["probe", "--endpoint", "tcp://192.168.50.1:5555", "--duration", "0.1"], "--curve-server-key FILE"),
        (["anonymizer", "--raw", "tcp://10.1.2.3:5555"], "--raw-curve-secret FILE with --raw-curve-server-key"),
        (["anonymizer", "--raw", "tcp://10.1.2.3:5555"], "on a trusted network, pass --raw-insecure"),
    ],
)  # fmt: skip
def test_raw_in_clear_off_the_host_is_one_clear_line(
    argv: list[str], match: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "raw skeletons, which identify people" in err and match in err, err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["anonymizer", "--raw", "tcp://127.0.0.1:1", "--anon-curve-secret", "s"],
            "needs --anon-curve-clients DIR",
        ),
        (
            ["anonymizer", "--raw", "tcp://127.0.0.1:1", "--raw-curve-secret", "s"],
            "needs --raw-curve-server-key",
        ),
        (
            ["anonymizer", "--raw", "tcp://127.0.0.1:1", "--raw-curve-server-key", "k"],
            "needs --raw-curve-secret",
        ),
        (
            [
                "record",
                "--endpoint",
                "tcp://127.0.0.1:1",
                "--output",
                "{tmp}/x.npz",
                "--curve-secret",
                "s",
                "--curve-clients",
                "d",
            ],
            "--curve-clients is for the binding side",
        ),  # fmt: skip
        (
            ["produce", "--source", "synthetic", "--endpoint", "tcp://127.0.0.1:*", "--curve-secret", "s"],
            "needs --curve-clients DIR",
        ),  # fmt: skip
        (
            ["stream", "--curve-keys", "{tmp}/none", "--no-video", "--workdir", "{tmp}/w"],
            "--curve-keys {tmp}/none: not a folder",
        ),
    ],
)
def test_curve_misconfiguration_names_the_flag(
    argv: list[str], match: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match.replace("{tmp}", str(tmp_path)) in err, err


def test_insecure_lets_a_producer_bind_every_address(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "produce",
        "--source",
        "synthetic",
        "--endpoint",
        "tcp://0.0.0.0:*",
        "--speed",
        "0",
        "--max-frames",
        "3",
    ]
    assert main([*argv, "--insecure", "--report", "0"]) == 0
    assert "(clear text)" in capsys.readouterr().out


def test_stream_key_set(tmp_path: Path) -> None:
    keys = make_stream_keys(tmp_path / "k")
    assert load_stream_keys(tmp_path / "k") == keys
    assert sorted(p.name for p in keys.raw_clients.iterdir()) == ["anonymizer.key", "recorder.key"]
    assert [p.name for p in keys.anon_clients.iterdir()] == ["sink.key"]
    assert oct(keys.secret("producer").stat().st_mode & 0o777) == "0o600"
    old = keys.public("producer").read_bytes()
    make_stream_keys(tmp_path / "k")  # a fresh set replaces the old one
    assert keys.public("producer").read_bytes() != old
    assert "--raw-curve-server-key" in keys.flags("anonymizer") and "--anon-curve-clients" in keys.flags(
        "anonymizer"
    )
    keys.public("sink").unlink()
    with pytest.raises(ValueError, match=r"--curve-keys .*sink\.key"):
        load_stream_keys(tmp_path / "k")


def test_pmr_stream_curve_encrypts_every_link(tmp_path: Path) -> None:
    """Producer -> anonymizer -> sink and producer -> raw recorder, all CURVE, each server admitting only its clients."""
    work = tmp_path / "w"
    p = subprocess.run(
        [sys.executable, str(REPO / "run_stream.py"), "--curve", "--max-frames", "30", "--workdir", str(work),
         "--output", str(tmp_path / "side.gif"), "--width", "80", "--height", "60", "--backend", "onnxruntime",
         "--device", "cpu"],
        capture_output=True, text=True, timeout=180, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"every link encrypted and authenticated with CurveZMQ (keys in {work / 'curve'}/)" in p.stdout
    logs = {n: (work / f"{n}.log").read_text() for n in ("producer", "anonymizer", "raw_recorder", "sink")}
    assert " (CurveZMQ) (Ctrl-C stops)" in logs["producer"]
    assert "raw/ from tcp://127.0.0.1:" in logs["anonymizer"] and logs["anonymizer"].count("(CurveZMQ)") == 2
    assert "(CurveZMQ)" in logs["raw_recorder"]
    assert not any("handshake failed" in text for text in logs.values()), logs
    svc = json.loads((work / "service.json").read_text())
    assert svc["published_frames"] == svc["frames_in"] == 30
    raw, anon = load_recording(work / "raw.npz"), load_recording(work / "anon.npz")
    assert len(raw.joints) == len(anon.joints) == 30
    assert not np.allclose(raw.joints, anon.joints, atol=1e-3)
