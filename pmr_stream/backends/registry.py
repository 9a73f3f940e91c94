"""The backend registry: ``get_backend(name, **options)``, ``list_backends()``, ``register_backend()``.

Backends are registered by name with a loader (imported only when used, so
``import pmr_stream.backends`` never imports onnxruntime or TensorRT) and a
check that says, without building anything, whether the backend can run
here and if not why. ``auto`` takes the fastest that can:

1. ``tensorrt`` on a CUDA GPU with TensorRT installed,
2. ``torch`` on CUDA (with CUDA graphs),
3. ``onnxruntime`` on CPU (measured fastest on CPUs at every batch size),
4. ``torch`` on CPU,

and logs what it took and what it passed over.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pmr_stream.backends.base import (
    TENSORRT_INSTALL_HINT,
    Backend,
    BackendOptions,
    BackendUnavailable,
    ModelSource,
    check_source_privacy,
    load_source,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: how to make it and how to tell whether it can run."""

    name: str
    loader: Callable[[], type[Backend]]
    check: Callable[[BackendOptions], str | None]  # None when usable, else why not
    description: str = ""


_REGISTRY: dict[str, BackendSpec] = {}


def register_backend(name: str, loader: Callable[[], type[Backend]], check: Callable[[BackendOptions], str | None],
                     description: str = "", replace_existing: bool = False) -> None:  # fmt: skip
    """Register a backend under ``name`` (``auto`` is reserved)."""
    if name == "auto":
        raise ValueError("'auto' is reserved for the automatic choice")
    if name in _REGISTRY and not replace_existing:
        raise ValueError(f"backend {name!r} is already registered")
    _REGISTRY[name] = BackendSpec(name, loader, check, description)


def list_backends() -> list[str]:
    """Names of the registered backends (``auto`` not included)."""
    return list(_REGISTRY)


def _spec(name: str) -> BackendSpec:
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose one of: auto, {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def unavailable_reason(name: str, **options: Any) -> str | None:
    """Why backend ``name`` cannot run with ``options`` here, or None when it can (nothing is built)."""
    return _spec(name).check(BackendOptions.from_kwargs(**options))


@dataclass(frozen=True)
class Facts:
    """What this host offers, as far as the automatic choice is concerned."""

    cuda: bool
    tensorrt: bool
    onnxruntime: bool


def host_facts() -> Facts:
    import torch

    return Facts(
        cuda=torch.cuda.is_available(),
        tensorrt=_check_tensorrt(BackendOptions(device="cuda")) is None
        if torch.cuda.is_available()
        else False,
        onnxruntime=importlib.util.find_spec("onnxruntime") is not None,
    )


def auto_candidates(facts: Facts, device: str | None = None) -> list[tuple[str, str]]:
    """``(backend, device)`` in order of preference for the host described by ``facts``.

    ``device`` restricts the choice (``cpu`` or ``cuda``); None lets the GPU win when there is one.
    """
    out: list[tuple[str, str]] = []
    want_gpu = device is None or device.startswith("cuda")
    gpu = device if device and device.startswith("cuda") else "cuda"
    if want_gpu and facts.cuda:
        if facts.tensorrt:
            out.append(("tensorrt", gpu))
        out.append(("torch", gpu))
    if device is None or device == "cpu":
        if facts.onnxruntime:
            out.append(("onnxruntime", "cpu"))
        out.append(("torch", "cpu"))
    return out


def get_backend(name: str = "auto", *, source: ModelSource | None = None, facts: Facts | None = None,
                **options: Any) -> Backend:  # fmt: skip
    """A ready backend, checked against the PyTorch reference on the start-up probe (:meth:`Backend.verify`).

    Args:
        name: ``torch``, ``onnxruntime``, ``tensorrt``, ``triton`` (never chosen by ``auto``) or ``auto``.
        source: an already loaded model and dummy (:func:`load_source`), to share between backends.
        facts: what the host offers (for ``auto``; default: looked up).
        **options: :class:`BackendOptions` fields (``model_path``, ``dummy``, ``device``, ``precision``, ...).

    Raises:
        ValueError: unknown name or option, or an invalid value.
        BackendUnavailable: the backend cannot run here; the message says why and what to install.
        ModelCheckError: the model, the dummy or a loaded file failed the start-up check (a ValueError).
    """
    if name == "auto":
        return _get_auto(source, facts, options)
    spec = _spec(name)
    opts = BackendOptions.from_kwargs(**options)
    reason = spec.check(opts)
    if reason is not None:
        raise BackendUnavailable(f"backend {name} on {opts.device}: {reason}")
    return _make(spec, source, opts)


def _make(spec: BackendSpec, source: ModelSource | None, opts: BackendOptions) -> Backend:
    """Make the backend and run its start-up check (:meth:`Backend.verify`); a backend that fails is closed.

    A given ``source`` must have been loaded for the privacy level ``opts`` ask for."""
    if source is not None:
        check_source_privacy(source, opts.privacy)
    backend = spec.loader()(source if source is not None else load_source(opts), opts)
    try:
        err = backend.verify()
    except BaseException:
        backend.close()
        raise
    log.debug("%s on %s passed the start-up check (relative error %.2g)", spec.name, backend.device, err)
    return backend


def _get_auto(source: ModelSource | None, facts: Facts | None, options: dict[str, Any]) -> Backend:
    requested = options.pop("device", None)
    base = BackendOptions.from_kwargs(**options)
    facts = facts or host_facts()
    skipped: list[str] = []
    for name, device in auto_candidates(facts, None if requested is None else str(requested)):
        opts = replace(base, device=device)
        if opts.precision == "fp16" and device == "cpu":
            opts = replace(opts, precision="fp32")
        reason = _REGISTRY[name].check(opts) if name in _REGISTRY else "not registered"
        if reason is None:
            try:
                backend = _make(
                    _REGISTRY[name], source, opts
                )  # a model that fails its check is refused, not passed over
            except (BackendUnavailable, RuntimeError) as exc:  # e.g. an engine that would not build
                reason = f"{type(exc).__name__}: {exc}"
            else:
                log.info("auto backend: %s on %s (%s)%s", name, backend.device, opts.precision,
                         f"; passed over: {'; '.join(skipped)}" if skipped else "")  # fmt: skip
                return backend
        skipped.append(f"{name} on {device}: {reason}")
    if not skipped:  # nothing to try, e.g. device cuda on a host without CUDA
        why = (
            _cuda_reason(replace(base, device=str(requested))) if str(requested).startswith("cuda") else None
        )
        skipped.append(f"device {requested}: {why or 'no backend runs on it'}")
    raise BackendUnavailable("no backend can run here: " + "; ".join(skipped))


# --- the built-in backends -------------------------------------------------------------------------------


def _cuda_reason(opts: BackendOptions) -> str | None:
    import torch

    if not torch.cuda.is_available():
        return f"CUDA is not available (torch {torch.__version__}, {'CPU-only build' if torch.version.cuda is None else 'no GPU seen'})"
    return None


def _check_torch(opts: BackendOptions) -> str | None:
    return _cuda_reason(opts) if opts.is_cuda else None


def _check_onnxruntime(opts: BackendOptions) -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime, or onnxruntime-gpu for CUDA)"
    if opts.onnx_path is None and importlib.util.find_spec("onnx") is None:
        return "exporting the model needs the onnx package (pip install onnx==1.17.0), or pass onnx_path"
    if opts.is_cuda:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return (f"onnxruntime {ort.__version__} has no CUDA execution provider "
                    f"(has {', '.join(ort.get_available_providers())}); install onnxruntime-gpu")  # fmt: skip
    return None


