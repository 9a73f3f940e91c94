"""The start-up check: nothing cached or loaded is trusted until it matches the PyTorch reference.

Every backend made by ``get_backend`` runs the probe (four fixed windows of the
shipped demo clip) and is compared with the checkpoint's PyTorch fp32
reference: a cached ONNX graph that fails is exported again, a given file is
refused naming it; a checkpoint with NaN weights or a non-finite or far-off
dummy is refused naming the file, in one line, before anything is served.
The tests catch ``ValueError`` (what :class:`ModelCheckError` is) so that on
the code before this check they fail on the behaviour, not on an import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pmr_stream.backends import BackendOptions, ModelSource, get_backend, load_source
from pmr_stream.backends.artifacts.metadata import metadata_path
from pmr_stream.backends.artifacts.onnx_export import export_onnx, relative_error
from pmr_stream.backends.base import sha256_file
from pmr_stream.formats.io import load_recording
from pmr_stream.model.checkpoint import load_checkpoint, save_checkpoint
from tests.backends.conftest import make_model_files

PMR = str(Path(sys.executable).with_name("pmr"))


def identity_onnx(path: Path) -> None:
    """An ONNX graph with the exported graph's input and output names and shapes that returns its input."""
    import onnx
    from onnx import TensorProto, helper

    dims = ["batch", 75, 25, 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["windows"], ["anonymized"])], "identity",
        [helper.make_tensor_value_info("windows", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("anonymized", TensorProto.FLOAT, dims)],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def update_digest(onnx_path: str | Path) -> None:
    """Make the ``.json`` beside a cached export vouch for the file as it is now (what an attacker would do)."""
    meta_file = metadata_path(onnx_path)
    meta = json.loads(meta_file.read_text())
    meta["onnx_sha256"] = sha256_file(onnx_path)
    meta_file.write_text(json.dumps(meta))


def probe_of(source: ModelSource) -> tuple[np.ndarray, np.ndarray]:
    """Windows of the demo clip (as the start-up probe) and the PyTorch reference on them."""
    from pmr_stream.assets import DEMO_CLIP
    from pmr_stream.backends.artifacts.onnx_export import reference_outputs
    from pmr_stream.skeleton import normalize

    clip = load_recording(DEMO_CLIP).joints[:, 0]
    probe = np.stack([normalize(clip[s : s + 75])[0] for s in (10, 150)]).astype(np.float32)
    return probe, reference_outputs(source, probe)


@pytest.fixture(scope="module")
def other_source(tmp_path_factory: pytest.TempPathFactory, model_files: tuple[str, str]) -> ModelSource:
    """Another checkpoint (other random weights), the same dummy."""
    model, _ = make_model_files(tmp_path_factory.mktemp("other"), seed=1)
    return load_source(BackendOptions(model_path=model, dummy=model_files[1]))


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory: pytest.TempPathFactory, model_files: tuple[str, str]) -> dict[str, str]:
    """Checkpoints written with torch.save (read back with weights_only=True): NaN weights, inf weights, far output."""
    folder = tmp_path_factory.mktemp("bad")
    ckpt = load_checkpoint(model_files[0])
    out = {}
    for kind, key, value in (("nan", "decoder.deconvs.1.weight", float("nan")),
                             ("inf", "motion_encoder.fc.bias", float("inf")),
                             ("far", "decoder.deconvs.3.bias", 50.0)):  # fmt: skip
        state = {k: v.clone() for k, v in ckpt.model_state.items()}
        state[key].view(-1)[:3] = value
        path = folder / f"{kind}.pt"
        save_checkpoint(path, type(ckpt)(config=ckpt.config, model_state=state, provenance=ckpt.provenance))
        out[kind] = str(path)
    return out


# --- engines: cached files are rebuilt, given files refused -----------------------------------------------------


