"""The backend option set's flags: which network and dummy (``--model-path``, ``--dummy``,
``--privacy``) and how it runs (``--backend``, ``--device``, ``--threads``, ``--spin``), declared
once for every command (the anonymizer, ``pmr stream``, ``anonymize``, ``export``, ``bench`` and
the benchmarks). They become :class:`~pmr_stream.backends.base.BackendOptions` fields."""

from __future__ import annotations

import argparse
from typing import Any

from pmr_stream.model.privacy_dial import add_privacy_argument


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
    p.add_argument("--backend", default="auto", help=f"{what}torch, onnxruntime, tensorrt or auto (default)")
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


def backend_kwargs(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """:class:`~pmr_stream.backends.base.BackendOptions` fields from the flags of
    :func:`add_backend_arguments` (those left at their default are left out), plus ``extra``."""
    out: dict[str, Any] = {}
    for name in ("device", "model_path", "dummy", "privacy", "threads"):
        value = getattr(args, name, None)
        if value:
            out[name] = value
    if hasattr(args, "spin"):
        out["spin"] = args.spin  # onnxruntime only; the other backends ignore it
    return out | extra


__all__ = ["add_model_arguments", "add_backend_arguments", "backend_kwargs"]
