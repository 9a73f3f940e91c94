"""The MediaPipe Tasks pose bundle (``.task``), built offline from the models the wheel bundles.

mediapipe 0.10.21 ships the legacy pose models inside its wheel
(``mediapipe/modules/pose_detection/pose_detection.tflite``, the BlazePose person detector, and
``mediapipe/modules/pose_landmark/pose_landmark_full.tflite``, the full landmark model) but no
``pose_landmarker_*.task`` bundle; the Tasks API downloads those, which our machines cannot.
A ``.task`` file is a zip of ``pose_detector.tflite`` and ``pose_landmarks_detector.tflite``.
The Tasks graph refuses the wheel's files as they are ("Input tensor has type float32: it
requires specifying NormalizationOptions metadata"), so :func:`ensure_pose_bundle` adds the
TFLite metadata they lack with the wheel's own metadata writer
(``mediapipe.tasks.python.metadata.metadata_writers``): an image input normalised like the
legacy graphs do (the detector takes ``[-1, 1]``: mean 127.5, std 127.5; the landmark model
``[0, 1]``: mean 0, std 255) and plain feature outputs. Nothing else changes in the models.

The bundle is built at first use into the cache (:func:`pmr_stream.cache.cache_dir`), named by
the SHA-256 of the two source files and the recipe version, written atomically with fixed zip
timestamps: the same wheel always gives the same bytes, and another wheel gives another file.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import warnings
import zipfile
from pathlib import Path
from typing import Final

from pmr_stream.cache import cache_dir

log = logging.getLogger(__name__)

#: Bump when the recipe below changes (the file name carries it, so old bundles are not reused).
RECIPE_VERSION: Final[int] = 1
#: (name inside the bundle, file in the mediapipe package, normalisation mean, std)
_PARTS: Final[tuple[tuple[str, str, float, float], ...]] = (
    ("pose_detector.tflite", "modules/pose_detection/pose_detection.tflite", 127.5, 127.5),
    ("pose_landmarks_detector.tflite", "modules/pose_landmark/pose_landmark_full.tflite", 0.0, 255.0),
)
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


def wheel_models() -> list[Path]:
    """The two ``.tflite`` files of the installed mediapipe wheel; ``RuntimeError`` naming a missing one."""
    import mediapipe

    root = Path(mediapipe.__file__).parent
    paths = [root / rel for _, rel, _, _ in _PARTS]
    for p in paths:
        if not p.is_file():
            raise RuntimeError(
                f"the mediapipe wheel lacks its bundled pose model {p} (mediapipe==0.10.21 has it)"
            )
    return paths


def _with_metadata(model: bytes, name: str, mean: float, std: float) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    outputs = len(writer_utils.get_output_tensor_types(bytearray(model)))
    w = metadata_writer.MetadataWriter.create(bytearray(model))
    w.add_general_info(name, "MediaPipe's model from the mediapipe wheel; metadata added by pmr-stream")
    w.add_image_input([mean], [std])
    for _ in range(outputs):
        w.add_feature_output()
    try:
        with warnings.catch_warnings():
            # mediapipe 0.10.21's populator opens the model as a zip without closing the file
            # (metadata._open_as_zipfile); the file is freed at once, with a ResourceWarning
            warnings.simplefilter("ignore", ResourceWarning)
            content, _ = w.populate()
            gc.collect()
    finally:
        w._temp_folder.cleanup()  # the writer leaves its temporary folder to the garbage collector
    return bytes(content)


def bundle_name(models: list[Path]) -> str:
    """``pose_landmarker_full.<hash>.task``: the hash covers the source models and the recipe."""
    h = hashlib.sha256(f"recipe {RECIPE_VERSION}\n".encode())
    for p in models:
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return f"pose_landmarker_full.{h.hexdigest()[:16]}.task"


def build_pose_bundle(out: Path, models: list[Path] | None = None) -> Path:
    """Write the bundle to ``out`` (atomically, deterministic bytes); returns ``out``."""
    models = models or wheel_models()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for (inner, _, mean, std), src in zip(_PARTS, models, strict=True):
                data = _with_metadata(src.read_bytes(), inner.removesuffix(".tflite"), mean, std)
                z.writestr(zipfile.ZipInfo(inner, date_time=_ZIP_TIME), data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def ensure_pose_bundle(directory: str | os.PathLike[str] | None = None) -> Path:
    """The bundle for the installed wheel, built into ``directory`` (default: the cache) if absent."""
    models = wheel_models()
    path = cache_dir(directory) / "mediapipe" / bundle_name(models)
    if not path.is_file():
        log.info("building the MediaPipe pose bundle %s from the wheel's models", path)
        build_pose_bundle(path, models)
    return path


__all__ = ["RECIPE_VERSION", "wheel_models", "bundle_name", "build_pose_bundle", "ensure_pose_bundle"]
