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

Nothing loaded is trusted as it is. :func:`load_source` refuses a checkpoint with
non-finite weights, a dummy that is not a finite skeleton in metres, and a model
whose PyTorch reference gives a non-finite, out-of-range or unchanged output on
the start-up probe (:func:`probe_windows`: four fixed windows of the shipped demo
clip). Every backend made by :func:`~pmr_stream.backends.get_backend` then runs
the same probe (:meth:`Backend.verify`) and is compared with that reference: an
ONNX graph or engine the library cached itself is rebuilt once when it does not
match, a file the user gave is refused; either way :class:`ModelCheckError` names
the file in one line.
"""

from __future__ import annotations

import abc
import copy
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.backends.options import DEFAULT_TRITON_MODEL, DEFAULT_TRITON_TIMEOUT_MS
from pmr_stream.cache import cache_dir as cache_dir  # re-exported: the one definition is in pmr_stream.cache
from pmr_stream.model.pmr import AnonymizerGraph, PMRModel
from pmr_stream.skeleton import C, J, T, median_bone_lengths

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


#: Largest relative error (``max |out - ref| / max |ref|``) of a backend's output on the start-up probe
#: against the PyTorch fp32 reference. Loose enough for any correct engine (fp32 measured ~1e-6; the
#: margin covers TF32 convolutions on CUDA; fp16 under 1e-2), far below what a wrong graph gives
#: (identity ~0.7-1.7, another checkpoint ~1.4, another dummy ~0.15 on the shipped model).
PROBE_TOLERANCE: Final[dict[str, float]] = {"fp32": 2e-3, "fp16": 2e-2}
#: Largest coordinate, metres, of a normalised dummy window or of an output on the probe (a person spans < 3 m).
PROBE_MAX_ABS_M: Final[float] = 10.0
#: An output closer to its input than this (relative) is the input passed through, not anonymized.
PROBE_MIN_CHANGE: Final[float] = 1e-3
#: Start frames of the probe windows in the shipped demo clip (360 frames, several actions).
PROBE_STARTS: Final[tuple[int, ...]] = (0, 95, 190, 285)


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (its library, a GPU or an engine is missing); says what and how to fix it."""


