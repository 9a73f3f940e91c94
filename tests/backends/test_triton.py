"""The triton backend against a real Triton server (``pmr serve`` on loopback): the same outputs as the
in-process backend, batches split at the server's limit, bad addresses refused, a dead server fails
at once and a wrong model is refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from pmr_stream.backends import BackendUnavailable, get_backend, unavailable_reason
from pmr_stream.backends.base import relative_error
from pmr_stream.backends.triton_backend import grpc_address, is_loopback_host
from tests.triton_server import TritonProcess, free_port, skip_reason, triton_server


@pytest.fixture(scope="module")
def server(model_files: tuple[str, str]) -> Iterator[TritonProcess]:
    model, dummy = model_files
    with triton_server(["--model-path", model, "--dummy", dummy, "--max-batch", "4"]) as s:
        yield s


@pytest.fixture(scope="module")
def triton(server: TritonProcess, model_files: tuple[str, str]) -> Iterator[Any]:
    model, dummy = model_files
    b = get_backend("triton", triton_url=server.url, model_path=model, dummy=dummy, triton_timeout_ms=5000)
    yield b
    b.close()


def test_same_outputs_as_the_in_process_backend(triton: Any, model_files: tuple[str, str],
                                                real_windows: np.ndarray, cache: str) -> None:  # fmt: skip
    model, dummy = model_files
    local = get_backend("onnxruntime", model_path=model, dummy=dummy, cache_dir=cache, threads=1)
    assert triton.server_max_batch == 4 and triton.max_batch == 4
    for x in (real_windows[:1], real_windows[:7]):  # 7: two requests (4 + 3), sent together
        out = triton.anonymize(x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert relative_error(out, local.anonymize(x)) < 1e-5
    assert triton.failures == 0 and triton.connections == 1


def test_the_server_counts_one_request_per_batch(triton: Any, server: TritonProcess,
                                                 real_windows: np.ndarray) -> None:  # fmt: skip
    before = server.metrics()
    triton.anonymize(real_windows[:3])
    after = server.metrics()
    assert after["nv_inference_request_success"] - before["nv_inference_request_success"] == 1
    assert after["nv_inference_count"] - before["nv_inference_count"] == 3  # windows


def test_a_server_with_another_model_is_refused(server: TritonProcess, tmp_path: Any) -> None:
    from pmr_stream.backends import ModelCheckError
    from tests.backends.conftest import make_model_files

    other, dummy = make_model_files(tmp_path, seed=1)  # other weights than the server's
    with pytest.raises(ModelCheckError, match=f"Triton model 'pmr_stream' on {server.url}"):
        get_backend("triton", triton_url=server.url, model_path=other, dummy=dummy)


def test_nothing_listening_fails_at_once_and_counts(
    model_files: tuple[str, str], real_windows: np.ndarray
) -> None:
    if skip_reason() is not None:
        pytest.skip(str(skip_reason()))
    from pmr_stream.backends import BackendOptions, load_source
    from pmr_stream.backends.triton_backend import TritonBackend

    model, dummy = model_files
    opts = BackendOptions(
        model_path=model, dummy=dummy, triton_url=f"127.0.0.1:{free_port()}", triton_timeout_ms=300
    )
    b = TritonBackend(load_source(opts), opts)  # made without its start-up wait: a server gone later
    with pytest.raises(BackendUnavailable, match="Triton server 127.0.0.1:"):
        b.anonymize(real_windows[:2])
    with pytest.raises(BackendUnavailable, match="batch dropped, reconnecting"):
        b.anonymize(real_windows[:2])  # within RETRY_S: no new attempt
    assert b.failures == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8000", "expected host:port or grpc://host:port"),
        ("127.0.0.1", "expected host:port"),
        ("10.1.2.3:8001", "is not a loopback address; use TLS"),
    ],
)
def test_bad_urls_are_refused(model_files: tuple[str, str], url: str, message: str) -> None:
    if skip_reason() is not None:
        pytest.skip(str(skip_reason()))
    model, dummy = model_files
    with pytest.raises(ValueError, match=message):
        get_backend("triton", triton_url=url, model_path=model, dummy=dummy)


def test_address_helpers_and_registry() -> None:
    assert grpc_address("grpc://[::1]:8001") == "[::1]:8001" and is_loopback_host("[::1]:8001")
    assert (
        is_loopback_host("localhost:1") and is_loopback_host("127.0.0.2:1") and not is_loopback_host("pool:1")
    )
    if skip_reason() is None:
        assert "--triton-url" in str(unavailable_reason("triton"))
        assert unavailable_reason("triton", triton_url="127.0.0.1:1") is None


def test_pmr_bench_times_the_server(server: TritonProcess, model_files: tuple[str, str], tmp_path: Any,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import json

    from pmr_stream.cli import main

    model, dummy = model_files
    js = tmp_path / "bench.json"
    assert main(["bench", "--backend", "triton", "--triton-url", server.url, "--batch-sizes", "1,4", "--seconds",
                 "0.05", "--no-paper", "--model-path", model, "--dummy", dummy, "--json", str(js)]) == 0  # fmt: skip
    cases = json.loads(js.read_text())["cases"]
    assert [(c["backend"], c["batch"]) for c in cases] == [("triton", 1), ("triton", 4)]
    assert all(c["p50_ms"] > 0 for c in cases) and "triton" in capsys.readouterr().out


def test_the_backend_flags_carry_the_triton_options() -> None:
    import argparse

    from pmr_stream.backends.options import add_backend_arguments, backend_kwargs

    p = argparse.ArgumentParser()
    add_backend_arguments(p)
    args = p.parse_args(["--backend", "triton", "--triton-url", "pool:8001", "--triton-timeout-ms", "80",
                         "--triton-tls-ca", "ca.pem"])  # fmt: skip
    assert backend_kwargs(args) == {"triton_url": "pool:8001", "triton_timeout_ms": 80.0, "triton_tls_ca": "ca.pem",
                                    "spin": False}  # fmt: skip
    assert "triton_url" not in backend_kwargs(p.parse_args([]))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "triton"], "pmr serve hosts an engine of this host"),
        (["--host", "0.0.0.0"], "a non-loopback address needs TLS"),
        (["--host", "pool"], "expected an IP address"),
        (["--host", "0.0.0.0", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
    ],
)
def test_pmr_serve_refuses_bad_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmr_engines.serve import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pmr serve: error:") and message in err and len(err.strip().splitlines()) == 1


def test_pmr_stream_preflight_takes_the_triton_url() -> None:
    if skip_reason() is not None:
        pytest.skip(str(skip_reason()))
    from pmr_stream.demo import check_backend

    check_backend("triton", None, "127.0.0.1:8001")  # nothing is contacted before the processes start
    with pytest.raises(ValueError, match="--backend triton: needs the Triton server's gRPC address"):
        check_backend("triton", None)


def test_a_frozen_server_times_out_then_recovers(server: TritonProcess, model_files: tuple[str, str],
                                                 real_windows: np.ndarray) -> None:  # fmt: skip
    import os
    import signal
    import time

    from tests.waiting import wait_until

    model, dummy = model_files
    b = get_backend("triton", triton_url=server.url, model_path=model, dummy=dummy, triton_timeout_ms=300)
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGSTOP)  # a server that answers nothing: the slowest kind
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match="Deadline|no answer within 300 ms"):
            b.anonymize(real_windows[:2])
        assert time.monotonic() - t0 < 3.0 and b.failures == 1  # bounded by the timeout, not hung
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)

    def works() -> bool:
        try:
            return b.anonymize(real_windows[:2]).shape == (2, 75, 25, 3)
        except BackendUnavailable:
            return False

    wait_until(works, timeout_s=60, interval_s=0.3, what="the thawed server to answer again")
    assert b.connections >= 2
    b.close()
