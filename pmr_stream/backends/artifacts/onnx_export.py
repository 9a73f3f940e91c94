"""Export the streaming graph to ONNX, checked before it is written.

    pmr export --format onnx --output engines/build/ --precision fp32

What is exported is ``D(E_M(windows), z_dummy)``: input ``windows``
``(B, 75, 25, 3)`` float32, output ``anonymized`` ``(B, 75, 25, 3)`` float32,
batch dynamic; a model with a privacy dial is exported at one level (the source's,
``--privacy``; it is in the file's metadata and name key). The dummy's privacy code is a constant of the graph, not a
second input: a deployment anonymizes onto one dummy chosen at start-up, a
constant lets ONNX Runtime and TensorRT fold it into the first decoder layer
(the ``folded`` graph does that fold exactly, halving the work), and a caller
cannot pass a code that belongs to no dummy. Changing dummy means exporting
again (about a second), and the file name says which dummy it holds.

``fp16`` exports the same graph with half-precision weights and arithmetic and
keeps float32 input and output (a Cast at each end), so every backend feeds it
the same arrays; TensorRT builds it as a strongly typed network (the only kind
TensorRT 11 has).

Before the file is written: ``onnx.checker`` (full check), and one run through
ONNX Runtime compared with the PyTorch fp32 reference
(:class:`pmr_stream.model.pmr.AnonymizerGraph`): relative error under 1e-5
(fp32) or 1e-2 (fp16), else :class:`ExportError` and no file.

A cached export is reused when its ``.json`` digest matches, but that only
catches accidents: a file replaced together with its digest is caught when a
backend loads it, by the start-up probe against the PyTorch reference
(:meth:`pmr_stream.backends.base.Backend.verify`), which exports it again.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from pmr_stream.backends.artifacts.metadata import metadata_path, onnx_name
from pmr_stream.backends.base import ModelSource, cache_dir, relative_error, sha256_bytes, sha256_file
from pmr_stream.backends.base import reference_outputs as _reference_outputs
from pmr_stream.backends.graph import build_graph
from pmr_stream.skeleton import C, J, T

log = logging.getLogger(__name__)

INPUT: Final[str] = "windows"
OUTPUT: Final[str] = "anonymized"
DEFAULT_OPSET: Final[int] = 17
#: Largest relative error (max |out - ref| / max |ref|) against the PyTorch fp32 reference.
TOLERANCE: Final[dict[str, float]] = {"fp32": 1e-5, "fp16": 1e-2}
#: Ops never folded even when their inputs are constant.
_NEVER_FOLD: Final[frozenset[str]] = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}
)


class ExportError(RuntimeError):
    """The exported graph failed its checks; nothing was written."""


class _HalfGraph(nn.Module):
    """A graph in fp16 with float32 input and output."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph.half()

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.graph(windows.half()).float()


def export_module(source: ModelSource, precision: str = "fp32", graph: str = "folded") -> nn.Module:
    """The module that is exported: the streaming graph of ``graph`` kind, in ``precision``, on CPU."""
    model = copy.deepcopy(source.model).float().cpu()
    module = build_graph(model, source.code.float().cpu(), graph, source.privacy)
    return _HalfGraph(copy.deepcopy(module)).eval() if precision == "fp16" else module


def reference_outputs(source: ModelSource, windows: np.ndarray) -> np.ndarray:
    """The PyTorch fp32 reference: :class:`~pmr_stream.model.pmr.AnonymizerGraph` at the source's privacy
    level in eager mode on CPU."""
    return _reference_outputs(copy.deepcopy(source.model).float().cpu(), source.code, windows, source.privacy)


