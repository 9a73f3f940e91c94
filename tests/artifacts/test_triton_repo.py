"""``pmr export --format triton``: the repository's layout, and configs that Triton's own schema parses and
that match the exported graph."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest

from pmr_stream.backends import ModelSource
from pmr_stream.backends.artifacts.triton_repo import (
    RepositoryOptions,
    TensorSpec,
    TritonModelConfig,
    graph_tensors,
    write_repository,
)
from pmr_stream.cli import main


def parse_config(text: str) -> object:
    """``config.pbtxt`` through Triton's ``ModelConfig`` message (tritonclient's generated protobuf)."""
    pb = pytest.importorskip(
        "tritonclient.grpc.model_config_pb2", reason="tritonclient (the triton extra) is absent"
    )
    from google.protobuf import text_format

    return text_format.Parse(text, pb.ModelConfig())  # strict: an unknown field or bad value raises


def test_export_triton_writes_a_repository_matching_the_graph(
    model_files: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, dummy = model_files
    repo = tmp_path / "repo"
    assert main(["export", "--format", "triton", "--output", str(repo), "--model-path", model, "--dummy", dummy,
                 "--max-batch", "64", "--instances", "2", "--max-queue-delay-us", "250"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    onnx_file = repo / "pmr_stream_onnx" / "1" / "model.onnx"
    assert onnx_file.is_file() and (repo / "pmr_stream_trt" / "config.pbtxt").is_file()
    graph = onnx.load(str(onnx_file))
    (inp,), (outp,) = graph.graph.input, graph.graph.output
    for name, platform in (("pmr_stream_onnx", "onnxruntime_onnx"), ("pmr_stream_trt", "tensorrt_plan")):
        cfg = parse_config((repo / name / "config.pbtxt").read_text())
        assert cfg.name == name and cfg.platform == platform and cfg.max_batch_size == 64  # type: ignore[attr-defined]
        (i,), (o,) = cfg.input, cfg.output  # type: ignore[attr-defined]
        assert (i.name, o.name) == (inp.name, outp.name) == ("windows", "anonymized")
        assert list(i.dims) == [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [75, 25, 3]
        assert list(o.dims) == [75, 25, 3] and i.data_type == o.data_type == 11  # TYPE_FP32
        assert cfg.dynamic_batching.max_queue_delay_microseconds == 250  # type: ignore[attr-defined]
        (group,) = cfg.instance_group  # type: ignore[attr-defined]
        assert group.count == 2 and group.kind == (
            1 if platform == "tensorrt_plan" else 2
        )  # KIND_GPU / KIND_CPU
        assert cfg.parameters["pmr_stream.model_sha256"].string_value  # type: ignore[attr-defined]
    if importlib.util.find_spec("tensorrt") is None:
        assert not (repo / "pmr_stream_trt" / "1" / "model.plan").exists()
        assert "plan not built" in out and "pmr export --format tensorrt" in out


def test_onnxruntime_only_and_fp16_keeps_float32_io(source: ModelSource, tmp_path: Path) -> None:
    (m,) = write_repository(source, tmp_path, RepositoryOptions(variants=("onnxruntime",), precision="fp16"))
    assert m.built and sorted(p.name for p in tmp_path.iterdir()) == ["pmr_stream_onnx"]
    assert m.config.inputs == (TensorSpec("windows", "TYPE_FP32", (75, 25, 3)),)
    parse_config(m.config.to_pbtxt())


def test_only_tensorrt_leaves_no_onnx_model_behind(source: ModelSource, tmp_path: Path) -> None:
    (m,) = write_repository(source, tmp_path, RepositoryOptions(variants=("tensorrt",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pmr_stream_trt"]
    if importlib.util.find_spec("tensorrt") is None:
        assert (
            not m.built
            and m.note.startswith("plan not built (")
            and not (m.path / "1" / "model.plan").exists()
        )
    parse_config((tmp_path / "pmr_stream_trt" / "config.pbtxt").read_text())


def test_graph_tensors_refuse_a_fixed_batch(source: ModelSource) -> None:
    from pmr_stream.backends.artifacts.onnx_export import to_onnx

    model = to_onnx(source)
    assert graph_tensors(model)[1] == (TensorSpec("anonymized", "TYPE_FP32", (75, 25, 3)),)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = 4
    with pytest.raises(ValueError, match="windows: the first dimension must be the dynamic batch"):
        graph_tensors(model)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variants": ("openvino",)}, "triton variants must be among"),
        ({"max_batch": 0}, "max_batch must be a positive integer"),
        ({"name": "a b"}, "triton model name"),
        ({"device": "tpu"}, "triton device must be cpu or gpu"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RepositoryOptions(**options)  # type: ignore[arg-type]


def test_config_text_round_trips(tmp_path: Path) -> None:
    spec = (TensorSpec("x", "TYPE_FP32", (3,)),)
    cfg = TritonModelConfig("m", "onnxruntime_onnx", 8, spec, spec, parameters={"k": "v"})
    parsed = parse_config(cfg.to_pbtxt())
    assert parsed.parameters["k"].string_value == "v" and parsed.version_policy.latest.num_versions == 1  # type: ignore[attr-defined]
