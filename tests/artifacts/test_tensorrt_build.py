"""TensorRT builds: the rebuild flow checked with TensorRT stood in for, the real build on GPU hosts."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pmr_stream.backends.artifacts.tensorrt_build as tb
from pmr_stream.backends import BackendUnavailable, ModelSource
from pmr_stream.backends.artifacts.metadata import EngineMetadata, Platform
from pmr_stream.backends.base import sha256_bytes, sha256_file

H100 = Platform("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0")


class FakeBuilds:
    """Stands in for TensorRT: records builds and writes an 'engine' with honest metadata."""

    def __init__(self) -> None:
        self.platform = H100
        self.builds: list[dict[str, Any]] = []

    def build(self, onnx_path: Any, engine_path: Any, precision: str, max_batch: int, opt_batch: Any = None,
              timing_cache: Any = None, workspace: int = 0, source: Any = None, device: Any = None) -> EngineMetadata:  # fmt: skip
        data = f"plan {len(self.builds)}".encode()
        Path(engine_path).write_bytes(data)
        meta = EngineMetadata(tensorrt_version=self.platform.tensorrt_version, gpu_name=self.platform.gpu_name,
                              compute_capability=self.platform.compute_capability, onnx_sha256=sha256_file(onnx_path),
                              precision=precision, min_batch=1, opt_batch=opt_batch or 64, max_batch=max_batch,
                              build_time_s=0.1, engine_sha256=sha256_bytes(data), source=source or {})  # fmt: skip
        meta.save(engine_path)
        self.builds.append(
            {"onnx": str(onnx_path), "engine": str(engine_path), "timing_cache": str(timing_cache)}
        )
        return meta


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBuilds:
    f = FakeBuilds()
    monkeypatch.setattr(tb, "current_platform", lambda device=None: f.platform)
    monkeypatch.setattr(tb, "build_engine", f.build)
    return f


def test_build_once_then_reuse(fake: FakeBuilds, source: ModelSource, cache: str, tmp_path: Path) -> None:
    first = tb.ensure_engine(source, "fp16", 256, engine_path=tmp_path, directory=cache)
    assert first.rebuilt and len(fake.builds) == 1
    assert first.path.name.endswith("-fp16-b256-trt10.13-sm90.engine") and first.path.name.startswith(
        "pmr_test-"
    )
    assert fake.builds[0]["timing_cache"].endswith("timing-trt10.13-sm90.cache")  # one cache shared by builds
    again = tb.ensure_engine(source, "fp16", 256, engine_path=tmp_path, directory=cache)
    assert not again.rebuilt and again.path == first.path and len(fake.builds) == 1
    assert again.metadata.source["dummy_sha256"] == source.dummy_sha256


def test_a_new_tensorrt_rebuilds_and_says_why(fake: FakeBuilds, source: ModelSource, tmp_path: Path, cache: str,
                                              caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    engine = tmp_path / "fixed.engine"
    tb.ensure_engine(source, "fp32", 64, engine_path=engine, directory=cache)
    fake.platform = Platform("11.4.0.106", H100.gpu_name, "9.0")
    with caplog.at_level(logging.WARNING, logger="pmr_stream.backends.artifacts.tensorrt_build"):
        art = tb.ensure_engine(source, "fp32", 64, engine_path=engine, directory=cache)
    assert art.rebuilt and art.metadata.tensorrt_version == "11.4.0.106" and len(fake.builds) == 2
    assert (
        "rebuilding" in caplog.text
        and "built with TensorRT 10.13.0.35, this is TensorRT 11.4.0.106" in caplog.text
    )


def test_rebuild_never_refuses_with_the_command(
    fake: FakeBuilds, source: ModelSource, tmp_path: Path, cache: str
) -> None:
    engine = tmp_path / "e.engine"
    tb.ensure_engine(source, "fp16", 64, engine_path=engine, directory=cache)
    fake.platform = Platform(H100.tensorrt_version, "NVIDIA A10", "8.6")
    with pytest.raises(
        tb.EngineMismatch, match=r"compute capability 9\.0.*pmr export --format tensorrt --output"
    ):
        tb.ensure_engine(source, "fp16", 64, engine_path=engine, rebuild="never", directory=cache)
    assert len(fake.builds) == 1


def test_rebuild_always_and_a_tampered_engine(
    fake: FakeBuilds, source: ModelSource, tmp_path: Path, cache: str
) -> None:
    engine = tmp_path / "e.engine"
    tb.ensure_engine(source, "fp16", 64, engine_path=engine, directory=cache)
    tb.ensure_engine(source, "fp16", 64, engine_path=engine, rebuild="always", directory=cache)
    assert len(fake.builds) == 2
    engine.write_bytes(b"something else")
    assert tb.ensure_engine(source, "fp16", 64, engine_path=engine, directory=cache).rebuilt


def test_a_bigger_batch_or_other_precision_builds_another_engine(fake: FakeBuilds, source: ModelSource, tmp_path: Path,
                                                                 cache: str) -> None:  # fmt: skip
    a = tb.ensure_engine(source, "fp16", 64, engine_path=tmp_path, directory=cache)
    b = tb.ensure_engine(source, "fp16", 1024, engine_path=tmp_path, directory=cache)
    c = tb.ensure_engine(source, "fp32", 64, engine_path=tmp_path, directory=cache)
    assert len({a.path, b.path, c.path}) == 3 and len(fake.builds) == 3


def test_building_from_a_given_onnx(fake: FakeBuilds, source: ModelSource, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        tb.ensure_engine(source, onnx_path=tmp_path / "missing.onnx", directory=tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_without_tensorrt_the_error_says_how_to_install() -> None:
    with pytest.raises(BackendUnavailable, match="pip install --extra-index-url https://pypi.nvidia.com"):
        tb.import_tensorrt()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_build_and_run(precision: str, source: ModelSource, tmp_path: Path, random_windows: np.ndarray,
                            reference: Any) -> None:  # fmt: skip
    from tests.backends.conftest import skip_unless_available

    skip_unless_available("tensorrt", device="cuda", precision=precision)
    from pmr_stream.backends import get_backend
    from pmr_stream.backends.artifacts.onnx_export import relative_error

    art = tb.ensure_engine(source, precision, 16, directory=tmp_path)
    meta = art.metadata
    assert art.rebuilt and meta.max_batch == 16 and meta.precision == precision and meta.build_time_s > 0
    assert Path(meta.timing_cache).is_file()  # saved for the next build
    again = tb.ensure_engine(source, precision, 16, directory=tmp_path)
    assert not again.rebuilt
    with get_backend(
        "tensorrt", source=source, device="cuda", precision=precision, max_batch=16, cache_dir=str(tmp_path)
    ) as b:
        out = b.anonymize(random_windows)
    assert relative_error(out, reference(random_windows)) < (1e-5 if precision == "fp32" else 1e-2)
