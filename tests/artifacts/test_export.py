"""ONNX export: the file TensorRT and ONNX Runtime consume, checked before it is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pmr_stream.backends import ModelSource
from pmr_stream.backends.artifacts import onnx_export as export_mod
from pmr_stream.backends.artifacts.onnx_export import (
    ExportError,
    default_onnx_path,
    ensure_onnx,
    export_onnx,
    fold_constants,
    relative_error,
)

#: ONNX ops the TensorRT ONNX parser supports (TensorRT's operators.md, 10.x and 11.x) that our graphs may use.
TENSORRT_OPS = {
    "Add", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Equal", "Expand", "Gather",
    "Gemm", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Pad", "ReduceMax", "ReduceMean", "ReduceSum", "Reshape",
    "Resize", "Shape", "Slice", "Transpose", "Unsqueeze", "Where",
}  # fmt: skip


@pytest.fixture(
    scope="module",
    params=[("folded", "fp32"), ("folded", "fp16"), ("reference", "fp32")],
    ids=lambda p: "-".join(p),
)
def exported(
    request: pytest.FixtureRequest, source: ModelSource, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    graph, precision = request.param
    return export_onnx(
        source, tmp_path_factory.mktemp("onnx") / f"{graph}-{precision}.onnx", precision, graph
    )


def test_the_file_passes_the_checker_and_has_a_dynamic_batch(exported: Any) -> None:
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("windows", "anonymized")
    for v in (inp, out):
        dims = v.type.tensor_type.shape.dim
        assert v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp16 graphs keep float32 I/O
        assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [75, 25, 3]


def test_what_tensorrt_consumes(exported: Any) -> None:
    """Only ops TensorRT's ONNX parser has; int64 constants fit int32 (TensorRT narrows them)."""
    model = onnx.load(str(exported.path))
    ops = {n.op_type for n in model.graph.node}
    assert ops <= TENSORRT_OPS, ops - TENSORRT_OPS
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.INT64:
            arr = onnx.numpy_helper.to_array(init)
            assert arr.size == 0 or np.abs(arr).max() < 2**31, init.name
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert pads and all(len(n.input) >= 2 and n.input[1] in {i.name for i in model.graph.initializer} for n in pads), \
        "pad amounts must be constants after folding"  # fmt: skip
    if exported.graph == "folded":
        assert not ops & {"Shape", "ConstantOfShape", "Slice", "Conv", "ConvTranspose", "Resize"}


def test_the_file_runs_in_onnxruntime_at_any_batch(
    exported: Any, random_windows: np.ndarray, reference: Any
) -> None:
    sess = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    tol = 1e-5 if exported.precision == "fp32" else 1e-2
    for b in (1, 5):
        out = sess.run(None, {"windows": random_windows[:b]})[0]
        assert out.dtype == np.float32 and out.shape == (b, 75, 25, 3)
        assert relative_error(out, reference(random_windows[:b])) < tol


def test_metadata_beside_the_file(exported: Any, source: ModelSource) -> None:
    meta = json.loads(Path(str(exported.path) + ".json").read_text())
    assert meta["onnx_sha256"] == exported.sha256 and meta["precision"] == exported.precision
    assert meta["model_sha256"] == source.model_sha256 and meta["dummy_sha256"] == source.dummy_sha256
    assert meta["relative_error_vs_torch"] < (1e-5 if exported.precision == "fp32" else 1e-2)
    props = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    assert (
        props["pmr_stream.model_sha256"] == source.model_sha256
        and props["pmr_stream.graph"] == exported.graph
    )


def test_a_folder_output_is_named_by_dependencies(source: ModelSource, tmp_path: Path) -> None:
    art = export_onnx(source, tmp_path, "fp32", "folded")
    assert art.path.parent == tmp_path
    assert art.path.name.startswith("pmr_test-") and art.path.name.endswith("-folded-fp32-op17.onnx")
    assert art.path == default_onnx_path(source, "fp32", "folded", 17, tmp_path)


def test_ensure_onnx_reuses_and_repairs(source: ModelSource, tmp_path: Path) -> None:
    first = ensure_onnx(source, "fp32", "folded", directory=tmp_path)
    mtime = first.path.stat().st_mtime_ns
    again = ensure_onnx(source, "fp32", "folded", directory=tmp_path)
    assert (
        again.path == first.path and again.path.stat().st_mtime_ns == mtime and again.sha256 == first.sha256
    )
    first.path.write_bytes(first.path.read_bytes()[:-10])  # damaged: digest no longer matches
    repaired = ensure_onnx(source, "fp32", "folded", directory=tmp_path)
    assert repaired.sha256 == first.sha256


def test_nothing_is_written_when_parity_fails(
    source: ModelSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_mod, "reference_outputs", lambda s, w: np.zeros_like(w) + 1.0)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(source, tmp_path / "bad.onnx")
    assert not list(tmp_path.iterdir())


def test_old_opsets_are_refused(source: ModelSource, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset must be 17 or newer"):
        export_onnx(source, tmp_path / "x.onnx", opset=16)


def test_fold_constants_on_a_small_graph() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node(
            "Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
        ),
        helper.make_node("Mul", ["c", "c"], ["c2"]),  # constant: folded
        helper.make_node("Add", ["x", "c2"], ["y"]),  # depends on the input: kept
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    folded = fold_constants(model, 17)
    assert [n.op_type for n in folded.graph.node] == ["Add"]
    (init,) = folded.graph.initializer
    assert init.name == "c2" and onnx.numpy_helper.to_array(init).tolist() == [1.0, 4.0, 9.0]
    onnx.checker.check_model(folded)
