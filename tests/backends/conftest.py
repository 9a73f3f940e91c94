"""Fixtures shared by the backend and engine tests: a random-weights model, a dummy, windows.

The shipped default model may not exist yet; these tests make their own
checkpoint (random weights, seeded) and dummy window, exactly as a user
passes ``--model-path``/``--dummy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pmr_stream.backends import BackendOptions, ModelSource, load_source, unavailable_reason
from pmr_stream.samples import recorded_windows


def make_model_files(folder: Path, seed: int = 0) -> tuple[str, str]:
    """A random-weights checkpoint and a dummy window ``.npy`` in ``folder``."""
    from pmr_stream.config import Config
    from pmr_stream.model.checkpoint import Checkpoint, save_checkpoint
    from pmr_stream.model.pmr import PMRModel

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "pmr_test.pt"
    save_checkpoint(
        model,
        Checkpoint(config=Config(), model_state=PMRModel().state_dict(), provenance={"model_id": "test"}),
    )
    dummy = folder / "dummy.npy"
    np.save(dummy, recorded_windows(4)[0][-1])
    return str(model), str(dummy)


def skip_unless_available(name: str, **options: object) -> None:
    """Skip the calling test, with the reason, when backend ``name`` cannot run with ``options`` here."""
    reason = unavailable_reason(name, **options)
    if reason is not None:
        pytest.skip(f"{name} on {options.get('device', 'cpu')}: {reason}")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():  # type: ignore[no-untyped-def]
    """One torch thread while these tests run: on a small shared machine, two threads whose core
    is taken by another process wait on each other for milliseconds per layer (measured: 170 ms
    instead of 1 ms per call), which says nothing about the code under test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_model_files(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def source(model_files: tuple[str, str]) -> ModelSource:
    model, dummy = model_files
    return load_source(BackendOptions(model_path=model, dummy=dummy))


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One artifact cache for the session, so each ONNX variant is exported once."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def random_windows() -> np.ndarray:
    return (np.random.default_rng(7).standard_normal((7, 75, 25, 3)) * 0.3).astype(np.float32)


@pytest.fixture(scope="session")
def real_windows() -> np.ndarray:
    """Recorded motion: the real NTU samples when present, else the demo recording."""
    return recorded_windows(12)[0]


@pytest.fixture(scope="session")
def reference(source: ModelSource):  # type: ignore[no-untyped-def]
    """The PyTorch fp32 reference as a function of windows."""
    from pmr_stream.backends.artifacts.onnx_export import reference_outputs

    return lambda x: reference_outputs(source, x)
