"""TensorRT backend: a serialized engine run on CUDA tensors, no host copies inside a call.

The engine comes from :func:`pmr_stream.backends.artifacts.tensorrt_build.ensure_engine`: reused when
its metadata matches the running TensorRT, GPU, model, dummy and precision,
rebuilt otherwise (or refused with the rebuild command, ``rebuild="never"``).
Input and output are torch CUDA tensors whose device pointers are handed to
``IExecutionContext.set_tensor_address``; the call is
``execute_async_v3`` on torch's current stream, so it orders with the
caller's other GPU work. With ``cuda_graphs`` each batch bucket's enqueue is
captured once into a CUDA graph and replayed (one launch per call).

The start-up check (:meth:`~pmr_stream.backends.base.Backend.verify`) runs the
probe through the engine: a cached engine that fails it is rebuilt from a fresh
ONNX export (unless ``rebuild="never"``); a given ``engine_path`` is refused.

Uses only the TensorRT 10/11 name-based API (``num_io_tensors``,
``get_tensor_name``, ``get_tensor_mode``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``), which both versions share.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.backends.base import Backend, BackendOptions, BackendUnavailable, ModelSource
from pmr_stream.backends.torch_backend import buckets
from pmr_stream.skeleton import C, J, T

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """A TensorRT engine of the streaming graph (fp32 or fp16), batch 1..max_batch."""

    name = "tensorrt"

    def __init__(self, source: ModelSource, opts: BackendOptions) -> None:
        super().__init__(source, opts)
        if not opts.is_cuda:
            raise BackendUnavailable("the tensorrt backend runs on CUDA only; pass device='cuda'")
        if not torch.cuda.is_available():
            raise BackendUnavailable(f"torch {torch.__version__} sees no CUDA device")
        from pmr_stream.backends.artifacts.tensorrt_build import import_tensorrt  # lazy: needs TensorRT

        self.trt = import_tensorrt()
        index = int(str(opts.device).partition(":")[2] or torch.cuda.current_device())
        self.torch_device = torch.device("cuda", index)
        self.device = str(self.torch_device)
        self._load(opts.rebuild)

    def _load(self, rebuild: str) -> None:
        """Find (or build) the engine, deserialize it and name its tensors."""
        from pmr_stream.backends.artifacts.tensorrt_build import deserialize, ensure_engine

        opts, source, index = self.options, self.source, self.torch_device.index
        with torch.cuda.device(self.torch_device):
            art = ensure_engine(source, precision=opts.precision, max_batch=opts.max_batch, graph=opts.graph,
                                engine_path=opts.engine_path, rebuild=rebuild, directory=opts.cache_dir,
                                device=index)  # fmt: skip
            self.engine_path = art.path
            self.metadata = art.metadata
            self.runtime, self.engine = deserialize(art.path)
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"{art.path}: expected one input and one output tensor, found {inputs} -> {outputs}"
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        for n in (self.input_name, self.output_name):
            if self.engine.get_tensor_dtype(n) != self.trt.float32:
                raise ValueError(
                    f"{art.path}: tensor {n} is {self.engine.get_tensor_dtype(n)}, expected float32 I/O"
                )
        self.max_batch = min(opts.max_batch, art.metadata.max_batch)
        self.use_graphs = opts.cuda_graphs
        self._buckets = buckets(self.max_batch)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        log.debug("tensorrt engine %s (%s, rebuilt=%s)", art.path, opts.precision, art.rebuilt)

    @property
    def artifact(self) -> str | None:
        return str(self.engine_path)

    def _can_rebuild(self) -> bool:
        return self.options.engine_path is None and self.options.rebuild != "never"

    def _rebuild(self) -> None:
        """Export the ONNX graph again (the cached one is not trusted either), then build the engine again."""
        from pmr_stream.backends.artifacts.onnx_export import default_onnx_path, export_onnx

        self.close()
        export_onnx(self.source, default_onnx_path(self.source, self.precision, self.graph, directory=self.options.cache_dir),
                    precision=self.precision, graph=self.graph)  # fmt: skip
        self._load("always")

    def _enqueue(self, x: torch.Tensor, out: torch.Tensor, stream: torch.cuda.Stream) -> None:
        """Set shapes and addresses and enqueue one execution on ``stream``."""
        ctx = self.context
        if not ctx.set_input_shape(self.input_name, tuple(x.shape)):
            raise ValueError(
                f"engine {self.engine_path} refused input shape {tuple(x.shape)} (profile batch 1..{self.max_batch})"
            )
        ctx.set_tensor_address(self.input_name, x.data_ptr())
        ctx.set_tensor_address(self.output_name, out.data_ptr())
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT execute_async_v3 failed on {self.engine_path}")

    def _graph_for(self, bucket: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        if bucket not in self._graphs:
            static_in = torch.zeros(bucket, T, J, C, device=self.torch_device)
            static_out = torch.empty_like(static_in)
            stream = torch.cuda.current_stream(self.torch_device)
            self._enqueue(
                static_in, static_out, stream
            )  # once outside capture: TensorRT sets up for this shape
            stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._enqueue(static_in, static_out, torch.cuda.current_stream(self.torch_device))
            self._graphs[bucket] = (graph, static_in, static_out)
        return self._graphs[bucket]

    def _run_tensor(self, windows: torch.Tensor) -> torch.Tensor:
        x = windows.to(self.torch_device, torch.float32, non_blocking=True).contiguous()
        b = x.shape[0]
        if self.use_graphs:
            try:
                bucket = next(k for k in self._buckets if k >= b)
                graph, static_in, static_out = self._graph_for(bucket)
            except (
                RuntimeError
            ) as exc:  # capture not possible (old driver, engine with host syncs): run directly
                log.warning(
                    "CUDA graph capture of the TensorRT engine failed (%s); running without graphs", exc
                )
                self.use_graphs = False
            else:
                static_in[:b].copy_(x, non_blocking=True)
                graph.replay()
                return static_out[:b].clone().to(windows.device)
        out = torch.empty_like(x)
        self._enqueue(x, out, torch.cuda.current_stream(self.torch_device))
        return out.to(windows.device)

    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self._run_tensor(torch.from_numpy(windows).to(self.torch_device)).cpu().numpy()

    def warmup(self, batch_sizes: tuple[int, ...] = (1,), repeats: int = 3) -> None:
        super().warmup(batch_sizes, repeats)
        torch.cuda.synchronize(self.torch_device)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"engine": str(self.engine_path), "tensorrt": self.metadata.tensorrt_version,
                  "gpu": self.metadata.gpu_name, "build_time_s": self.metadata.build_time_s})  # fmt: skip
        return d

    def close(self) -> None:
        self._graphs.clear()
        self.context = None
        self.engine = None