def fold_constants(model: Any, opset: int) -> Any:
    """Evaluate every node whose inputs are all constants and store its result as an initializer.

    The TorchScript exporter leaves, e.g., the pad amounts of ReflectionPad as a
    dozen Shape/Slice/Concat nodes; after this pass a Pad reads one constant.
    Uses ONNX's own reference evaluator, so what is folded means what ONNX says.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    const: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    keep = []
    for node in g.node:
        inputs = [n for n in node.input if n]
        foldable = node.op_type not in _NEVER_FOLD and not node.domain and all(n in const for n in inputs)
        if foldable and (inputs or node.op_type == "Constant"):
            try:
                results = ReferenceEvaluator(node, opsets={"": opset}).run(
                    None, {n: const[n] for n in inputs}
                )
            except Exception:  # noqa: BLE001 - an op the evaluator lacks simply stays in the graph
                keep.append(node)
                continue
            for name, value in zip(node.output, results, strict=True):
                const[name] = np.asarray(value)
        else:
            keep.append(node)
    used = {n for node in keep for n in node.input if n} | {o.name for o in g.output}
    produced = {o for node in keep for o in node.output}
    initializers = [
        numpy_helper.from_array(const[n], n) for n in sorted(used) if n in const and n not in produced
    ]
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(initializers)
    kept_info = [v for v in g.value_info if v.name in produced]
    del g.value_info[:]
    g.value_info.extend(kept_info)
    return model


def to_onnx(
    source: ModelSource, precision: str = "fp32", graph: str = "folded", opset: int = DEFAULT_OPSET
) -> Any:
    """The streaming graph as an ``onnx.ModelProto`` (not yet checked), batch dimension dynamic."""
    if importlib.util.find_spec("onnx") is None:
        raise ExportError("exporting to ONNX needs the onnx package (pip install onnx==1.17.0)")
    import onnx

    if opset < 17:
        raise ValueError(f"opset must be 17 or newer, got {opset}")
    module = export_module(source, precision, graph)
    buf = io.BytesIO()
    example = torch.zeros(1, T, J, C)
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter (dynamo=False, chosen for onnx==1.17) announces its own deprecation
        # and that it cannot fold the reflection pads; fold_constants() does that below
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            module, (example,), buf,  # type: ignore[arg-type]  # a file object is accepted
            dynamo=False, opset_version=opset, input_names=[INPUT], output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, do_constant_folding=True,
        )  # fmt: skip
    model = fold_constants(onnx.load_from_string(buf.getvalue()), opset)
    for value in (*model.graph.input, *model.graph.output):  # (batch, 75, 25, 3), stated exactly
        dims = value.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            d.Clear()
            if i == 0:
                d.dim_param = "batch"
            else:
                d.dim_value = (T, J, C)[i - 1]
    model.producer_name = "pmr-stream"
    level = source.privacy or "none"
    model.doc_string = (f"PMR streaming graph D(E_M(windows), z_dummy), {graph} form, {precision}, privacy {level}; "
                        "input windows (B, 75, 25, 3) float32 normalised, output (B, 75, 25, 3) float32")  # fmt: skip
    info = {"graph": graph, "precision": precision, "opset": str(opset), "model_sha256": source.model_sha256,
            "dummy_sha256": source.dummy_sha256, "model_id": source.model_id, "privacy": level,
            "torch": torch.__version__}  # fmt: skip
    for k, v in info.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = f"pmr_stream.{k}", v
    return model


def check_onnx(model: Any, source: ModelSource, precision: str, batch: int = 3, seed: int = 0) -> float:
    """``onnx.checker`` and one ONNX Runtime run against the PyTorch fp32 reference; returns the relative error."""
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker refused the exported graph: {exc}") from exc
    rng = np.random.default_rng(seed)
    windows = (rng.standard_normal((batch, T, J, C)) * 0.3).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out = session.run(None, {INPUT: windows})[0]
    if out.shape != windows.shape or out.dtype != np.float32:
        raise ExportError(f"ONNX Runtime returned {out.dtype} {out.shape}, expected float32 {windows.shape}")
    err = relative_error(out, reference_outputs(source, windows))
    if not err < TOLERANCE[precision]:
        raise ExportError(f"ONNX Runtime output differs from PyTorch by {err:.3g} (relative), "
                          f"more than the {precision} tolerance {TOLERANCE[precision]:g}")  # fmt: skip
    return err


@dataclass(frozen=True)
class OnnxArtifact:
    """An exported, checked ONNX file and what it was made from."""

    path: Path
    sha256: str
    precision: str
    graph: str
    opset: int
    relative_error: float


def _code_digest() -> str:
    """Digest of the code that decides what an export contains: the network, the graph forms, this exporter."""
    import pmr_stream.backends.graph as graph_mod
    import pmr_stream.model.pmr as model_mod
    import pmr_stream.model.privacy_dial as dial_mod
    import pmr_stream.model.retarget as retarget_mod

    files = [str(m.__file__) for m in (model_mod, retarget_mod, dial_mod, graph_mod)] + [__file__]
    return sha256_bytes(b"".join(Path(f).read_bytes() for f in files))


def _source_key(source: ModelSource, precision: str, graph: str, opset: int) -> str:
    """Digest of everything an export depends on (for the file name): weights, dummy, privacy level, form,
    code, exporter."""
    exporter = torch.__version__.split("+")[0]  # the exporter's version, not the build (cpu/cu12x) of torch
    parts = [source.model_sha256, source.dummy_sha256, precision, graph, opset, exporter, _code_digest()]
    if source.privacy is not None:  # a model without a dial keeps the key (and cached files) it had
        parts.append(f"privacy={source.privacy}")
    return sha256_bytes(json.dumps(parts).encode())


def default_onnx_path(source: ModelSource, precision: str, graph: str, opset: int = DEFAULT_OPSET,
                      directory: str | os.PathLike[str] | None = None) -> Path:  # fmt: skip
    """Where :func:`ensure_onnx` keeps this export: the artifact cache, named by its dependencies."""
    name = onnx_name(source.stem, _source_key(source, precision, graph, opset), graph, precision, opset)
    return cache_dir(directory) / name


def export_onnx(source: ModelSource, output: str | os.PathLike[str], precision: str = "fp32", graph: str = "folded",
                opset: int = DEFAULT_OPSET) -> OnnxArtifact:  # fmt: skip
    """Export, check, then write ``output`` (a file, or a directory to name the file in) and its ``.json``."""
    if precision not in TOLERANCE:
        raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
    t0 = time.perf_counter()
    model = to_onnx(source, precision, graph, opset)
    err = check_onnx(model, source, precision)
    out = Path(output)
    if out.is_dir() or str(output).endswith(os.sep):
        out = default_onnx_path(source, precision, graph, opset, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    art = OnnxArtifact(
        path=out, sha256=sha256_bytes(data), precision=precision, graph=graph, opset=opset, relative_error=err
    )
    meta = {"format": "pmr-stream-onnx", "version": 1, "onnx_sha256": art.sha256, "precision": precision, "graph": graph,
            "opset": opset, "input": INPUT, "output": OUTPUT, "batch": "dynamic", "relative_error_vs_torch": err,
            "model": source.model_path, "model_sha256": source.model_sha256, "dummy_sha256": source.dummy_sha256,
            "model_id": source.model_id, "privacy": source.privacy, "torch": torch.__version__, "export_time_s": round(time.perf_counter() - t0, 3)}  # fmt: skip
    metadata_path(out).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info("wrote %s (%s, %s graph, relative error %.2g vs PyTorch)", out, precision, graph, err)
    return art


def ensure_onnx(source: ModelSource, precision: str = "fp32", graph: str = "folded", opset: int = DEFAULT_OPSET,
                directory: str | os.PathLike[str] | None = None) -> OnnxArtifact:  # fmt: skip
    """The cached export for this model, dummy, precision, graph and opset; exported when absent or damaged."""
    path = default_onnx_path(source, precision, graph, opset, directory)
    meta_file = metadata_path(path)
    if path.is_file() and meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
            digest = sha256_file(path)
            if meta.get("onnx_sha256") == digest:
                return OnnxArtifact(
                    path, digest, precision, graph, opset, float(meta.get("relative_error_vs_torch", 0.0))
                )
            log.warning("%s does not match its metadata; exporting again", path)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable metadata (%s); exporting again", meta_file, exc)
    return export_onnx(source, path, precision, graph, opset)
