"""The registry: names, options, the automatic choice, and what it says when something is missing."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pmr_stream.backends import (
    Backend,
    BackendOptions,
    BackendUnavailable,
    Facts,
    ModelSource,
    auto_candidates,
    get_backend,
    list_backends,
    register_backend,
    unavailable_reason,
)

REPO = Path(__file__).resolve().parents[2]


def test_builtin_backends_are_registered() -> None:
    assert {"torch", "onnxruntime", "tensorrt"} <= set(list_backends())
    assert "auto" not in list_backends()


def test_unknown_backend_is_refused_with_the_choices(source: ModelSource) -> None:
    with pytest.raises(ValueError, match="unknown backend 'tvm'.*onnxruntime"):
        get_backend("tvm", source=source)


def test_unknown_option_is_refused_with_the_valid_ones(source: ModelSource) -> None:
    with pytest.raises(ValueError, match="unknown backend option.*batch_size.*valid:.*max_batch"):
        get_backend("torch", source=source, batch_size=8)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "int8"}, "precision must be one of fp32, fp16"),
        ({"precision": "fp16"}, "fp16 needs a CUDA device"),
        ({"max_batch": 0}, "max_batch must be a positive integer"),
        ({"max_batch": 2.5}, "max_batch must be a positive integer"),
        ({"device": "gpu"}, "device must be cpu, cuda or cuda:N"),
        ({"graph": "fast"}, "graph must be one of folded, reference"),
        ({"rebuild": "sometimes"}, "rebuild must be one of auto, always, never"),
        ({"threads": 0}, "threads must be a positive integer"),
    ],
)
def test_invalid_option_values(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackendOptions.from_kwargs(**options)


@pytest.mark.parametrize(
    ("facts", "device", "expected"),
    [
        (Facts(cuda=True, tensorrt=True, onnxruntime=True), None,
         [("tensorrt", "cuda"), ("torch", "cuda"), ("onnxruntime", "cpu"), ("torch", "cpu")]),
        (Facts(cuda=True, tensorrt=False, onnxruntime=True), None,
         [("torch", "cuda"), ("onnxruntime", "cpu"), ("torch", "cpu")]),
        (Facts(cuda=False, tensorrt=False, onnxruntime=True), None, [("onnxruntime", "cpu"), ("torch", "cpu")]),
        (Facts(cuda=False, tensorrt=False, onnxruntime=False), None, [("torch", "cpu")]),
        (Facts(cuda=True, tensorrt=True, onnxruntime=True), "cpu", [("onnxruntime", "cpu"), ("torch", "cpu")]),
        (Facts(cuda=True, tensorrt=True, onnxruntime=True), "cuda:1", [("tensorrt", "cuda:1"), ("torch", "cuda:1")]),
        (Facts(cuda=False, tensorrt=False, onnxruntime=True), "cuda", []),
    ],
)  # fmt: skip
def test_auto_prefers_the_fastest(facts: Facts, device: str | None, expected: list[tuple[str, str]]) -> None:
    assert auto_candidates(facts, device) == expected


def test_auto_here_picks_onnxruntime_on_cpu_and_logs_it(source: ModelSource, cache: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    with caplog.at_level(logging.INFO, logger="pmr_stream.backends.registry"):
        backend = get_backend("auto", source=source, cache_dir=cache,
                              facts=Facts(cuda=False, tensorrt=False, onnxruntime=True))  # fmt: skip
    assert backend.name == "onnxruntime" and backend.device == "cpu"
    assert "auto backend: onnxruntime on cpu" in caplog.text


def test_auto_falls_back_to_torch_without_onnxruntime(source: ModelSource) -> None:
    backend = get_backend("auto", source=source, facts=Facts(cuda=False, tensorrt=False, onnxruntime=False))
    assert backend.name == "torch"


def test_auto_with_nothing_usable_says_why(source: ModelSource) -> None:
    with pytest.raises(BackendUnavailable, match="no backend can run here"):
        get_backend(
            "auto", source=source, device="cuda", facts=Facts(cuda=False, tensorrt=False, onnxruntime=True)
        )


def test_tensorrt_needs_cuda() -> None:
    assert "CUDA" in (unavailable_reason("tensorrt", device="cpu") or "")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_missing_tensorrt_is_reported_with_the_install_line(source: ModelSource) -> None:
    reason = unavailable_reason("tensorrt", device="cuda") or ""
    assert "CUDA" in reason or "pip install" in reason
    with pytest.raises(BackendUnavailable):
        get_backend("tensorrt", source=source, device="cuda")


def test_register_backend_rejects_duplicates_and_auto() -> None:
    def loader() -> type[Backend]:
        raise AssertionError("not loaded")

    with pytest.raises(ValueError, match="already registered"):
        register_backend("torch", loader, lambda o: None)
    with pytest.raises(ValueError, match="reserved"):
        register_backend("auto", loader, lambda o: None)


def test_a_registered_backend_is_made_by_get_backend(source: ModelSource) -> None:
    import numpy as np

    from pmr_stream.backends.base import reference_outputs

    class Reference(Backend):
        name = "reference-test"

        def _run(self, windows: np.ndarray) -> np.ndarray:
            return reference_outputs(self.source.model, self.source.code, windows)

    class Echo(Backend):
        name = "echo-test"

        def _run(self, windows: np.ndarray) -> np.ndarray:
            return windows.copy()

    register_backend("reference-test", lambda: Reference, lambda o: None, replace_existing=True)
    backend = get_backend("reference-test", source=source, max_batch=2)
    x = np.ones((5, 75, 25, 3), np.float32)
    np.testing.assert_allclose(
        backend.anonymize(x), reference_outputs(source.model, source.code, x), rtol=0, atol=1e-5
    )
    # a registered backend passes the same start-up check as the built-in ones: one that echoes is refused
    register_backend("echo-test", lambda: Echo, lambda o: None, replace_existing=True)
    with pytest.raises(ValueError, match="passes its input through"):
        get_backend("echo-test", source=source, max_batch=2)


def test_packages_import_without_the_capture_stack_and_optional_engines() -> None:
    """engines/, backends and the benchmarks import on a GPU host without zmq, mediapipe or cv2,
    and importing the backends imports neither onnxruntime nor TensorRT."""
    code = (
        "import sys\n"
        "for m in ('zmq', 'mediapipe', 'cv2'): sys.modules[m] = None\n"
        "import pmr_stream.backends\n"
        "assert 'onnxruntime' not in sys.modules and 'tensorrt' not in sys.modules, sorted(sys.modules)\n"
        "import pmr_stream.backends.artifacts.onnx_export, pmr_stream.backends.artifacts.metadata, pmr_stream.backends.artifacts.tensorrt_build, pmr_tools.bench, pmr_tools.bench_gpu\n"
        "import pmr_stream.backends.torch_backend, pmr_stream.backends.onnxruntime_backend\n"
        "import pmr_stream.backends.tensorrt_backend\n"
        "assert 'tensorrt' not in sys.modules\n"
        "print('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr
