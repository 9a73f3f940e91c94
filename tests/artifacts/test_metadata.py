"""Engine metadata and the rebuild decision, without TensorRT."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pmr_stream.backends.artifacts.metadata import (
    BuildRequest,
    EngineMetadata,
    MetadataError,
    Platform,
    engine_name,
    metadata_path,
    onnx_name,
    rebuild_command,
    rebuild_reasons,
)

H100 = Platform(tensorrt_version="10.13.0.35", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0")
SHA = "5d0e77c4" + "0" * 56


def _meta(**over: object) -> EngineMetadata:
    base = EngineMetadata(tensorrt_version=H100.tensorrt_version, gpu_name=H100.gpu_name, compute_capability="9.0",
                          onnx_sha256=SHA, precision="fp16", min_batch=1, opt_batch=64, max_batch=256,
                          build_time_s=12.5, engine_sha256="e" * 64)  # fmt: skip
    return replace(base, **over)  # type: ignore[arg-type]


def _engine(tmp_path: Path, meta: EngineMetadata | None) -> Path:
    p = tmp_path / "x.engine"
    p.write_bytes(b"plan")
    if meta is not None:
        meta.save(p)
    return p


def test_names_carry_their_dependencies() -> None:
    assert (
        engine_name("pmr_standin", SHA, "fp16", 256, "10.13.0.35", "9.0")
        == "pmr_standin-5d0e77c4-fp16-b256-trt10.13-sm90.engine"
    )
    assert (
        engine_name("my model!", SHA, "fp32", 8, "11.4.0.106", "8.6")
        == "my_model-5d0e77c4-fp32-b8-trt11.4-sm86.engine"
    )
    assert (
        onnx_name("pmr_standin", "3f9c2a1b" + "f" * 56, "folded", "fp32", 17)
        == "pmr_standin-3f9c2a1b-folded-fp32-op17.onnx"
    )
    assert metadata_path("a/b.engine") == Path("a/b.engine.json")


def test_round_trip(tmp_path: Path) -> None:
    meta = _meta(source={"graph": "folded"})
    path = _engine(tmp_path, meta)
    assert EngineMetadata.load(path) == meta
    data = json.loads(metadata_path(path).read_text())
    for key in ("tensorrt_version", "gpu_name", "compute_capability", "onnx_sha256", "precision", "min_batch",
                "opt_batch", "max_batch", "build_time_s"):  # fmt: skip
        assert key in data


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON"),
        ('{"format": "other"}', "not pmr-stream engine metadata"),
        ('{"format": "pmr-stream-engine", "version": 99}', "version 99 is not supported"),
        ('{"format": "pmr-stream-engine", "version": 1}', "lacks 'tensorrt_version'"),
    ],
)
def test_bad_metadata_is_named(text: str, message: str) -> None:
    with pytest.raises(MetadataError, match=f"meta.json: .*{message}"):
        EngineMetadata.from_json(text, "meta.json")


@pytest.mark.parametrize(
    ("field", "value"), [("max_batch", 0), ("opt_batch", True), ("precision", ""), ("gpu_name", 3)]
)
def test_bad_field_values_are_refused(field: str, value: object) -> None:
    data = json.loads(_meta().to_json())
    data[field] = value
    with pytest.raises(MetadataError, match=field):
        EngineMetadata.from_json(json.dumps(data), "m.json")


def test_a_matching_engine_is_reused(tmp_path: Path) -> None:
    path = _engine(tmp_path, _meta())
    assert rebuild_reasons(path, H100, BuildRequest(SHA, "fp16", 256)) == []
    assert (
        rebuild_reasons(path, H100, BuildRequest(SHA, "fp16", 64)) == []
    )  # a bigger profile serves a smaller batch


@pytest.mark.parametrize(
    ("platform", "want", "meta", "reason"),
    [
        (replace(H100, tensorrt_version="11.4.0.106"), None, None, "built with TensorRT 10.13.0.35, this is TensorRT 11.4.0.106"),
        (Platform("10.13.0.35", "NVIDIA A10", "8.6"), None, None, "built for compute capability 9.0"),
        (replace(H100, gpu_name="NVIDIA H100 PCIe"), None, None, "built on NVIDIA H100 80GB HBM3, this GPU is NVIDIA H100 PCIe"),
        (H100, BuildRequest("1" * 64, "fp16", 256), None, "built from ONNX 5d0e77c4, the current export is 11111111"),
        (H100, BuildRequest(SHA, "fp32", 256), None, "built for fp16, fp32 wanted"),
        (H100, BuildRequest(SHA, "fp16", 1024), None, "covers batch 1..256, batch up to 1024 wanted"),
    ],
)  # fmt: skip
def test_each_mismatch_is_a_reason(tmp_path: Path, platform: Platform, want: BuildRequest | None,
                                   meta: EngineMetadata | None, reason: str) -> None:  # fmt: skip
    path = _engine(tmp_path, meta or _meta())
    reasons = rebuild_reasons(path, platform, want or BuildRequest(SHA, "fp16", 256))
    assert len(reasons) == 1 and reason in reasons[0]


def test_missing_engine_or_metadata_or_changed_file(tmp_path: Path) -> None:
    want = BuildRequest(SHA, "fp16", 256)
    assert rebuild_reasons(tmp_path / "none.engine", H100, want) == [
        f"no engine at {tmp_path / 'none.engine'}"
    ]
    bare = _engine(tmp_path, None)
    assert "no metadata beside the engine" in rebuild_reasons(bare, H100, want)[0]
    path = _engine(tmp_path, _meta())
    assert "engine file changed" in rebuild_reasons(path, H100, want, engine_sha256="f" * 64)[0]


def test_rebuild_command() -> None:
    cmd = rebuild_command("e/x.engine", "fp16", 256, "m.pt", "d.npz")
    assert (
        cmd
        == "pmr export --format tensorrt --output e/x.engine --precision fp16 --max-batch 256 --model-path m.pt --dummy d.npz"
    )
