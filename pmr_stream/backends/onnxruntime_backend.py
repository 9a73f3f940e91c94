"""ONNX Runtime backend: CPU, or the CUDA execution provider where it is installed.

The ONNX file is ``options.onnx_path``, or the model exported (and checked) by
:func:`pmr_stream.backends.artifacts.onnx_export.ensure_onnx` into the artifact cache, named by what it
depends on. Either way the session must pass the start-up check
(:meth:`~pmr_stream.backends.base.Backend.verify`): a cached export that fails
it is exported again, a given ``onnx_path`` is refused. On CPU the session is tuned for small batches: all graph
optimisations, a fixed intra-op thread count, and spinning worker threads
only where that was measured to help (see README "Engines and backends").
With the CUDA provider, CUDA tensors go in and out through I/O binding, with
no copy through host memory.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.backends.base import Backend, BackendOptions, BackendUnavailable, ModelCheckError, ModelSource

log = logging.getLogger(__name__)

INPUT = "windows"
OUTPUT = "anonymized"


def import_onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise BackendUnavailable(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from exc
    return ort


def session_options(ort: Any, threads: int | None, spin: bool | None) -> Any:
    """Session options for low latency on few cores."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads if threads is not None else min(os.cpu_count() or 1, 4)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: its warnings are about providers we did not ask for
    if spin is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return so


class OnnxRuntimeBackend(Backend):
    """The exported streaming graph in an ONNX Runtime session."""

    name = "onnxruntime"

    def __init__(self, source: ModelSource, opts: BackendOptions) -> None:
        super().__init__(source, opts)
        ort = import_onnxruntime()
        self.cuda = opts.is_cuda
        if self.cuda:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    f"onnxruntime {ort.__version__} has no CUDA execution provider "
                    f"(providers: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu or use device='cpu'"
                )  # fmt: skip
            index = int(
                str(opts.device).partition(":")[2]
                or (torch.cuda.current_device() if torch.cuda.is_available() else 0)
            )
            self.device = f"cuda:{index}"
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        else:
            index = 0
            providers = ["CPUExecutionProvider"]
        self.device_index = index
        self._ort, self._providers = ort, providers
        self._cached = opts.onnx_path is None
        if opts.onnx_path is not None:
            path = str(opts.onnx_path)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"ONNX file not found: {path}")
        else:
            from pmr_stream.backends.artifacts.onnx_export import (
                ensure_onnx,  # lazy: engines is only needed to make the file
            )

            path = str(
                ensure_onnx(source, precision=opts.precision, graph=opts.graph, directory=opts.cache_dir).path
            )
        self.onnx_path = path
        try:
            self._open(path)
        except ModelCheckError as exc:
            if not self._cached:
                raise
            log.warning("%s; exporting it again", str(exc).removesuffix("; refused"))
            self._rebuild()

    def _open(self, path: str) -> None:
        """Start the session on ``path`` and find its one input and one output."""
        opts = self.options
        try:
            self.session = self._ort.InferenceSession(path, session_options(self._ort, opts.threads, opts.spin),
                                                      providers=self._providers)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for files it cannot use
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ModelCheckError(
                f"{path}: ONNX Runtime cannot load it ({type(exc).__name__}: {first}); refused"
            ) from None
        names_in = [i.name for i in self.session.get_inputs()]
        names_out = [o.name for o in self.session.get_outputs()]
        if len(names_in) != 1 or len(names_out) != 1:
            raise ModelCheckError(
                f"{path}: expected one input and one output, found {names_in} -> {names_out}; refused"
            )
        self.input_name, self.output_name = names_in[0], names_out[0]
        self._binding = self.session.io_binding() if self.cuda else None
        log.debug(
            "onnxruntime session on %s from %s (providers %s)",
            self.device,
            path,
            self.session.get_providers(),
        )

    @property
    def artifact(self) -> str | None:
        return self.onnx_path

    def _can_rebuild(self) -> bool:
        return self._cached

    def _rebuild(self) -> None:
        """Export the model again over the cached file (and its ``.json``), then reopen the session."""
        from pmr_stream.backends.artifacts.onnx_export import export_onnx

        self.close()
        export_onnx(self.source, self.onnx_path, precision=self.precision, graph=self.graph)
        self._open(self.onnx_path)

    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = self.session.run([self.output_name], {self.input_name: windows})[0]
        return np.asarray(out, dtype=np.float32)

    def _run_tensor(self, windows: torch.Tensor) -> torch.Tensor:
        if not self.cuda or windows.device.type != "cuda":
            return super()._run_tensor(windows)
        x = windows.to(f"cuda:{self.device_index}", torch.float32).contiguous()
        out = torch.empty_like(x)
        b = self._binding
        assert b is not None
        b.bind_input(self.input_name, "cuda", self.device_index, np.float32, tuple(x.shape), x.data_ptr())
        b.bind_output(
            self.output_name, "cuda", self.device_index, np.float32, tuple(out.shape), out.data_ptr()
        )
        torch.cuda.current_stream(x.device).synchronize()  # ORT runs on its own stream: inputs must be ready
        self.session.run_with_iobinding(b)
        return out.to(windows.device)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["onnx"] = self.onnx_path
        d["providers"] = self.session.get_providers()
        return d

    def close(self) -> None:
        """Drop the session: its worker threads (which may spin) go with it."""
        self._binding = None
        self.session = None
