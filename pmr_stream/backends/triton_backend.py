"""Triton backend: the streaming graph runs on a Triton Inference Server (a pool shared by many shards).

    backend = get_backend("triton", triton_url="127.0.0.1:8001", model_path=..., dummy=...)
    out = backend.anonymize(windows)   # (B, 75, 25, 3) -> (B, 75, 25, 3), one gRPC request per batch

The server hosts the model of ``pmr serve`` (any of our backends behind Triton) or of an exported
repository (``pmr export --format triton``); Triton's dynamic batcher joins the requests of many
shards into one execution. This side still loads the checkpoint and the dummy: the start-up probe
(:meth:`~pmr_stream.backends.base.Backend.verify`) checks that the server runs the same model onto
the same dummy, and it runs again on every new connection, so a server restarted with another
model (or one that returns its input) is refused before a single frame goes through it.

Fails closed: a request that fails or takes longer than ``triton_timeout_ms`` raises
:class:`~pmr_stream.backends.base.BackendUnavailable`, so the service drops and counts the
batch's frames (``failed{reason="backend_error"}``), publishing nothing for them. The connection is
then dropped; the next batch after :data:`RETRY_S` connects anew (and probes again), batches before
it fail at once instead of each waiting for a timeout. The client is gRPC (a persistent HTTP/2
channel, per-request deadlines); ``tritonclient`` is imported only when such a backend is made.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.backends.base import (
    Backend,
    BackendOptions,
    BackendUnavailable,
    ModelCheckError,
    ModelSource,
    check_windows,
    verify_outputs,
)
from pmr_stream.skeleton import C, J, T

log = logging.getLogger(__name__)

INPUT: Final[str] = "windows"
OUTPUT: Final[str] = "anonymized"
#: After a failed request, batches fail at once for this long (seconds) before a new connection is tried.
RETRY_S: Final[float] = 0.25
#: How long the start-up check waits for the server and its model to be ready, seconds.
STARTUP_WAIT_S: Final[float] = 30.0
TRITON_INSTALL_HINT: Final[str] = "tritonclient is not installed (pip install -e '.[triton]')"


def grpc_address(url: str) -> str:
    """``host:port`` from ``grpc://host:port`` or ``host:port``; anything else is a one-line ValueError."""
    address = url.removeprefix("grpc://")
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not host or not port.isdigit():
        raise ValueError(f"--triton-url {url!r}: expected host:port or grpc://host:port (Triton's gRPC port)")
    return address


def is_loopback_host(address: str) -> bool:
    """Whether ``host:port`` names this host (``localhost``, 127.0.0.0/8, ``[::1]``)."""
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pem(path: str | None, flag: str) -> str | None:
    """``path`` (tritonclient reads the file itself), checked to exist."""
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"--{flag} {path}: not found")
    return path


