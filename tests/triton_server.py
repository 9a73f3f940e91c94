"""A real Triton server for the tests: ``pmr serve`` (pytriton's bundled tritonserver) on loopback ports.

Skips with the reason where the wheel cannot run (not installed, not Linux x86_64, glibc < 2.35).
The server is a process group of its own (our ``pmr serve`` process, tritonserver and its Python
backend stubs), so :meth:`TritonProcess.kill` ends all of it at once, as a crashed host would.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
#: Starting Triton and the engine takes ~5 s on a quiet 2-core machine; this one is shared.
START_TIMEOUT_S = 120.0


def skip_reason() -> str | None:
    """Why the bundled tritonserver cannot run here, or None."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"the nvidia-pytriton wheel's tritonserver runs on Linux x86_64 only (this is {sys.platform} {platform.machine()})"
    libc, version = platform.libc_ver()
    if libc == "glibc" and tuple(int(v) for v in version.split(".")[:2]) < (2, 35):
        return f"the nvidia-pytriton wheel's tritonserver needs glibc >= 2.35 (this host has {version})"
    for module in ("pytriton", "tritonclient"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e '.[triton]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could bind ``port`` now (with SO_REUSEADDR, as Triton's servers do: TIME_WAIT is no bar)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class TritonProcess:
    """One ``pmr serve`` process group; ``url`` is what ``--triton-url`` takes."""

    def __init__(self, args: Sequence[str] = ()) -> None:
        self.args = list(args)
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="pmr-serve-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> TritonProcess:
        ports = ["--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
                 "--metrics-port", str(self.metrics_port)]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / ".pmr_shim")]))
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pmr_engines.serve", "--backend", "onnxruntime", "--threads", "1", *ports,
                 *self.args],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True,
            )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"pmr serve exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}"
                )
            return "serve: Triton" in self.log.read_text(errors="replace")

        wait_until(ready, timeout_s=START_TIMEOUT_S, interval_s=0.1, what="pmr serve to be ready")
        return self

    def kill(self) -> None:
        """SIGKILL the whole group (our process, tritonserver, the stubs): a crash, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self._reap()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self._reap()

    def _reap(self) -> None:
        """Wait until tritonserver (it outlives a killed parent by a moment: it gets SIGTERM then) let go of
        its ports."""
        for port in (self.grpc_port, self.http_port, self.metrics_port):
            wait_until(
                lambda p=port: port_free(p), timeout_s=60, interval_s=0.1, what=f"port {port} to be free"
            )

    def metrics(self) -> dict[str, float]:
        """Triton's Prometheus counters of its models, ``{"nv_inference_exec_count": n, ...}`` (summed)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for m in re.finditer(r"^(nv_inference_\w+)\{[^}]*\} (\S+)$", text, re.M):
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
        return out


@contextmanager
def triton_server(args: Sequence[str] = ()) -> Iterator[TritonProcess]:
    """``pmr serve`` with ``args``, started (or the calling test skipped with the reason), stopped on exit."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    server = TritonProcess(args)
    try:
        yield server.start()
    finally:
        server.stop()
        server.log.unlink(missing_ok=True)
