"""PyTorch backend: CPU, or CUDA with one CUDA graph per batch-size bucket.

On CUDA with ``cuda_graphs`` (the default), each call is padded up to the next
bucket (1, 2, 4, ... up to ``max_batch``) and replays the graph captured for
that bucket: one launch instead of one per layer, which is what batch-1
latency on a GPU is made of. Rows are independent in this network, so padding
rows never change the real ones.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import numpy.typing as npt
import torch

from pmr_stream.backends.base import Backend, BackendOptions, BackendUnavailable, ModelSource
from pmr_stream.backends.graph import build_graph
from pmr_stream.skeleton import C, J, T

log = logging.getLogger(__name__)


def buckets(max_batch: int) -> list[int]:
    """Batch sizes CUDA graphs are captured for: powers of two below ``max_batch``, and ``max_batch``."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return out + [max_batch]


class TorchBackend(Backend):
    """The streaming graph in PyTorch (``torch.inference_mode``)."""

    name = "torch"

    def __init__(self, source: ModelSource, opts: BackendOptions) -> None:
        super().__init__(source, opts)
        dev = torch.device(opts.device)
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(f"torch {torch.__version__} sees no CUDA device; use device='cpu'")
            if dev.index is None:
                dev = torch.device("cuda", torch.cuda.current_device())
        if opts.threads is not None and dev.type == "cpu":
            torch.set_num_threads(opts.threads)  # process-wide: torch has no per-module thread count
        self.torch_device = dev
        self.device = str(dev)
        self.dtype = torch.float16 if opts.precision == "fp16" else torch.float32
        model = copy.deepcopy(source.model).float()
        self.module = build_graph(model, source.code.float(), opts.graph, source.privacy).to(dev, self.dtype)
        self.use_graphs = dev.type == "cuda" and opts.cuda_graphs
        self._buckets = buckets(self.max_batch)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(
                x.to(self.torch_device, self.dtype, non_blocking=True)
            ).float()  # (b, 75, 25, 3)

    def _graph_for(self, bucket: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        """The CUDA graph of one bucket, captured on first use: (graph, static input, static output)."""
        if bucket not in self._graphs:
            static_in = torch.zeros(bucket, T, J, C, device=self.torch_device, dtype=torch.float32)
            side = torch.cuda.Stream(self.torch_device)
            side.wait_stream(torch.cuda.current_stream(self.torch_device))
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(3):  # kernels and workspaces settle before capture
                    self.module(static_in.to(self.dtype))
            torch.cuda.current_stream(self.torch_device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.inference_mode(), torch.cuda.graph(graph):
                static_out = self.module(static_in.to(self.dtype)).float()
            self._graphs[bucket] = (graph, static_in, static_out)
            log.debug("captured a CUDA graph for batch %d", bucket)
        return self._graphs[bucket]

    def _run_tensor(self, windows: torch.Tensor) -> torch.Tensor:
        if not self.use_graphs:
            return self._forward(windows).to(windows.device)
        b = windows.shape[0]
        bucket = next(k for k in self._buckets if k >= b)
        graph, static_in, static_out = self._graph_for(bucket)
        static_in[:b].copy_(windows, non_blocking=True)
        graph.replay()
        return (
            static_out[:b].clone().to(windows.device)
        )  # the static output is overwritten by the next replay

    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        x = torch.from_numpy(windows)
        if self.torch_device.type == "cpu":
            return self._forward(x).numpy()
        return self._run_tensor(x.to(self.torch_device)).cpu().numpy()

    def warmup(self, batch_sizes: tuple[int, ...] = (1,), repeats: int = 3) -> None:
        super().warmup(batch_sizes, repeats)
        if self.torch_device.type == "cuda":
            torch.cuda.synchronize(self.torch_device)

    def close(self) -> None:
        self._graphs.clear()
