"""A Triton Inference Server model repository of the streaming graph.

    pmr export --format triton --output REPO [--max-batch 256] [--instances 1] [--max-queue-delay-us 500]

writes one model per variant, each in Triton's layout::

    REPO/pmr_stream_onnx/config.pbtxt      platform onnxruntime_onnx
    REPO/pmr_stream_onnx/1/model.onnx      the checked export (+ model.onnx.json, its metadata)
    REPO/pmr_stream_trt/config.pbtxt       platform tensorrt_plan
    REPO/pmr_stream_trt/1/model.plan       built only where TensorRT and a GPU are (+ model.plan.json)

Each ``config.pbtxt`` (protobuf text format of Triton's ``ModelConfig``) takes its input and
output names, data types and dims from the exported ONNX graph itself (:func:`graph_tensors`),
never from a second declaration: ``windows`` ``TYPE_FP32 [75, 25, 3]`` in, ``anonymized`` out,
the batch dimension left to ``max_batch_size``. Dynamic batching is on (Triton joins requests
of many anonymizer shards into one execution, waiting at most ``max_queue_delay_us``), with
``instances`` execution instances. The model's and dummy's digests and the privacy level are
written as ``parameters`` so that a pool's operator can see which anonymizer a model is; the
shards check it anyway with the start-up probe (:class:`~pmr_stream.backends.triton_backend.TritonBackend`).

The TensorRT plan must be built by the TensorRT version of the Triton server that loads it and
on that GPU: where TensorRT is missing the variant's config is written and the plan is not; the
message says how to build it on the pool's host (``pmr export --format tensorrt --output
REPO/pmr_stream_trt/1/model.plan``). Until then start Triton with ``--model-control-mode=explicit
--load-model pmr_stream_onnx``, or export ``--triton-variants onnxruntime`` only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pmr_stream.backends.base import DEFAULT_MAX_BATCH, ModelSource

log = logging.getLogger(__name__)

DEFAULT_NAME: Final[str] = "pmr_stream"
#: Variant -> (Triton platform, model file, name suffix, instance kind).
VARIANTS: Final[dict[str, tuple[str, str, str]]] = {
    "onnxruntime": ("onnxruntime_onnx", "model.onnx", "onnx"),
    "tensorrt": ("tensorrt_plan", "model.plan", "trt"),
}
#: ONNX ``TensorProto`` element types -> Triton data types.
ONNX_TO_TRITON: Final[dict[int, str]] = {1: "TYPE_FP32", 10: "TYPE_FP16", 11: "TYPE_FP64", 6: "TYPE_INT32",
                                          7: "TYPE_INT64", 9: "TYPE_BOOL", 2: "TYPE_UINT8", 3: "TYPE_INT8"}  # fmt: skip
VERSION: Final[str] = "1"
#: Default longest wait of a request in Triton's batcher, microseconds (0.5 ms: a 30 fps frame budget is 33 ms).
DEFAULT_QUEUE_DELAY_US: Final[int] = 500


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a Triton model: ``dims`` without the batch dimension."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class TritonModelConfig:
    """The fields of Triton's ``ModelConfig`` that a repository of ours sets (:meth:`to_pbtxt` writes them)."""

    name: str
    platform: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    parameters: dict[str, str] = field(default_factory=dict)

    def to_pbtxt(self) -> str:
        """The protobuf text format Triton reads as ``config.pbtxt``."""

        def tensors(key: str, specs: tuple[TensorSpec, ...]) -> list[str]:
            items = [f'  {{\n    name: "{s.name}"\n    data_type: {s.data_type}\n'
                     f"    dims: [ {', '.join(str(d) for d in s.dims)} ]\n  }}" for s in specs]  # fmt: skip
            return [f"{key} [", ",\n".join(items), "]"]

        lines = [f'name: "{self.name}"', f'platform: "{self.platform}"', f"max_batch_size: {self.max_batch_size}",
                 "version_policy: { latest: { num_versions: 1 } }", *tensors("input", self.inputs),
                 *tensors("output", self.outputs),
                 f"instance_group [\n  {{\n    count: {self.instance_count}\n    kind: {self.instance_kind}\n  }}\n]",
                 f"dynamic_batching {{\n  max_queue_delay_microseconds: {self.max_queue_delay_us}\n}}"]  # fmt: skip
        for key, value in sorted(self.parameters.items()):
            lines.append(f'parameters {{\n  key: "{key}"\n  value: {{ string_value: "{value}" }}\n}}')
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RepositoryOptions:
    """What :func:`write_repository` writes.

    Attributes:
        name: model name stem; the variants are ``{name}_onnx`` and ``{name}_trt``.
        variants: any of :data:`VARIANTS`.
        max_batch: Triton's ``max_batch_size`` (and the TensorRT plan's largest batch).
        instances: execution instances per model (``instance_group.count``).
        device: ``cpu`` or ``gpu``: where the ONNX Runtime variant's instances run (the plan: always GPU).
        max_queue_delay_us: the dynamic batcher's longest wait for more requests, microseconds.
        precision, graph, opset: of the export (:func:`~pmr_stream.backends.artifacts.onnx_export.export_onnx`).
    """

    name: str = DEFAULT_NAME
    variants: tuple[str, ...] = ("onnxruntime", "tensorrt")
    max_batch: int = DEFAULT_MAX_BATCH
    instances: int = 1
    device: str = "cpu"
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    precision: str = "fp32"
    graph: str = "folded"
    opset: int = 17

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(
                f"triton variants must be among {', '.join(VARIANTS)}, got {', '.join(self.variants)}"
            )
        if not self.name or not all(ch.isalnum() or ch in "-_" for ch in self.name):
            raise ValueError(f"triton model name must be letters, digits, - and _, got {self.name!r}")
        for what, value in (("max_batch", self.max_batch), ("instances", self.instances)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        if isinstance(self.max_queue_delay_us, bool) or self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us must be 0 or more, got {self.max_queue_delay_us!r}")
        if self.device not in ("cpu", "gpu"):
            raise ValueError(f"triton device must be cpu or gpu, got {self.device!r}")

    def model_name(self, variant: str) -> str:
        return f"{self.name}_{VARIANTS[variant][2]}"


@dataclass(frozen=True)
class RepositoryModel:
    """One model written: its folder, its config, and whether its model file is there."""

    variant: str
    path: Path
    config: TritonModelConfig
    built: bool
    note: str = ""


def graph_tensors(model: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of an ``onnx.ModelProto`` as Triton tensors (batch dimension removed).

    Raises:
        ValueError: a tensor whose first dimension is not dynamic (Triton's batching needs it),
            another dimension that is not fixed, or a data type Triton has no name for.
    """
    initializers = {i.name for i in model.graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tt = value.type.tensor_type
        if tt.elem_type not in ONNX_TO_TRITON:
            raise ValueError(f"ONNX tensor {value.name}: element type {tt.elem_type} has no Triton data type")
        dims = list(tt.shape.dim)
        if not dims or not dims[0].dim_param:
            raise ValueError(f"ONNX tensor {value.name}: the first dimension must be the dynamic batch")
        rest = [d.dim_value if d.HasField("dim_value") else -1 for d in dims[1:]]
        if any(d < 1 for d in rest):
            raise ValueError(
                f"ONNX tensor {value.name}: dimensions after the batch must be fixed, got {rest}"
            )
        return TensorSpec(value.name, ONNX_TO_TRITON[tt.elem_type], tuple(rest))

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    return inputs, tuple(spec(v) for v in model.graph.output)


def _tensorrt_reason() -> str | None:
    from pmr_stream.backends.registry import unavailable_reason

    return unavailable_reason("tensorrt", device="cuda")


def write_repository(source: ModelSource, output: str | os.PathLike[str],
                     options: RepositoryOptions | None = None) -> list[RepositoryModel]:  # fmt: skip
    """Export the graph and write a Triton model repository under ``output`` (see the module docstring)."""
    import onnx

    from pmr_stream.backends.artifacts.onnx_export import export_onnx

    o = options or RepositoryOptions()
    root = Path(output)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--output {root}: not a folder (a Triton model repository is a folder)")
    onnx_dir = root / o.model_name("onnxruntime") / VERSION
    art = export_onnx(source, onnx_dir / VARIANTS["onnxruntime"][1], o.precision, o.graph, o.opset)
    inputs, outputs = graph_tensors(onnx.load(str(art.path)))
    params = {"pmr_stream.model_sha256": source.model_sha256, "pmr_stream.dummy_sha256": source.dummy_sha256,
              "pmr_stream.privacy": source.privacy or "none", "pmr_stream.precision": o.precision,
              "pmr_stream.graph": o.graph}  # fmt: skip
    written: list[RepositoryModel] = []
    for variant in o.variants:
        platform, filename, _ = VARIANTS[variant]
        kind = "KIND_GPU" if variant == "tensorrt" or o.device == "gpu" else "KIND_CPU"
        config = TritonModelConfig(o.model_name(variant), platform, o.max_batch, inputs, outputs, kind, o.instances,
                                   o.max_queue_delay_us, params)  # fmt: skip
        folder = root / config.name
        (folder / VERSION).mkdir(parents=True, exist_ok=True)
        (folder / "config.pbtxt").write_text(config.to_pbtxt())
        built, note = True, ""
        if variant == "tensorrt":
            built, note = _build_plan(source, folder / VERSION / filename, o)
        written.append(RepositoryModel(variant, folder, config, built, note))
        log.info("wrote %s (%s%s)", folder, platform, "" if built else f"; {note}")
    if "onnxruntime" not in o.variants:  # the export was only the plan's source and the graph's reader
        for f in (art.path, Path(f"{art.path}.json")):
            f.unlink(missing_ok=True)
        onnx_dir.rmdir()
        onnx_dir.parent.rmdir()
    return written


def _build_plan(source: ModelSource, plan: Path, o: RepositoryOptions) -> tuple[bool, str]:
    reason = _tensorrt_reason()
    if reason is not None:
        return False, (f"plan not built ({reason}); build it on the Triton host with its TensorRT: "
                       f"pmr export --format tensorrt --max-batch {o.max_batch} --output {plan}")  # fmt: skip
    from pmr_stream.backends.artifacts.tensorrt_build import ensure_engine

    ensure_engine(source, precision=o.precision, max_batch=o.max_batch, graph=o.graph, engine_path=plan,
                  opset=o.opset)  # fmt: skip
    return True, ""


__all__ = ["DEFAULT_NAME", "RepositoryModel", "RepositoryOptions", "TensorSpec", "TritonModelConfig", "VARIANTS",
           "graph_tensors", "write_repository"]  # fmt: skip
