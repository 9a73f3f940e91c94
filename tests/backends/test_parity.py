"""Every backend against the PyTorch fp32 reference, and the one interface they share.

Relative error ``max |out - ref| / max |ref|`` under 1e-5 for fp32 and 1e-2 for
fp16, on fresh random windows and on recorded motion. Cases that need CUDA or
TensorRT are marked and skip, saying why, where those are missing; on a GPU
host they run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from pmr_stream.backends import ModelSource, get_backend
from pmr_stream.backends.artifacts.onnx_export import relative_error
from tests.backends.conftest import skip_unless_available

TOL = {"fp32": 1e-5, "fp16": 1e-2}

gpu = [pytest.mark.gpu]
trt = [pytest.mark.gpu, pytest.mark.tensorrt]
CASES = [
    pytest.param("torch", "cpu", "fp32", "folded", {}, id="torch-cpu-folded"),
    pytest.param("torch", "cpu", "fp32", "reference", {}, id="torch-cpu-reference"),
    pytest.param("onnxruntime", "cpu", "fp32", "folded", {}, id="ort-cpu-folded"),
    pytest.param("onnxruntime", "cpu", "fp32", "reference", {}, id="ort-cpu-reference"),
    pytest.param("torch", "cuda", "fp32", "folded", {}, id="torch-cuda-graphs-fp32", marks=gpu),
    pytest.param(
        "torch", "cuda", "fp32", "folded", {"cuda_graphs": False}, id="torch-cuda-eager-fp32", marks=gpu
    ),
    pytest.param("torch", "cuda", "fp16", "folded", {}, id="torch-cuda-graphs-fp16", marks=gpu),
    pytest.param("torch", "cuda", "fp32", "reference", {}, id="torch-cuda-reference", marks=gpu),
    pytest.param("onnxruntime", "cuda", "fp32", "folded", {}, id="ort-cuda-fp32", marks=gpu),
    pytest.param("onnxruntime", "cuda", "fp16", "folded", {}, id="ort-cuda-fp16", marks=gpu),
    pytest.param("tensorrt", "cuda", "fp32", "folded", {}, id="trt-fp32", marks=trt),
    pytest.param("tensorrt", "cuda", "fp16", "folded", {}, id="trt-fp16", marks=trt),
    pytest.param("tensorrt", "cuda", "fp32", "reference", {}, id="trt-fp32-reference", marks=trt),
    pytest.param(
        "tensorrt", "cuda", "fp16", "folded", {"cuda_graphs": False}, id="trt-fp16-no-graphs", marks=trt
    ),
]


@pytest.mark.parametrize(("name", "device", "precision", "graph", "extra"), CASES)
def test_parity_with_the_pytorch_reference(name: str, device: str, precision: str, graph: str, extra: dict[str, Any],
                                           source: ModelSource, cache: str, random_windows: np.ndarray,
                                           real_windows: np.ndarray, reference: Any) -> None:  # fmt: skip
    skip_unless_available(name, device=device, precision=precision)
    with get_backend(name, source=source, device=device, precision=precision, graph=graph, cache_dir=cache,
                     max_batch=8, **extra) as backend:  # fmt: skip
        backend.warmup((1, 8))
        for x in (random_windows, real_windows, random_windows[:1]):
            out = backend.anonymize(x)
            assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == x.shape
            assert relative_error(out, reference(x)) < TOL[precision], f"{backend} on {len(x)} windows"
        if device == "cuda":  # CUDA tensors in, CUDA tensors out
            xt = torch.from_numpy(real_windows).cuda()
            yt = backend.anonymize(xt)
            assert isinstance(yt, torch.Tensor) and yt.device == xt.device and yt.dtype == torch.float32
            assert relative_error(yt.cpu().numpy(), reference(real_windows)) < TOL[precision]


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_the_interface(name: str, source: ModelSource, cache: str, random_windows: np.ndarray) -> None:
    backend = get_backend(name, source=source, cache_dir=cache, max_batch=3)
    assert backend.name == name and backend.device == "cpu" and backend.max_batch == 3
    assert backend.precision == "fp32" and backend.graph == "folded"
    backend.warmup((1, 3))
    whole = backend.anonymize(random_windows)  # 7 windows in batches of 3, 3, 1
    parts = np.concatenate([backend.anonymize(random_windows[i : i + 1]) for i in range(len(random_windows))])
    np.testing.assert_allclose(whole, parts, rtol=0, atol=1e-5 * np.abs(whole).max())
    assert np.array_equal(backend.anonymize(random_windows), whole)  # deterministic
    assert backend.anonymize(random_windows[:0]).shape == (0, 75, 25, 3)
    t = backend.anonymize(torch.from_numpy(random_windows))  # a tensor in gives a tensor out
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), whole, atol=1e-5 * np.abs(whole).max())
    d = backend.describe()
    assert d["backend"] == name and d["model_sha256"] == source.model_sha256[:12]


@pytest.mark.parametrize(
    "shape", [(75, 25, 3), (2, 75, 25, 2), (2, 74, 25, 3), (2, 75, 24, 3), (1, 1, 75, 25, 3)], ids=str
)
@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_wrong_window_shapes_are_refused(
    name: str, shape: tuple[int, ...], source: ModelSource, cache: str
) -> None:
    backend = get_backend(name, source=source, cache_dir=cache)
    with pytest.raises(ValueError, match=r"windows must have shape \(B, 75, 25, 3\)"):
        backend.anonymize(np.zeros(shape, np.float32))


def test_float64_and_non_contiguous_input_is_accepted(source: ModelSource, cache: str, random_windows: np.ndarray,
                                                      reference: Any) -> None:  # fmt: skip
    backend = get_backend("onnxruntime", source=source, cache_dir=cache)
    x = np.asfortranarray(random_windows.astype(np.float64))
    assert relative_error(backend.anonymize(x), reference(random_windows)) < 1e-5


def test_onnxruntime_runs_a_given_onnx_file(source: ModelSource, cache: str, tmp_path: Any, random_windows: np.ndarray,
                                            reference: Any) -> None:  # fmt: skip
    from pmr_stream.backends.artifacts.onnx_export import export_onnx

    art = export_onnx(source, tmp_path / "given.onnx", graph="reference")
    backend = get_backend("onnxruntime", source=source, onnx_path=str(art.path))
    assert backend.onnx_path == str(art.path)
    assert relative_error(backend.anonymize(random_windows), reference(random_windows)) < 1e-5
    with pytest.raises(FileNotFoundError, match="ONNX file not found"):
        get_backend("onnxruntime", source=source, onnx_path=str(tmp_path / "missing.onnx"))


def test_model_and_dummy_errors(
    model_files: tuple[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, dummy = model_files
    with pytest.raises(FileNotFoundError, match="dummy not found"):
        get_backend("torch", model_path=model, dummy=str(tmp_path / "nope.npz"))
    with pytest.raises(ValueError, match=r"dummy window must have shape \(75, 25, 3\)"):
        get_backend("torch", model_path=model, dummy=np.zeros((10, 25, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        get_backend("torch", model_path=model, dummy=np.full((75, 25, 3), np.nan, np.float32))
    import pmr_stream.assets as assets

    monkeypatch.setattr(assets, "DEFAULT_MODEL", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="--model-path"):
        get_backend("torch", dummy=dummy)


def test_dummy_as_array_or_recording_gives_the_same_code(model_files: tuple[str, str], tmp_path: Any) -> None:
    from pmr_stream.backends import BackendOptions, load_source
    from pmr_stream.formats.recording import Recording

    model, dummy = model_files
    window = np.load(dummy)
    rec = Recording(joints=window[:, None] + 1.0, confidence=np.ones((75, 1, 25), np.float32),
                    timestamps=np.arange(75) / 30.0, present=np.ones((75, 1), bool))  # fmt: skip
    rec.save(tmp_path / "dummy.npz")
    a = load_source(BackendOptions(model_path=model, dummy=window))
    b = load_source(BackendOptions(model_path=model, dummy=str(tmp_path / "dummy.npz")))  # normalised on load
    assert torch.allclose(a.code, b.code, atol=1e-5) and a.dummy_sha256 == load_source(
        BackendOptions(model_path=model, dummy=dummy)).dummy_sha256  # fmt: skip