class ModelCheckError(ValueError):
    """A model, dummy, ONNX graph or engine failed the start-up check; one line naming the file and why."""


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
        privacy: the privacy dial's level (:data:`~pmr_stream.model.privacy_dial.PRIVACY_LEVELS`)
            every graph is built with, the start-up reference included; ``None``: the model's
            default. A model without a dial refuses a level. The ``--privacy`` flag of every
            command is :func:`pmr_stream.model.privacy_dial.add_privacy_argument`.
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
    privacy: str | None = None
    triton_url: str | None = None
    triton_model: str = DEFAULT_TRITON_MODEL
    triton_timeout_ms: float = DEFAULT_TRITON_TIMEOUT_MS
    triton_tls_ca: str | None = None
    triton_tls_cert: str | None = None
    triton_tls_key: str | None = None

    def __post_init__(self) -> None:
        if self.privacy is not None:
            from pmr_stream.model.privacy_dial import check_privacy

            check_privacy(self.privacy, "privacy")
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
        if not (isinstance(self.triton_timeout_ms, (int, float)) and self.triton_timeout_ms > 0):
            raise ValueError(f"triton_timeout_ms must be a positive number, got {self.triton_timeout_ms!r}")
        if self.precision == "fp16" and dev == "cpu":
            raise ValueError("precision fp16 needs a CUDA device (CPUs run this network faster in fp32)")

    @classmethod
    def from_kwargs(cls, **options: Any) -> BackendOptions:
        """Options from keyword arguments; an unknown name is refused with the list of valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ValueError(
                f"unknown backend option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
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


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """``max |out - ref| / max |ref|``: the parity measure used everywhere in the project."""
    scale = float(np.max(np.abs(ref))) or 1.0
    return float(np.max(np.abs(np.asarray(out, np.float64) - np.asarray(ref, np.float64)))) / scale


def _check_dummy_window(window: npt.NDArray[np.float32], name: str) -> npt.NDArray[np.float32]:
    """Refuse a normalised dummy window that is not a finite skeleton in metres."""
    if not np.all(np.isfinite(window)):
        raise ModelCheckError(f"dummy {name}: holds NaN or infinite values; refused")
    reach = float(np.max(np.abs(window))) if window.size else 0.0
    if reach > PROBE_MAX_ABS_M:
        raise ModelCheckError(f"dummy {name}: joints lie up to {reach:.3g} m from its first SpineMid "
                              f"(more than {PROBE_MAX_ABS_M:g} m: not a skeleton in metres); refused")  # fmt: skip
    return window


def load_dummy(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """The dummy's 75-frame window ``(75, 25, 3)``, normalised metres, from a recording file.

    The first person's first 75 frames are used (shorter clips are padded). Unchecked: the
    backends load it through :func:`load_dummy_window`, which refuses a non-finite window.
    """
    from pmr_stream.formats.io import load_recording
    from pmr_stream.skeleton import crop_clip, normalize

    rec = load_recording(path)
    frames = rec.joints[rec.present[:, 0], 0] if rec.present[:, 0].any() else None
    if frames is None or len(frames) == 0:
        raise ValueError(f"dummy {path}: the recording holds no frame of its first person")
    window = crop_clip(frames[:T] if len(frames) >= T else frames, "centre")
    return normalize(window)[0]


def load_dummy_window(dummy: Any) -> npt.NDArray[np.float32]:
    """The dummy as a normalised window ``(75, 25, 3)`` float32, from a path or an array.

    Raises:
        ModelCheckError: the window holds NaN/inf or joints more than ``PROBE_MAX_ABS_M`` from its origin.
    """
    from pmr_stream.skeleton import normalize

    if isinstance(dummy, (str, os.PathLike)):
        p = Path(dummy)
        if not p.is_file():
            raise FileNotFoundError(f"dummy not found: {p}")
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
            if arr.shape == (T, J, C):
                if not np.all(np.isfinite(arr)):
                    raise ModelCheckError(f"dummy {p}: holds NaN or infinite values; refused")
                return _check_dummy_window(normalize(arr)[0], str(p))
        return _check_dummy_window(load_dummy(p), str(p))
    arr = np.asarray(dummy, dtype=np.float32)
    if arr.shape == (1, T, J, C):
        arr = arr[0]
    if arr.shape != (T, J, C):
        raise ValueError(f"dummy window must have shape ({T}, {J}, {C}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ModelCheckError("dummy window holds NaN or infinite values; refused")
    return _check_dummy_window(normalize(arr)[0], "window")


@lru_cache(maxsize=1)
def _probe_windows() -> npt.NDArray[np.float32]:
    from pmr_stream.assets import DEMO_CLIP
    from pmr_stream.skeleton import normalize

    clip: npt.NDArray[np.float32] | None = None
    if DEMO_CLIP.is_file():
        from pmr_stream.formats.recording import Recording

        rec = Recording.load(DEMO_CLIP)
        if rec.num_frames >= PROBE_STARTS[-1] + T and rec.present[:, 0].all():
            clip = rec.joints[:, 0]
    if clip is None:  # the generator's own clips (deterministic): a checkout without the demo file
        from pmr_stream.synth import demo_clip

        clip = np.concatenate([demo_clip(a).joints for a in ("wave", "drink", "sit_down", "salute")])
        clip = np.concatenate([clip] * (1 + (PROBE_STARTS[-1] + T) // len(clip)))
    windows = np.stack([normalize(clip[s : s + T])[0] for s in PROBE_STARTS]).astype(np.float32)
    windows.flags.writeable = False
    return windows


def probe_windows() -> npt.NDArray[np.float32]:
    """The start-up probe: ``(4, 75, 25, 3)`` normalised windows of the shipped demo clip, always the same.

    Recorded motion of several actions (not zeros, not noise), so that a graph that
    passes its input through, or one made from another checkpoint or dummy, gives an
    output far from the reference's.
    """
    return _probe_windows().copy()


def reference_outputs(model: PMRModel, code: torch.Tensor, windows: npt.NDArray[np.float32],
                      privacy: str | None = None) -> npt.NDArray[np.float32]:  # fmt: skip
    """The PyTorch fp32 reference, :class:`AnonymizerGraph` at privacy level ``privacy`` (``None``: the
    model's default) in eager mode on CPU: ``(B, 75, 25, 3)`` -> same."""
    cpu = next(model.parameters()).device.type == "cpu" and next(model.parameters()).dtype == torch.float32
    net = model if cpu else copy.deepcopy(model).float().cpu()
    ref = AnonymizerGraph(net, code.detach().float().cpu(), privacy).eval()
    with torch.inference_mode():
        return ref(torch.from_numpy(np.ascontiguousarray(windows, np.float32))).numpy()


def probe_problem(out: Any, windows: npt.NDArray[np.float32], reference: npt.NDArray[np.float32] | None,
                  tolerance: float) -> str | None:  # fmt: skip
    """What is wrong with ``out``, the output on the probe ``windows`` (None: nothing).

    Checked in this order: shape, finite, within ``PROBE_MAX_ABS_M``, not the input
    passed through, and (when ``reference`` is given) within ``tolerance`` of it.
    """
    arr = np.asarray(out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else out)
    if arr.shape != windows.shape:
        return f"the start-up probe gave shape {arr.shape}, expected {windows.shape}"
    if not np.all(np.isfinite(arr)):
        return f"the start-up probe gave NaN or infinite output ({int(np.sum(~np.isfinite(arr)))} values)"
    reach = float(np.max(np.abs(arr)))
    if reach > PROBE_MAX_ABS_M:
        return (
            f"the start-up probe gave joints {reach:.3g} m from the origin (more than {PROBE_MAX_ABS_M:g} m)"
        )
    change = relative_error(arr, windows)
    if change < PROBE_MIN_CHANGE:
        return f"the start-up probe came back unchanged (relative change {change:.2g}): it passes its input through"
    if reference is not None:
        err = relative_error(arr, reference)
        if not err < tolerance:
            return (f"its output differs from the PyTorch reference by {err:.3g} on the start-up probe "
                    f"(relative; tolerance {tolerance:g}): not this model and dummy")  # fmt: skip
    return None


def _check_weights(model: PMRModel, path: str) -> None:
    """Refuse a network with NaN or infinite weights, naming the checkpoint and the tensors."""
    bad = [(k, int((~torch.isfinite(v)).sum())) for k, v in model.state_dict().items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]  # fmt: skip
    if bad:
        names = ", ".join(f"{k} ({n} values)" for k, n in bad[:3]) + (
            f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        )
        raise ModelCheckError(f"{path}: the checkpoint holds NaN or infinite weights in {names}; refused")


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
    dummy_name: str = "window"  # the dummy's file, for messages
    probe: npt.NDArray[np.float32] | None = None  # (4, 75, 25, 3) the start-up probe (probe_windows())
    probe_reference: npt.NDArray[np.float32] | None = None  # (4, 75, 25, 3) the PyTorch fp32 reference on it
    privacy: str | None = (
        None  # the dial's level every graph of this source runs (None: the model has no dial)
    )

    def dummy_bone_lengths(self) -> npt.NDArray[np.float64]:
        """The dummy's median bone lengths ``(24,)`` metres: the target of ``--bones dummy``."""
        if self.dummy_window is None:
            raise ValueError(
                f"--bones dummy needs the dummy's window: the source of {self.dummy_name} has none"
            )
        return np.asarray(median_bone_lengths(self.dummy_window), dtype=np.float64)

    @property
    def stem(self) -> str:
        """Short file-name stem of the model, e.g. ``pmr_default``."""
        return (
            "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(self.model_path).stem) or "model"
        )


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
    dummy_name = str(dummy) if isinstance(dummy, (str, os.PathLike)) else "window"
    model, ckpt = load_model(model_path)
    _check_weights(model, model_path)
    privacy = resolve_privacy(model, opts.privacy, model_path)
    window = load_dummy_window(dummy)
    with torch.no_grad():
        code = model.privacy_code(torch.from_numpy(window)[None])  # (1, C0, C1)
    if not bool(torch.isfinite(code).all()):
        raise ModelCheckError(
            f"{model_path}: the privacy code of dummy {dummy_name} is NaN or infinite; refused"
        )
    probe = probe_windows()
    reference = reference_outputs(model, code, probe, privacy)
    problem = probe_problem(reference, probe, None, 0.0)
    if problem is not None:
        raise ModelCheckError(f"{model_path} (dummy {dummy_name}): {problem}; refused")
    return ModelSource(
        model=model, code=code.detach().clone(), model_path=model_path,
        model_id=str(ckpt.provenance.get("model_id", Path(model_path).stem)),
        model_sha256=sha256_file(model_path), dummy_sha256=sha256_bytes(np.ascontiguousarray(window).tobytes()),
        dummy_window=window, dummy_name=dummy_name, probe=probe, probe_reference=reference, privacy=privacy,
    )  # fmt: skip


def resolve_privacy(model: PMRModel, privacy: str | None, model_path: str) -> str | None:
    """The level ``model`` runs for ``privacy`` (``None``: its default; ``None`` back when it has no
    dial); a level it cannot run is a one-line :class:`ValueError` naming ``model_path``."""
    try:
        return model.resolve_privacy(privacy)
    except ValueError as exc:
        raise ValueError(f"{model_path}: {exc}") from None


def check_source_privacy(source: ModelSource, privacy: str | None) -> None:
    """Refuse options asking for another level than the one ``source`` was loaded for, in one line
    (``None`` asks for nothing: the source's level is used)."""
    if privacy is None:
        return
    want = resolve_privacy(source.model, privacy, source.model_path)
    if want != source.privacy:
        raise ValueError(f"privacy {want!r} asked, but the model source {source.model_path} was loaded for "
                         f"privacy {source.privacy!r}: load it with load_source(BackendOptions(privacy=...))")  # fmt: skip


def verify_outputs(run: Callable[[npt.NDArray[np.float32]], Any], source: ModelSource, precision: str,
                   what: str) -> float:  # fmt: skip
    """Run ``run`` on the start-up probe and compare with the PyTorch reference; returns the relative error.

    Raises:
        ModelCheckError: ``what`` (the file that was loaded) and what is wrong, in one line.
    """
    probe, reference = source.probe, source.probe_reference
    if probe is None or reference is None:
        probe = probe_windows()
        reference = reference_outputs(source.model, source.code, probe, source.privacy)
    out = run(probe.copy())
    problem = probe_problem(out, probe, reference, PROBE_TOLERANCE[precision])
    if problem is not None:
        raise ModelCheckError(f"{what}: {problem}; refused")
    arr = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    return relative_error(arr, reference)


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

    @property
    def artifact(self) -> str | None:
        """The file this backend loaded and runs (an ONNX graph, an engine), or None when it runs the checkpoint."""
        return None

    def _can_rebuild(self) -> bool:
        """Whether :attr:`artifact` is a cache the library made itself and may make again (a user's file: no)."""
        return False

    def _rebuild(self) -> None:
        """Make :attr:`artifact` again from the checkpoint and load it (only called when :meth:`_can_rebuild`)."""
        raise NotImplementedError

    def verify(self) -> float:
        """The start-up check: the probe through this backend against the PyTorch reference.

        A cached artifact that fails is rebuilt once (a warning names it) and checked
        again; a user's file, or one that still fails, is refused.

        Returns:
            the relative error on the probe.

        Raises:
            ModelCheckError: one line naming the file (the artifact, else the checkpoint) and the problem.
        """
        what = self.artifact or self.source.model_path
        try:
            return verify_outputs(self.anonymize, self.source, self.precision, what)
        except ModelCheckError as exc:
            if self.artifact is None or not self._can_rebuild():
                raise
            log.warning("%s; rebuilding it", str(exc).removesuffix("; refused"))
        self._rebuild()
        try:
            err = verify_outputs(self.anonymize, self.source, self.precision, what)
        except ModelCheckError as exc:
            raise ModelCheckError(
                f"{str(exc).removesuffix('; refused')}, even after rebuilding it; refused"
            ) from None
        log.warning("rebuilt %s: it matches the PyTorch reference (relative error %.2g)", what, err)
        return err

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
                "model_sha256": self.source.model_sha256[:12], "dummy_sha256": self.source.dummy_sha256[:12],
                "privacy": self.source.privacy}  # fmt: skip

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device} {self.precision} graph={self.graph}>"
