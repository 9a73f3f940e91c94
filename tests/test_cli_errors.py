"""One clear line, quickly: what the ``pmr`` command says when the input or the host cannot do it.

Each case runs the real command (a ``pmr`` process where the process is what matters: its
exit status, its output before failing, how long it takes) and checks for exactly one line
``pmr COMMAND: error: ...`` naming the input, exit status 2 and no traceback.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmr_stream.assets import DEMO_CLIP
from pmr_stream.cli import main

REPO = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture(autouse=True)
def _stream_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream-id key that exists, so the anonymizer has nothing to say about making one."""
    key = tmp_path_factory.mktemp("key") / "stream_key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    monkeypatch.setenv("PMR_STREAM_KEY", str(key))


def _pmr(
    *args: str, timeout_s: float = 60, cwd: Path = REPO
) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "pmr_stream.cli", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout_s, env=dict(os.environ, PYTHONPATH=str(REPO)))  # fmt: skip
    return p, time.monotonic() - t0


def _one_error_line(text: str, command: str) -> str:
    """The single line of ``text``, checked to be ``pmr COMMAND: error: ...``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert lines[0].startswith(f"pmr {command}: error: "), lines[0]
    assert "Traceback" not in text
    return lines[0]


def test_metrics_port_in_use_is_one_line_before_the_ready_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p, _ = _pmr("anonymizer", "--raw", "tcp://127.0.0.1:9", "--anon", "tcp://127.0.0.1:*", "--backend",
                    "onnxruntime", "--device", "cpu", "--metrics-port", str(port), "--duration", "20")  # fmt: skip
    assert p.returncode == 2, p.stdout + p.stderr
    line = _one_error_line(p.stderr, "anonymizer")
    assert f"127.0.0.1:{port}" in line and "in use" in line and "--metrics-port" in line
    assert "anonymizer:" not in p.stdout  # nothing announced: neither ready nor the metrics URL


@pytest.mark.skipif(_cuda() and importlib.util.find_spec("tensorrt") is not None, reason="TensorRT runs here")
@pytest.mark.parametrize("command", ["anonymizer", "stream"])
def test_an_unavailable_backend_is_one_line(command: str, tmp_path: Path) -> None:
    extra = ["--raw", "tcp://127.0.0.1:9"] if command == "anonymizer" else ["--workdir", str(tmp_path / "w")]
    p, took = _pmr(command, *extra, "--backend", "tensorrt", "--duration", "5", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "tensorrt" in _one_error_line(p.stderr, command).lower()
    assert not p.stdout.strip()  # pmr stream started nothing
    assert not (tmp_path / "w").exists()
    assert took < 10


@pytest.mark.skipif(_cuda(), reason="CUDA is available here")
@pytest.mark.parametrize(
    "argv",
    [
        ["anonymizer", "--raw", "tcp://127.0.0.1:9", "--device", "cuda"],  # auto on CUDA
        ["anonymizer", "--raw", "tcp://127.0.0.1:9", "--backend", "torch", "--device", "cuda"],
        ["anonymize", "--input", str(DEMO_CLIP), "--output", "OUT/x.npz", "--device", "cuda"],
        ["stream", "--device", "cuda", "--workdir", "OUT/w"],
    ],
)
def test_device_cuda_without_cuda_is_one_line(argv: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = _one_error_line(err, argv[0])
    assert "--device cuda" in line and "sees no CUDA device" in line
    assert not list(tmp_path.iterdir())  # nothing written, nothing started


@pytest.mark.parametrize(
    "argv",
    [
        ["visualize", "--input", "DIR", "--format", "skeleton", "--output", "OUT/x.png"],
        ["convert", "--input", "DIR", "--from", "skeleton", "--output", "OUT/x.npz"],
        ["anonymize", "--input", "DIR", "--format", "skeleton", "--output", "OUT/x.skeleton"],
        ["stream", "--source", "kinect:DIR", "--workdir", "OUT/w"],
    ],
)
def test_a_directory_as_input_is_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "clips"
    d.mkdir()
    (tmp_path / "out").mkdir()
    argv = [a.replace("DIR", str(d)).replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    assert str(d) in _one_error_line(capsys.readouterr().err, argv[0])
    assert not list((tmp_path / "out").iterdir())


@pytest.mark.skipif(Path("/dev/video9").exists(), reason="this host has a /dev/video9")
def test_pmr_stream_without_the_camera_fails_in_a_second(tmp_path: Path) -> None:
    p, took = _pmr(
        "stream", "--source", "webcam:9", "--workdir", str(tmp_path / "w"), "--no-video", cwd=tmp_path
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "webcam 9" in _one_error_line(p.stderr, "stream")
    assert not p.stdout.strip() and not (tmp_path / "w").exists()  # no process was started
    assert took < 10, (
        f"took {took:.1f} s"
    )  # preflight: no process start, no backend load (about 1 s unloaded)


def test_pmr_stream_reports_the_line_its_failing_process_wrote(tmp_path: Path) -> None:
    """A process of the pipeline fails (here the producer, on a stream id the wire refuses): the
    pipeline stops at once and prints that process's own error line, not empty log blocks."""
    p, took = _pmr("stream", "--stream", "bad id!", "--backend", "onnxruntime", "--device", "cpu",
                   "--workdir", str(tmp_path / "w"), "--no-video", timeout_s=60, cwd=tmp_path)  # fmt: skip
    assert p.returncode == 2, p.stdout + p.stderr
    line = _one_error_line(p.stderr, "stream")
    assert "error: producer failed (exit 2): pmr produce: error:" in line and "bad id!" in line
    assert took < 20, f"took {took:.1f} s"  # not the 30 s wait for streams that will never end
