"""The backend option set's flags: which network and dummy (``--model-path``, ``--dummy``,
``--privacy``) and how it runs (``--backend``, ``--device``, ``--threads``, ``--spin``), declared
once for every command (the anonymizer, ``pmr stream``, ``anonymize``, ``export``, ``bench`` and
the benchmarks). They become :class:`~pmr_stream.backends.base.BackendOptions` fields."""

from __future__ import annotations

import argparse
from typing import Any

from pmr_stream.model.privacy_dial import add_privacy_argument

#: ``--backend triton``'s defaults (the :class:`~pmr_stream.backends.base.BackendOptions` fields take them).
DEFAULT_TRITON_MODEL = "pmr_stream"
DEFAULT_TRITON_TIMEOUT_MS = 500.0


def add_model_arguments(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--model-path``, ``--dummy`` and ``--privacy``: the network, the dummy and the dial level."""
    p.add_argument(
        "--model-path", default=None, help=f"{what}checkpoint (default: the shipped default anonymizer)"
    )
    p.add_argument(
        "--dummy", default=None, help=f"{what}dummy recording or .npy window (default: the shipped dummy)"
    )
    add_privacy_argument(p, what)


def add_backend_arguments(p: argparse.ArgumentParser, what: str = "") -> None:
    """The model flags and ``--backend``, ``--device``, ``--threads``, ``--spin``."""
    p.add_argument(
        "--backend",
        default="auto",
        help=f"{what}torch, onnxruntime, tensorrt, triton (a server) or auto (default)",
    )
    p.add_argument("--device", default=None, help=f"{what}cpu, cuda, cuda:N (default: the backend's choice)")
    add_model_arguments(p, what)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"{what}CPU threads per engine call (default: the backend's)",
    )
    p.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help=f"{what}onnxruntime: let idle worker threads spin between calls (default --no-spin: they sleep, "
        "leaving the cores to the producers and subscribers; measured better at 60 streams on 2 cores)",
    )
    add_triton_arguments(p, what)


def add_triton_arguments(p: argparse.ArgumentParser, what: str = "") -> None:
    """``--triton-url``, ``--triton-model``, ``--triton-timeout-ms`` and the TLS files of ``--backend triton``."""
    p.add_argument("--triton-url", default=None,
                   help=f"{what}triton: the server's gRPC address host:port (pmr serve prints it)")  # fmt: skip
    p.add_argument(
        "--triton-model",
        default=DEFAULT_TRITON_MODEL,
        help=f"{what}triton: the model's name (default {DEFAULT_TRITON_MODEL})",
    )
    p.add_argument("--triton-timeout-ms", type=float, default=DEFAULT_TRITON_TIMEOUT_MS,
                   help=f"{what}triton: longest wait per request, ms; past it the batch's frames are dropped "
                   f"({DEFAULT_TRITON_TIMEOUT_MS:g})")  # fmt: skip
    for name, what_file in (("ca", "the CA certificate of the server's"), ("cert", "this client's certificate"),
                            ("key", "this client's private key")):  # fmt: skip
        p.add_argument(f"--triton-tls-{name}", default=None,
                       help=f"{what}triton: TLS, {what_file} (PEM); needed for a non-loopback server")  # fmt: skip


def backend_kwargs(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """:class:`~pmr_stream.backends.base.BackendOptions` fields from the flags of
    :func:`add_backend_arguments` (those left at their default are left out), plus ``extra``."""
    out: dict[str, Any] = {}
    for name in ("device", "model_path", "dummy", "privacy", "threads", "triton_url", "triton_tls_ca",
                 "triton_tls_cert", "triton_tls_key"):  # fmt: skip
        value = getattr(args, name, None)
        if value:
            out[name] = value
    for name, default in (
        ("triton_model", DEFAULT_TRITON_MODEL),
        ("triton_timeout_ms", DEFAULT_TRITON_TIMEOUT_MS),
    ):
        if getattr(args, name, default) != default:
            out[name] = getattr(args, name)
    if hasattr(args, "spin"):
        out["spin"] = args.spin  # onnxruntime only; the other backends ignore it
    return out | extra


__all__ = ["add_model_arguments", "add_backend_arguments", "add_triton_arguments", "backend_kwargs"]
