"""Build TensorRT engines from the exported ONNX, with metadata and a shared timing cache.

    pmr export --format tensorrt --output engines/build/ --precision fp16 --max-batch 1024

Written against TensorRT's Python API, versions 10.x and 11.x:

* networks are strongly typed: precision comes from the ONNX (an fp16 export
  for ``fp16``), not from builder flags. TensorRT 11 removed ``BuilderFlag.FP16``
  and makes every network strongly typed; on 10.x the ``STRONGLY_TYPED``
  creation flag asks for the same thing, so one code path builds on both.
* ``BuilderFlag.TF32`` (on by default) is cleared where it exists, so an
  fp32 engine computes in fp32 and meets the 1e-5 parity bound.
* one optimisation profile over batch ``1..max_batch`` (``opt`` batch configurable);
* the timing cache (``timing-trt<ver>-sm<cc>.cache`` in the cache folder) is
  loaded before and saved after every build, so later builds skip tactic timing.

Every engine gets :class:`pmr_stream.backends.artifacts.metadata.EngineMetadata` beside it;
:func:`ensure_engine` compares that with the running TensorRT and GPU before
TensorRT opens the file, and rebuilds (or, with ``rebuild="never"``, says how
to) instead of letting TensorRT fail on a foreign engine.

TensorRT is imported only inside these functions; everything that decides
(names, metadata, the rebuild choice) is in :mod:`pmr_stream.backends.artifacts.metadata`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pmr_stream.backends.artifacts.metadata import (
    BuildRequest,
    EngineMetadata,
    Platform,
    engine_name,
    metadata_path,
    rebuild_command,
    rebuild_reasons,
    sm_tag,
    trt_short,
)
from pmr_stream.backends.artifacts.onnx_export import DEFAULT_OPSET, INPUT, OnnxArtifact, ensure_onnx
from pmr_stream.backends.base import (
    TENSORRT_INSTALL_HINT,
    BackendUnavailable,
    ModelSource,
    cache_dir,
    sha256_bytes,
    sha256_file,
)

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE: Final[int] = 1 << 30  # 1 GiB
INSTALL_HINT: Final[str] = TENSORRT_INSTALL_HINT


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build; carries TensorRT's own messages."""


