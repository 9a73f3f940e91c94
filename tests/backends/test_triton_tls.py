"""The shard -> pool link over mutual TLS: ``pmr serve --tls-*`` and ``--triton-tls-*`` with certificates
made here by openssl (a CA, the server's certificate for 127.0.0.1, a shard's client certificate)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.backends import BackendOptions, BackendUnavailable, get_backend, load_source
from pmr_stream.backends.triton_backend import TritonBackend
from tests.triton_server import triton_server


def make_certificates(folder: Path) -> dict[str, str]:
    """CA, server (SAN IP 127.0.0.1) and client key pairs, PEM, signed by the CA; ``{name: path}``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test certificates)")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=pmr-test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=pmr-test-{name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem")  # fmt: skip
    return {n: str(folder / n) for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.mark.slow  # starts a Triton server (5-30 s on a busy 2-core host)
def test_mutual_tls_between_shard_and_server(model_files: tuple[str, str], real_windows: np.ndarray,
                                             tmp_path: Path) -> None:  # fmt: skip
    model, dummy = model_files
    c = make_certificates(tmp_path)
    args = ["--model-path", model, "--dummy", dummy, "--tls-cert", c["server.pem"], "--tls-key", c["server.key"],
            "--tls-ca", c["ca.pem"]]  # fmt: skip
    with triton_server(args) as server:
        tls = {
            "triton_tls_ca": c["ca.pem"],
            "triton_tls_cert": c["client.pem"],
            "triton_tls_key": c["client.key"],
        }
        with get_backend("triton", triton_url=server.url, model_path=model, dummy=dummy, **tls) as b:
            assert b.anonymize(real_windows[:2]).shape == (2, 75, 25, 3)  # the probe passed over TLS too
        for missing in ({"triton_tls_ca": None}, {"triton_tls_cert": None, "triton_tls_key": None}):
            # in clear text, or without the client's certificate: refused by the server, the batch fails
            opts = BackendOptions(model_path=model, dummy=dummy, triton_url=server.url, triton_timeout_ms=2000,
                                  **(tls | missing))  # fmt: skip
            with pytest.raises(BackendUnavailable, match=f"Triton server {server.url}"):
                TritonBackend(load_source(opts), opts).anonymize(real_windows[:1])