class TritonBackend(Backend):
    """Windows sent to a Triton server, one request per batch of at most ``max_batch`` windows."""

    name = "triton"

    def __init__(self, source: ModelSource, opts: BackendOptions) -> None:
        super().__init__(source, opts)
        if opts.triton_url is None:
            raise ValueError("backend triton needs the server's address (--triton-url host:port)")
        self.url = grpc_address(opts.triton_url)
        if opts.triton_tls_ca is None and not is_loopback_host(self.url):
            raise ValueError(f"--triton-url {opts.triton_url}: windows are raw skeletons and {self.url} is not a "
                             "loopback address; use TLS to the server (--triton-tls-ca FILE)")  # fmt: skip
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
        except ImportError as exc:
            raise BackendUnavailable(f"{TRITON_INSTALL_HINT} ({exc})") from exc
        self._grpc, self._error_type = grpcclient, InferenceServerException
        self.model = opts.triton_model
        self.timeout_s = opts.triton_timeout_ms / 1000.0
        self._tls = (_pem(opts.triton_tls_ca, "triton-tls-ca"), _pem(opts.triton_tls_key, "triton-tls-key"),
                     _pem(opts.triton_tls_cert, "triton-tls-cert"))  # fmt: skip
        self._client: Any = None
        self._verified = False
        self._retry_at = 0.0
        self.failures = 0  # requests that failed or timed out
        self.connections = 0  # connections made (the first, then one per recovery)
        self.server_max_batch: int | None = None

    # ------------------------------------------------------------------ connection

    def _connect(self) -> Any:
        if self._client is None:
            ca, key, cert = self._tls
            self._client = self._grpc.InferenceServerClient(
                self.url, ssl=ca is not None, root_certificates=ca, private_key=key, certificate_chain=cert
            )
            self._verified = False
            self.connections += 1
        return self._client

    def _drop(self) -> None:
        client, self._client, self._verified = self._client, None, False
        self._retry_at = time.monotonic() + RETRY_S
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a broken channel may fail to close; it is dropped anyway
                pass

    def _wait_ready(self, deadline_s: float) -> None:
        """Wait for the server and the model to be ready (start-up), then read the model's batch limit."""
        end = time.monotonic() + deadline_s
        why = "no answer"
        while True:
            client = self._connect()
            try:
                if client.is_server_ready(client_timeout=self.timeout_s) and client.is_model_ready(
                    self.model, client_timeout=self.timeout_s
                ):
                    break
                why = f"server up, model {self.model!r} not ready"
            except self._error_type as exc:
                why = exc.message() if hasattr(exc, "message") else str(exc)
                self._drop()
            if time.monotonic() >= end:
                raise BackendUnavailable(f"Triton server {self.url}, model {self.model!r}: not ready after "
                                         f"{deadline_s:.0f} s ({why}); start it (pmr serve) or check --triton-url")  # fmt: skip
            time.sleep(0.1)
        self.connections = 1  # the attempts while it was starting do not count as recoveries
        cfg = client.get_model_config(self.model, as_json=True, client_timeout=self.timeout_s)["config"]
        names_in = [t["name"] for t in cfg.get("input", [])]
        names_out = [t["name"] for t in cfg.get("output", [])]
        if names_in != [INPUT] or names_out != [OUTPUT]:
            raise ModelCheckError(f"Triton model {self.model!r} on {self.url}: tensors {names_in} -> {names_out}, "
                                  f"expected [{INPUT!r}] -> [{OUTPUT!r}]; refused")  # fmt: skip
        self.server_max_batch = int(cfg.get("max_batch_size", 0)) or None
        if self.server_max_batch is not None:
            self.max_batch = min(self.max_batch, self.server_max_batch)

    # ------------------------------------------------------------------ requests

    def _request(self, client: Any, windows: npt.NDArray[np.float32]) -> list[Any]:
        """Send ``windows`` in chunks of ``max_batch``, all at once (async), and wait for every answer."""
        chunks = [windows[s : s + self.max_batch] for s in range(0, len(windows), self.max_batch)]
        results: list[Any] = [None] * len(chunks)
        pending = threading.Semaphore(0)

        def done(i: int) -> Any:
            def callback(result: Any, error: Any) -> None:
                results[i] = error if error is not None else result
                pending.release()

            return callback

        for i, chunk in enumerate(chunks):
            x = self._grpc.InferInput(INPUT, list(chunk.shape), "FP32")
            x.set_data_from_numpy(chunk)
            client.async_infer(self.model, [x], done(i), outputs=[self._grpc.InferRequestedOutput(OUTPUT)],
                               client_timeout=self.timeout_s)  # fmt: skip
        end = time.monotonic() + self.timeout_s + 0.05  # the deadline is the channel's; this is a backstop
        for _ in chunks:
            if not pending.acquire(timeout=max(end - time.monotonic(), 0.0)):
                raise TimeoutError(f"no answer within {self.timeout_s * 1000:.0f} ms")
        return results

    def _infer(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One or more requests on a verified or fresh connection; errors propagate."""
        parts = []
        for r in self._request(self._connect(), windows):
            if isinstance(r, Exception):
                raise r
            parts.append(np.asarray(r.as_numpy(OUTPUT), dtype=np.float32))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if out.shape != windows.shape:
            raise ModelCheckError(
                f"Triton model {self.model!r} returned shape {out.shape}, expected {windows.shape}"
            )
        return out

    def _checked(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """:meth:`_infer` on a connection whose server passed the probe (probed first on a new connection)."""
        self._connect()
        if not self._verified:
            verify_outputs(
                self._infer, self.source, self.precision, f"Triton model {self.model!r} on {self.url}"
            )
            self._verified = True
            if self.connections > 1:
                log.warning(
                    "Triton server %s is back (connection %d; it passed the probe)",
                    self.url,
                    self.connections,
                )
        return self._infer(windows)

    def anonymize(self, windows: Any) -> Any:
        """``(B, 75, 25, 3)`` -> ``(B, 75, 25, 3)`` through the server; raises when it is down, slow or wrong.

        Raises:
            BackendUnavailable: the request failed or timed out, or a recent one did (retry pending).
            ModelCheckError: the server answered but failed the probe on this connection.
        """
        check_windows(windows)
        is_tensor = isinstance(windows, torch.Tensor)
        x = np.ascontiguousarray(windows.detach().cpu().numpy() if is_tensor else windows, dtype=np.float32)
        if len(x) == 0:
            out = np.zeros((0, T, J, C), np.float32)
        else:
            if self._client is None and time.monotonic() < self._retry_at:
                raise BackendUnavailable(f"Triton server {self.url} failed {RETRY_S * 1000:.0f} ms ago or less; "
                                         "batch dropped, reconnecting")  # fmt: skip
            try:
                out = self._checked(x)
            except ModelCheckError:
                self._drop()
                raise
            except Exception as exc:  # noqa: BLE001 - gRPC, Triton and timeouts: the batch fails closed
                self.failures += 1
                self._drop()
                msg = exc.message() if hasattr(exc, "message") and callable(exc.message) else str(exc)
                raise BackendUnavailable(f"Triton server {self.url}: {type(exc).__name__}: {msg}") from None
        return torch.from_numpy(out).to(windows.device) if is_tensor else out

    __call__ = anonymize

    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self._checked(windows)

    def verify(self) -> float:
        """Wait for the server and model (up to :data:`STARTUP_WAIT_S`), then the start-up probe through it."""
        self._wait_ready(STARTUP_WAIT_S)
        err = verify_outputs(
            self._infer, self.source, self.precision, f"Triton model {self.model!r} on {self.url}"
        )
        self._verified = True
        return err

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(triton_url=self.url, triton_model=self.model, triton_timeout_ms=self.timeout_s * 1000,
                 server_max_batch=self.server_max_batch, failures=self.failures, connections=self.connections)  # fmt: skip
        return d

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