class EngineMismatch(RuntimeError):
    """An engine does not fit this TensorRT/GPU/model and rebuilding was not allowed; says how to rebuild."""


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`BackendUnavailable` with the install line."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # OSError: the bindings are there but the libraries are not
        raise BackendUnavailable(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    return trt


def current_platform(device: int | None = None) -> Platform:
    """TensorRT version and the GPU (name, compute capability) that an engine would run on."""
    import torch

    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT engines need a CUDA GPU, and torch sees none")
    index = torch.cuda.current_device() if device is None else device
    major, minor = torch.cuda.get_device_capability(index)
    return Platform(tensorrt_version=str(trt.__version__), gpu_name=torch.cuda.get_device_name(index),
                    compute_capability=f"{major}.{minor}")  # fmt: skip


def timing_cache_path(platform: Platform, directory: str | os.PathLike[str] | None = None) -> Path:
    """The timing cache shared by all builds for one TensorRT version and GPU architecture."""
    return (
        cache_dir(directory)
        / f"timing-trt{trt_short(platform.tensorrt_version)}-{sm_tag(platform.compute_capability)}.cache"
    )


def _flag(enum: Any, name: str) -> Any:
    return getattr(enum, name, None)


def build_engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], precision: str,
                 max_batch: int, opt_batch: int | None = None, timing_cache: str | os.PathLike[str] | None = None,
                 workspace: int = DEFAULT_WORKSPACE, source: dict[str, Any] | None = None,
                 device: int | None = None) -> EngineMetadata:  # fmt: skip
    """Build a serialized engine from ``onnx_path`` and write it with its metadata; returns the metadata."""
    import torch

    trt = import_tensorrt()
    platform = current_platform(device)
    if max_batch < 1:
        raise ValueError(f"max_batch must be positive, got {max_batch}")
    opt = min(max(1, opt_batch if opt_batch is not None else min(max_batch, 64)), max_batch)
    onnx_bytes = Path(onnx_path).read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    if device is not None:
        torch.cuda.set_device(device)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = _flag(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    if strongly_typed is not None:  # 10.x: ask for it; 11.x: always on, flag accepted and ignored
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT {trt.__version__} could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    tf32 = _flag(trt.BuilderFlag, "TF32")
    if tf32 is not None:
        try:
            config.clear_flag(tf32)  # fp32 means fp32: TF32 would cost ~1e-3 relative error
        except Exception as exc:  # noqa: BLE001 - a TensorRT that refuses the flag computes in the network's types
            log.debug("could not clear TF32: %s", exc)
    profile = builder.create_optimization_profile()
    shape = tuple(network.get_input(0).shape)[1:]
    name = network.get_input(0).name
    profile.set_shape(name, (1, *shape), (opt, *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    cache_file = Path(timing_cache) if timing_cache else timing_cache_path(platform)
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    if not config.set_timing_cache(
        cache, False
    ):  # ignore_mismatch=False: a cache from another GPU is not used
        log.warning("timing cache %s does not fit this TensorRT/GPU; starting an empty one", cache_file)
        config.set_timing_cache(config.create_timing_cache(b""), False)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    build_time = time.perf_counter() - t0
    if plan is None:
        raise EngineBuildError(f"TensorRT {trt.__version__} failed to build {onnx_path} for {precision} "
                               f"(batch 1..{max_batch}); its messages are in the log above")  # fmt: skip
    data = bytes(memoryview(plan))
    out = Path(engine_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    meta = EngineMetadata(
        tensorrt_version=platform.tensorrt_version, gpu_name=platform.gpu_name,
        compute_capability=platform.compute_capability, onnx_sha256=sha256_file(onnx_path), precision=precision,
        min_batch=1, opt_batch=opt, max_batch=max_batch, build_time_s=round(build_time, 3),
        engine_sha256=sha256_bytes(data), onnx_file=str(onnx_path),
        built_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), input_name=name,
        output_name=network.get_output(0).name, workspace_bytes=workspace, timing_cache=str(cache_file),
        source=source or {},
    )  # fmt: skip
    meta.save(out)
    log.info("built %s in %.1f s (%s, batch 1..%d, opt %d)", out, build_time, precision, max_batch, opt)
    return meta


@dataclass(frozen=True)
class EngineArtifact:
    """An engine file ready for this TensorRT and GPU, and its metadata."""

    path: Path
    metadata: EngineMetadata
    rebuilt: bool


def ensure_engine(source: ModelSource, precision: str = "fp32", max_batch: int = 256, graph: str = "folded",
                  engine_path: str | os.PathLike[str] | None = None, rebuild: str = "auto",
                  opt_batch: int | None = None, directory: str | os.PathLike[str] | None = None,
                  opset: int = DEFAULT_OPSET, device: int | None = None,
                  onnx_path: str | os.PathLike[str] | None = None) -> EngineArtifact:  # fmt: skip
    """An engine for ``source`` that fits the running TensorRT and GPU: reused, or built from the ONNX export.

    ``rebuild``: ``auto`` builds when :func:`pmr_stream.backends.artifacts.metadata.rebuild_reasons`
    finds any, ``always`` builds, ``never`` raises :class:`EngineMismatch` with
    the reasons and the command that rebuilds. ``onnx_path``: build from this
    file instead of the model's cached export.
    """
    platform = current_platform(device)
    if onnx_path is not None:
        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f"ONNX file not found: {onnx_path}")
        onnx_art = OnnxArtifact(
            Path(onnx_path), sha256_file(onnx_path), precision, graph, opset, float("nan")
        )
    else:
        onnx_art = ensure_onnx(source, precision=precision, graph=graph, opset=opset, directory=directory)
    path = (
        Path(engine_path)
        if engine_path
        else cache_dir(directory)
        / engine_name(
            source.stem,
            onnx_art.sha256,
            precision,
            max_batch,
            platform.tensorrt_version,
            platform.compute_capability,
        )
    )
    if path.is_dir():
        path = path / engine_name(source.stem, onnx_art.sha256, precision, max_batch, platform.tensorrt_version,
                                  platform.compute_capability)  # fmt: skip
    want = BuildRequest(onnx_sha256=onnx_art.sha256, precision=precision, max_batch=max_batch)
    reasons = rebuild_reasons(path, platform, want, sha256_file(path) if path.is_file() else None)
    if rebuild == "always":
        reasons = reasons or ["rebuild='always'"]
    if not reasons:
        return EngineArtifact(path, EngineMetadata.load(path), rebuilt=False)
    if rebuild == "never":
        raise EngineMismatch(f"{path} cannot be used here: {'; '.join(reasons)}. Rebuild it with: "
                             + rebuild_command(path, precision, max_batch, source.model_path))  # fmt: skip
    if path.is_file():
        log.warning("rebuilding %s: %s", path, "; ".join(reasons))
    info = {"model": source.model_path, "model_sha256": source.model_sha256, "dummy_sha256": source.dummy_sha256,
            "graph": graph, "opset": opset, "onnx_relative_error": onnx_art.relative_error}  # fmt: skip
    meta = build_engine(onnx_art.path, path, precision, max_batch, opt_batch, source=info, device=device,
                        timing_cache=timing_cache_path(platform, directory))  # fmt: skip
    return EngineArtifact(path, meta, rebuilt=True)


def deserialize(engine_path: str | os.PathLike[str], logger: Any | None = None) -> tuple[Any, Any]:
    """``(runtime, engine)`` from a file already vetted by :func:`ensure_engine`.

    Still guards TensorRT's own failure (it returns None) with a message that
    names the file and the fix.
    """
    trt = import_tensorrt()
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        meta = metadata_path(engine_path)
        raise EngineMismatch(f"TensorRT {trt.__version__} could not load {engine_path} (see {meta}); "
                             "delete it or rebuild with pmr export --format tensorrt")  # fmt: skip
    return runtime, engine


__all__ = ["EngineArtifact", "EngineBuildError", "EngineMismatch", "build_engine", "current_platform", "deserialize",
           "ensure_engine", "import_tensorrt", "timing_cache_path", "INPUT"]  # fmt: skip