def test_an_identity_graph_in_the_cache_is_exported_again(source: ModelSource, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    cache = str(tmp_path / "cache")
    with get_backend("onnxruntime", source=source, cache_dir=cache) as first:
        path = first.onnx_path
    identity_onnx(Path(path))
    update_digest(path)
    forged = sha256_file(path)
    from pmr_stream.backends.artifacts.onnx_export import ensure_onnx

    assert ensure_onnx(source, directory=cache).sha256 == forged  # the digest alone vouches for the forgery

    with caplog.at_level("WARNING"):
        backend = get_backend("onnxruntime", source=source, cache_dir=cache)
    probe, reference = probe_of(source)
    assert relative_error(backend.anonymize(probe), reference) < 1e-5  # the model again, not the identity
    assert backend.onnx_path == path and sha256_file(path) != forged
    assert json.loads(metadata_path(path).read_text())["onnx_sha256"] == sha256_file(path)
    warned = [r.getMessage() for r in caplog.records if path in r.getMessage()]
    assert any("passes its input through" in m and "rebuilding" in m for m in warned), warned


def test_a_graph_of_another_checkpoint_in_the_cache_is_exported_again(source: ModelSource, other_source: ModelSource,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    cache = str(tmp_path / "cache")
    with get_backend("onnxruntime", source=source, cache_dir=cache) as first:
        path = first.onnx_path
    export_onnx(other_source, path)  # a real export, its own .json digest: only its numbers are wrong
    foreign = sha256_file(path)
    backend = get_backend("onnxruntime", source=source, cache_dir=cache)
    probe, reference = probe_of(source)
    assert relative_error(backend.anonymize(probe), reference) < 1e-5
    assert sha256_file(path) != foreign


def test_a_cached_graph_that_does_not_load_is_exported_again(source: ModelSource, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    with get_backend("onnxruntime", source=source, cache_dir=cache) as first:
        path = first.onnx_path
    Path(path).write_bytes(b"not an onnx graph")
    update_digest(path)
    backend = get_backend("onnxruntime", source=source, cache_dir=cache)
    probe, reference = probe_of(source)
    assert relative_error(backend.anonymize(probe), reference) < 1e-5


@pytest.mark.parametrize("kind", ["identity", "other-checkpoint", "not-onnx"])
def test_a_given_onnx_file_that_fails_is_refused_naming_it(kind: str, source: ModelSource, other_source: ModelSource,
                                                           tmp_path: Path) -> None:  # fmt: skip
    given = tmp_path / f"{kind}.onnx"
    if kind == "identity":
        identity_onnx(given)
    elif kind == "other-checkpoint":
        export_onnx(other_source, given)
    else:
        given.write_bytes(b"\x08\x07garbage")
    before = given.read_bytes()
    with pytest.raises(ValueError, match=re.escape(str(given))) as info:
        get_backend("onnxruntime", source=source, onnx_path=str(given))
    from pmr_stream.backends import ModelCheckError

    message = str(info.value)
    assert isinstance(info.value, ModelCheckError) and "\n" not in message and message.endswith("refused")
    want = {"identity": "passes its input through", "other-checkpoint": "differs from the PyTorch reference",
            "not-onnx": "ONNX Runtime cannot load it"}[kind]  # fmt: skip
    assert want in message
    assert given.read_bytes() == before  # a user's file is never rewritten


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_a_cached_engine_of_another_checkpoint_is_rebuilt_and_a_given_one_refused(
        source: ModelSource, other_source: ModelSource, tmp_path: Path) -> None:  # fmt: skip
    from tests.backends.conftest import skip_unless_available

    skip_unless_available("tensorrt", device="cuda")
    cache, other_cache = tmp_path / "cache", tmp_path / "other"
    with get_backend("tensorrt", source=source, device="cuda", max_batch=8, cache_dir=str(cache)) as first:
        path = Path(first.engine_path)
    with get_backend(
        "tensorrt", source=other_source, device="cuda", max_batch=8, cache_dir=str(other_cache)
    ) as o:
        foreign = Path(o.engine_path)
    path.write_bytes(foreign.read_bytes())  # another model's engine, its metadata made to vouch for it
    meta_file = metadata_path(path)
    meta = json.loads(meta_file.read_text())
    meta["engine_sha256"] = sha256_file(path)
    meta_file.write_text(json.dumps(meta))
    given = tmp_path / "given.engine"  # the forged pair handed over as the user's own engine: refused
    given.write_bytes(path.read_bytes())
    metadata_path(given).write_text(meta_file.read_text())
    with pytest.raises(ValueError, match=re.escape(str(given)) + ".*differs from the PyTorch reference"):
        get_backend("tensorrt", source=source, device="cuda", max_batch=8, engine_path=str(given))
    with get_backend("tensorrt", source=source, device="cuda", max_batch=8, cache_dir=str(cache)) as backend:
        probe, reference = probe_of(source)
        assert relative_error(backend.anonymize(probe), reference) < 1e-4
    assert sha256_file(path) != sha256_file(foreign)


def test_a_torch_backend_that_passes_its_input_through_is_refused(source: ModelSource,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The check is in the backend layer: whatever the engine, its output is compared at start-up."""
    from pmr_stream.backends.torch_backend import TorchBackend

    monkeypatch.setattr(TorchBackend, "_run", lambda self, windows: windows.copy())
    with pytest.raises(ValueError, match=re.escape(source.model_path) + ".*passes its input through"):
        get_backend("torch", source=source)


def test_probe_windows_are_fixed_recorded_motion() -> None:
    from pmr_stream.backends.base import probe_windows

    a, b = probe_windows(), probe_windows()
    assert a.shape == (4, 75, 25, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and 0.3 < np.abs(a).max() < 3.0  # metres, a person's reach
    assert np.std(a, axis=1).mean() > 1e-3  # moving, not a still pose
    a[:] = 0  # a copy: callers cannot spoil the next probe
    assert np.abs(probe_windows()).max() > 0.3


# --- the model and the dummy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize(("kind", "why"), [("nan", "NaN or infinite weights in decoder.deconvs.1.weight"),
                                           ("inf", "NaN or infinite weights in motion_encoder.fc.bias"),
                                           ("far", "m from the origin")])  # fmt: skip
def test_a_bad_checkpoint_is_refused_naming_it(kind: str, why: str, backend: str, bad_checkpoints: dict[str, str],
                                               model_files: tuple[str, str], tmp_path: Path) -> None:  # fmt: skip
    bad = bad_checkpoints[kind]
    assert torch.load(bad, weights_only=True)["format"] == "pmr-stream-checkpoint"
    with pytest.raises(ValueError, match=re.escape(bad)) as info:
        get_backend(backend, model_path=bad, dummy=model_files[1], cache_dir=str(tmp_path))
    assert why in str(info.value) and "\n" not in str(info.value)


def test_the_offline_window_function_refuses_a_bad_checkpoint(bad_checkpoints: dict[str, str],
                                                              model_files: tuple[str, str]) -> None:  # fmt: skip
    from pmr_stream.offline import default_window_fn

    for kind in ("nan", "far"):  # with the shipped dummy
        with pytest.raises(ValueError, match=re.escape(bad_checkpoints[kind])):
            default_window_fn(bad_checkpoints[kind])
    fn, model_id = default_window_fn(model_files[0], model_files[1])  # a .npy window is a dummy here too
    assert model_id == "test" and fn.anonymize(np.zeros((1, 75, 25, 3), np.float32)).shape == (1, 75, 25, 3)


def _dummies(folder: Path) -> dict[str, Path]:
    """Dummies that must be refused: NaN in a .npy window, a joint 1e20 m away in a recording, NaN in a .npz."""
    from pmr_stream.assets import DEFAULT_DUMMY

    rec = load_recording(DEFAULT_DUMMY)
    window = rec.joints[:75, 0].copy()
    window[5, 3, 0] = np.nan
    np.save(folder / "nan.npy", window)
    far = rec.joints.copy()
    far[3, 0, 4] *= 1e20
    type(rec)(joints=far, confidence=rec.confidence, timestamps=rec.timestamps, present=rec.present,
              layout=rec.layout).save(folder / "far.npz")  # fmt: skip
    arrays = dict(np.load(DEFAULT_DUMMY, allow_pickle=False))
    arrays["joints"] = arrays["joints"].copy()
    arrays["joints"][3, 0, 4, 1] = np.nan
    np.savez(folder / "nan.npz", **arrays)  # written around Recording.save, which refuses NaN
    return {"nan-npy": folder / "nan.npy", "far-npz": folder / "far.npz", "nan-npz": folder / "nan.npz"}


@pytest.mark.parametrize("kind", ["nan-npy", "far-npz", "nan-npz"])
def test_a_bad_dummy_is_refused_naming_it(kind: str, model_files: tuple[str, str], tmp_path: Path) -> None:
    dummy = _dummies(tmp_path)[kind]
    with pytest.raises(ValueError, match=re.escape(str(dummy))) as info:
        get_backend("torch", model_path=model_files[0], dummy=str(dummy))
    assert ("NaN" in str(info.value) or "not a skeleton in metres" in str(info.value)) and "\n" not in str(
        info.value
    )


# --- the CLI: one line, exit 2, before any "ready" line ----------------------------------------------------------


def _run_pmr(args: list[str]) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.perf_counter()
    p = subprocess.run([PMR, *args], capture_output=True, text=True, timeout=60)
    return p, time.perf_counter() - t0


def _said(stderr: str) -> list[str]:
    """What a command said on stderr, less other components' log records (e.g. a stream key made on first use)."""
    assert "Traceback" not in stderr, stderr
    return [
        ln for ln in stderr.splitlines() if ln.strip() and not re.match(r"(DEBUG|INFO|WARNING) \S+: ", ln)
    ]


def test_the_anonymizer_refuses_a_nan_checkpoint_in_one_line(bad_checkpoints: dict[str, str],
                                                             model_files: tuple[str, str], tmp_path: Path) -> None:  # fmt: skip
    dummy = _dummies(tmp_path)["nan-npy"]
    for model, dummy_arg, named in ((bad_checkpoints["nan"], model_files[1], bad_checkpoints["nan"]),
                                    (model_files[0], str(dummy), str(dummy))):  # fmt: skip
        p, seconds = _run_pmr(["anonymizer", "--raw", "tcp://127.0.0.1:1", "--anon", "tcp://127.0.0.1:0",
                               "--backend", "torch", "--model-path", model, "--dummy", dummy_arg, "--duration", "3",
                               "--report", "0"])  # fmt: skip
        lines = _said(p.stderr)
        assert p.returncode == 2, (p.stdout, p.stderr)
        assert len(lines) == 1 and lines[0].startswith("pmr anonymizer: error: ") and named in lines[0], (
            p.stderr
        )
        assert "anonymizer:" not in p.stdout  # no "ready" line: nothing was served
        assert seconds < 30


def test_pmr_anonymize_refuses_a_nan_checkpoint_in_one_line(bad_checkpoints: dict[str, str],
                                                            model_files: tuple[str, str], tmp_path: Path) -> None:  # fmt: skip
    from pmr_stream.assets import DEMO_CLIP

    out = tmp_path / "out.npz"
    p, _ = _run_pmr(["anonymize", "--input", str(DEMO_CLIP), "--output", str(out), "--model-path",
                     bad_checkpoints["nan"]])  # fmt: skip
    lines = _said(p.stderr)
    assert p.returncode == 2 and len(lines) == 1 and bad_checkpoints["nan"] in lines[0], (p.stdout, p.stderr)
    assert not out.exists()
