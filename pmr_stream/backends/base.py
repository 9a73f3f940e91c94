"""What every backend shares: its options, the model and dummy it runs, and its interface.

A backend runs the streaming graph ``anonymized = D(E_M(windows), z_dummy)`` on
windows ``(B, 75, 25, 3)`` float32, normalised (SpineMid of the first frame at
the origin), and returns ``(B, 75, 25, 3)``. ``z_dummy``, the dummy's privacy
code, is computed once when the backend is made and is part of the graph
(a constant in every exported or compiled form).

    with get_backend("onnxruntime", model_path="model.pt", dummy="dummy.npz") as backend:
        backend.warmup()
        out = backend.anonymize(windows)   # numpy in, numpy out

GPU backends also take a CUDA ``torch.Tensor`` and give one back on the same
device, without a copy through host memory.
"""

from __future__ import annotations

import abc
import hashlib
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.model.pmr import PMRModel
from pmr_stream.skeleton import C, J, T

log = logging.getLogger(__name__)

PRECISIONS: Final[tuple[str, ...]] = ("fp32", "fp16")
GRAPHS: Final[tuple[str, ...]] = ("folded", "reference")
REBUILD: Final[tuple[str, ...]] = ("auto", "always", "never")
#: Largest batch a backend is made for unless told otherwise; bigger inputs are cut into such batches.
DEFAULT_MAX_BATCH: Final[int] = 256
TENSORRT_INSTALL_HINT: Final[str] = (
    "TensorRT is not installed: on a GPU host run "
    "pip install --extra-index-url https://pypi.nvidia.com -e '.[trt]' "
    "(or tensorrt-cu12 / tensorrt-cu13 to match torch's CUDA; README 'Engines and backends')"
)


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (its library, a GPU or an engine is missing); says what and how to fix it."""


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where exported graphs and engines are kept: ``override``, ``$PMR_STREAM_CACHE``, or ``~/.cache/pmr-stream``."""
    if override:
        return Path(override)
    env = os.environ.get("PMR_STREAM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pmr-stream"


@dataclass(frozen=True)
class BackendOptions:
    """Options of :func:`~pmr_stream.backends.get_backend`; each backend uses the ones that apply to it.

    Attributes:
        model_path: checkpoint (default: the shipped model, ``pmr_stream.assets.DEFAULT_MODEL``).
        dummy: the dummy: a recording file (its first person's first 75 frames), a
            ``.npy`` window ``(75, 25, 3)``, or such an array (default: ``DEFAULT_DUMMY``).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32`` or ``fp16`` (fp16 needs CUDA).
        max_batch: largest batch per call to the engine; bigger inputs are split.
        graph: ``folded`` (the exact rewrite with half the FLOPs, see
            :mod:`pmr_stream.backends.graph`) or ``reference`` (the network as defined).
        threads: CPU threads for one call (ONNX Runtime intra-op threads; torch's
            process-wide thread count). Default: the library's choice.
        cuda_graphs: torch on CUDA: capture a CUDA graph per batch size in use.
        onnx_path: onnxruntime: run this ONNX file instead of exporting the model.
        engine_path: tensorrt: the engine file (default: named by its dependencies in ``cache_dir``).
        cache_dir: where exported ONNX files and engines are kept (see :func:`cache_dir`).
        rebuild: tensorrt: ``auto`` rebuilds an engine whose metadata does not match
            this TensorRT/GPU/model, ``always`` rebuilds, ``never`` refuses with a message.
        spin: onnxruntime: let idle worker threads spin (lower latency, busier CPU).
    """

    model_path: str | None = None
    dummy: Any = None
    device: str = "cpu"
    precision: str = "fp32"
    max_batch: int = DEFAULT_MAX_BATCH
    graph: str = "folded"
    threads: int | None = None
    cuda_graphs: bool = True
    onnx_path: str | None = None
    engine_path: str | None = None
    cache_dir: str | None = None
    rebuild: str = "auto"
    spin: bool | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.graph not in GRAPHS:
            raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {self.graph!r}")
        if self.rebuild not in REBUILD:
            raise ValueError(f"rebuild must be one of {', '.join(REBUILD)}, got {self.rebuild!r}")
        if not isinstance(self.max_batch, int) or isinstance(self.max_batch, bool) or self.max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {self.threads!r}")
        dev = str(self.device)
        if not (dev == "cpu" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        if self.precision == "fp16" and dev == "cpu":
            raise ValueError("precision fp16 needs a CUDA device (CPUs run this network faster in fp32)")

    @classmethod
    def from_kwargs(cls, **options: Any) -> BackendOptions:
        """Options from keyword arguments; an unknown name is refused with the list of valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(f"unknown backend option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
        return cls(**options)

    @property
    def is_cuda(self) -> bool:
        return str(self.device).startswith("cuda")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_dummy_window(dummy: Any) -> npt.NDArray[np.float32]:
    """The dummy as a normalised window ``(75, 25, 3)`` float32, from a path or an array."""
    from pmr_stream.skeleton import normalize

    if isinstance(dummy, (str, os.PathLike)):
        p = Path(dummy)
        if not p.is_file():
            raise FileNotFoundError(f"dummy not found: {p}")
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
            if arr.shape == (T, J, C):
                return normalize(arr)[0]
        from pmr_stream.anonymize import load_dummy

        return load_dummy(p)
    arr = np.asarray(dummy, dtype=np.float32)
    if arr.shape == (1, T, J, C):
        arr = arr[0]
    if arr.shape != (T, J, C):
        raise ValueError(f"dummy window must have shape ({T}, {J}, {C}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("dummy window holds NaN or infinite values")
    return normalize(arr)[0]


@dataclass(frozen=True)
class ModelSource:
    """The network and the dummy a backend runs, with the digests that name its artifacts."""

    model: PMRModel
    code: torch.Tensor  # (1, C0, C1) the dummy's privacy code, float32, CPU
    model_path: str
    model_id: str
    model_sha256: str  # of the checkpoint file
    dummy_sha256: str  # of the normalised dummy window's float32 bytes
    dummy_window: npt.NDArray[np.float32] | None = None  # (75, 25, 3) normalised metres

    @property
    def stem(self) -> str:
        """Short file-name stem of the model, e.g. ``pmr_standin``."""
        return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(self.model_path).stem) or "model"


def load_source(opts: BackendOptions) -> ModelSource:
    """Load the checkpoint and the dummy of ``opts`` (the shipped defaults when not given)."""
    from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
    from pmr_stream.model.checkpoint import load_model

    if opts.model_path is None or opts.dummy is None:
        missing = [str(p) for p, given in ((DEFAULT_MODEL, opts.model_path), (DEFAULT_DUMMY, opts.dummy))
                   if given is None and not Path(p).is_file()]  # fmt: skip
        if missing:
            raise FileNotFoundError(f"the shipped default model/dummy is missing ({', '.join(missing)}); "
                                    "pass model_path and dummy (--model-path/--dummy)")  # fmt: skip
    model_path = str(opts.model_path) if opts.model_path is not None else str(DEFAULT_MODEL)
    dummy = opts.dummy if opts.dummy is not None else DEFAULT_DUMMY
    model, ckpt = load_model(model_path)
    window = load_dummy_window(dummy)
    with torch.no_grad():
        code = model.privacy_code(torch.from_numpy(window)[None])  # (1, C0, C1)
    return ModelSource(
        model=model, code=code.detach().clone(), model_path=model_path,
        model_id=str(ckpt.provenance.get("model_id", Path(model_path).stem)),
        model_sha256=sha256_file(model_path), dummy_sha256=sha256_bytes(np.ascontiguousarray(window).tobytes()),
        dummy_window=window,
    )  # fmt: skip


def check_windows(windows: Any) -> None:
    """Refuse anything that is not ``(B, 75, 25, 3)``, naming what was given."""
    shape = tuple(windows.shape) if hasattr(windows, "shape") else None
    if shape is None or len(shape) != 4 or shape[1:] != (T, J, C):
        raise ValueError(f"windows must have shape (B, {T}, {J}, {C}), got {shape}")


class Backend(abc.ABC):
    """One interface for every way of running the streaming graph.

    Attributes:
        name: the registry name (``torch``, ``onnxruntime``, ``tensorrt``).
        device: where it runs (``cpu``, ``cuda:0``).
        precision: ``fp32`` or ``fp16``.
        max_batch: largest batch per engine call (larger inputs are split).
        graph: which form of the streaming graph it runs (``folded`` or ``reference``).
    """

    name: str = "?"

    def __init__(self, source: ModelSource, opts: BackendOptions) -> None:
        self.source = source
        self.options = opts
        self.device = opts.device
        self.precision = opts.precision
        self.max_batch = opts.max_batch
        self.graph = opts.graph

    def anonymize(self, windows: Any) -> Any:
        """``(B, 75, 25, 3)`` normalised windows -> anonymized ``(B, 75, 25, 3)``.

        numpy in, numpy out (float32). GPU backends also take a ``torch.Tensor``
        (any device) and return a ``torch.Tensor`` on the input's device.
        """
        check_windows(windows)
        n = windows.shape[0]
        if n == 0:
            if isinstance(windows, torch.Tensor):
                return torch.zeros((0, T, J, C), dtype=torch.float32, device=windows.device)
            return np.zeros((0, T, J, C), np.float32)
        if isinstance(windows, torch.Tensor):
            parts = [self._run_tensor(windows[s : s + self.max_batch]) for s in range(0, n, self.max_batch)]
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        w = np.ascontiguousarray(windows, dtype=np.float32)
        parts_np = [self._run(w[s : s + self.max_batch]) for s in range(0, n, self.max_batch)]
        return parts_np[0] if len(parts_np) == 1 else np.concatenate(parts_np)

    __call__ = anonymize

    @abc.abstractmethod
    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One engine call on ``(b, 75, 25, 3)``, ``b <= max_batch``, C-contiguous float32."""

    def _run_tensor(self, windows: torch.Tensor) -> torch.Tensor:
        """One engine call on a tensor; the default goes through numpy."""
        out = self._run(np.ascontiguousarray(windows.detach().cpu().numpy(), dtype=np.float32))
        return torch.from_numpy(out).to(windows.device)

    def warmup(self, batch_sizes: tuple[int, ...] = (1,), repeats: int = 3) -> None:
        """Run each batch size a few times so first-call costs (allocation, graph capture, tuning) are paid now."""
        for b in batch_sizes:
            x = np.zeros((min(b, self.max_batch), T, J, C), np.float32)
            for _ in range(repeats):
                self.anonymize(x)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the backend holds (sessions, engines, GPU memory)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        """What runs where, for logs and benchmark reports."""
        return {"backend": self.name, "device": str(self.device), "precision": self.precision,
                "graph": self.graph, "max_batch": self.max_batch, "model": self.source.model_path,
                "model_sha256": self.source.model_sha256[:12], "dummy_sha256": self.source.dummy_sha256[:12]}  # fmt: skip

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device} {self.precision} graph={self.graph}>"