def _check_tensorrt(opts: BackendOptions) -> str | None:
    if not opts.is_cuda:
        return "TensorRT runs on CUDA GPUs only (device='cuda')"
    reason = _cuda_reason(opts)
    if reason:
        return reason
    if importlib.util.find_spec("tensorrt") is None:
        return TENSORRT_INSTALL_HINT
    try:
        importlib.import_module("tensorrt")
    except (ImportError, OSError) as exc:
        return f"tensorrt is installed but does not load ({type(exc).__name__}: {exc})"
    return None


def _check_triton(opts: BackendOptions) -> str | None:
    if importlib.util.find_spec("tritonclient") is None or importlib.util.find_spec("grpc") is None:
        return "tritonclient[grpc] is not installed (pip install -e '.[triton]')"
    if opts.triton_url is None:
        return "needs the Triton server's gRPC address (--triton-url host:port; pmr serve starts one)"
    return None


def _loader(module: str, cls: str) -> Callable[[], type[Backend]]:
    def load() -> type[Backend]:
        loaded: type[Backend] = getattr(importlib.import_module(module), cls)
        return loaded

    return load


register_backend("torch", _loader("pmr_stream.backends.torch_backend", "TorchBackend"), _check_torch,
                 "PyTorch, CPU or CUDA (CUDA graphs per batch bucket)")  # fmt: skip
register_backend("onnxruntime", _loader("pmr_stream.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
                 _check_onnxruntime, "ONNX Runtime, CPU or the CUDA execution provider")  # fmt: skip
register_backend("tensorrt", _loader("pmr_stream.backends.tensorrt_backend", "TensorRTBackend"), _check_tensorrt,
                 "TensorRT engine (fp32/fp16), CUDA tensors in and out")  # fmt: skip
register_backend("triton", _loader("pmr_stream.backends.triton_backend", "TritonBackend"), _check_triton,
                 "a Triton Inference Server (--triton-url; pmr serve), one gRPC request per batch")  # fmt: skip
