"""What an engine depends on, written beside it, and the decision to reuse or rebuild it.

A TensorRT engine runs only under the TensorRT version that built it and on
the GPU model it was built for; loading it anywhere else fails deep inside
TensorRT with a message that names neither. So every engine ``X.engine`` has
``X.engine.json`` beside it (:class:`EngineMetadata`), and
:func:`rebuild_reasons` compares it with the running platform and the wanted
build before TensorRT ever sees the file. Nothing here imports TensorRT, so
all of it is tested on machines without a GPU.

Artifact names carry what they depend on::

    pmr_default-3f9c2a1b-folded-fp32-op17.onnx          model+dummy digest, graph, precision, opset
    pmr_default-5d0e77c4-fp16-b256-trt10.13-sm90.engine  ONNX digest, precision, batch, TensorRT, GPU arch
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

FORMAT: Final[str] = "pmr-stream-engine"
VERSION: Final[int] = 1


class MetadataError(ValueError):
    """An engine's metadata file is missing, unreadable or incomplete; names the file."""


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


def trt_short(version: str) -> str:
    """``10.13.0.35`` -> ``10.13`` (major.minor, as in artifact names)."""
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else version


def sm_tag(compute_capability: str) -> str:
    """``9.0`` -> ``sm90``."""
    return "sm" + compute_capability.replace(".", "")


def onnx_name(stem: str, key: str, graph: str, precision: str, opset: int) -> str:
    """File name of an exported ONNX graph; ``key`` digests the model and dummy it was made from."""
    return f"{_safe(stem)}-{key[:8]}-{graph}-{precision}-op{opset}.onnx"


def engine_name(stem: str, onnx_sha256: str, precision: str, max_batch: int, tensorrt_version: str,
                compute_capability: str) -> str:  # fmt: skip
    """File name of a TensorRT engine: everything that makes one engine differ from another."""
    return (f"{_safe(stem)}-{onnx_sha256[:8]}-{precision}-b{max_batch}"
            f"-trt{trt_short(tensorrt_version)}-{sm_tag(compute_capability)}.engine")  # fmt: skip


def metadata_path(artifact: str | os.PathLike[str]) -> Path:
    """``X.engine`` -> ``X.engine.json`` (same for ``.onnx``)."""
    p = Path(artifact)
    return p.with_name(p.name + ".json")


@dataclass(frozen=True)
class Platform:
    """What the running host offers an engine: TensorRT version and GPU."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


@dataclass(frozen=True)
class BuildRequest:
    """The engine a caller wants."""

    onnx_sha256: str
    precision: str
    max_batch: int


@dataclass
class EngineMetadata:
    """Written beside every engine, as JSON."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    onnx_sha256: str
    precision: str
    min_batch: int
    opt_batch: int
    max_batch: int
    build_time_s: float
    engine_sha256: str
    onnx_file: str = ""
    built_at: str = ""
    input_name: str = "windows"
    output_name: str = "anonymized"
    workspace_bytes: int = 0
    timing_cache: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # model/dummy digests, graph, opset
    format: str = FORMAT
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str | os.PathLike[str] = "<memory>") -> EngineMetadata:
        """Parse and check; anything missing or of the wrong type raises :class:`MetadataError` naming the file."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"{path}: not JSON ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise MetadataError(f"{path}: not pmr-stream engine metadata (format tag {FORMAT!r} missing)")
        if data.get("version") != VERSION:
            raise MetadataError(
                f"{path}: metadata version {data.get('version')!r} is not supported (expected {VERSION})"
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                kwargs[f.name] = data[f.name]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise MetadataError(f"{path}: metadata lacks {f.name!r}")
        for name in ("min_batch", "opt_batch", "max_batch"):
            if not isinstance(kwargs[name], int) or isinstance(kwargs[name], bool) or kwargs[name] < 1:
                raise MetadataError(f"{path}: {name} must be a positive integer, got {kwargs[name]!r}")
        for name in (
            "tensorrt_version",
            "gpu_name",
            "compute_capability",
            "onnx_sha256",
            "precision",
            "engine_sha256",
        ):
            if not isinstance(kwargs[name], str) or not kwargs[name]:
                raise MetadataError(f"{path}: {name} must be a non-empty string, got {kwargs[name]!r}")
        return cls(**kwargs)

    def save(self, engine_path: str | os.PathLike[str]) -> Path:
        p = metadata_path(engine_path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, engine_path: str | os.PathLike[str]) -> EngineMetadata:
        p = metadata_path(engine_path)
        if not p.is_file():
            raise MetadataError(f"{p}: no metadata beside the engine")
        return cls.from_json(p.read_text(), p)


def rebuild_reasons(engine_path: str | os.PathLike[str], platform: Platform, want: BuildRequest,
                    engine_sha256: str | None = None) -> list[str]:  # fmt: skip
    """Why the engine at ``engine_path`` cannot be used here for ``want``; empty when it can.

    ``engine_sha256`` (when given) is the digest of the engine file as found,
    checked against the one recorded at build time.
    """
    p = Path(engine_path)
    if not p.is_file():
        return [f"no engine at {p}"]
    try:
        meta = EngineMetadata.load(p)
    except MetadataError as exc:
        return [str(exc)]
    reasons = []
    if meta.tensorrt_version != platform.tensorrt_version:
        reasons.append(f"built with TensorRT {meta.tensorrt_version}, this is TensorRT {platform.tensorrt_version} "
                       "(engines run only under the version that built them)")  # fmt: skip
    if meta.compute_capability != platform.compute_capability:
        reasons.append(f"built for compute capability {meta.compute_capability} ({meta.gpu_name}), "
                       f"this GPU is {platform.compute_capability} ({platform.gpu_name})")  # fmt: skip
    elif meta.gpu_name != platform.gpu_name:
        reasons.append(
            f"built on {meta.gpu_name}, this GPU is {platform.gpu_name} (tactics are tuned per GPU model)"
        )
    if meta.onnx_sha256 != want.onnx_sha256:
        reasons.append(
            f"built from ONNX {meta.onnx_sha256[:8]}, the current export is {want.onnx_sha256[:8]}"
        )
    if meta.precision != want.precision:
        reasons.append(f"built for {meta.precision}, {want.precision} wanted")
    if meta.max_batch < want.max_batch:
        reasons.append(
            f"its profile covers batch {meta.min_batch}..{meta.max_batch}, batch up to {want.max_batch} wanted"
        )
    if engine_sha256 is not None and engine_sha256 != meta.engine_sha256:
        reasons.append(
            f"the engine file changed since it was built (sha256 {engine_sha256[:8]}, recorded {meta.engine_sha256[:8]})"
        )
    return reasons


def rebuild_command(engine_path: str | os.PathLike[str], precision: str, max_batch: int,
                    model_path: str | None = None, dummy: str | None = None) -> str:  # fmt: skip
    """The ``pmr export`` line that rebuilds an engine, for messages."""
    parts = [
        "pmr export --format tensorrt",
        f"--output {engine_path}",
        f"--precision {precision}",
        f"--max-batch {max_batch}",
    ]
    if model_path:
        parts.append(f"--model-path {model_path}")
    if dummy:
        parts.append(f"--dummy {dummy}")
    return " ".join(parts)
