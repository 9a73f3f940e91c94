"""Writing RGB frames to MP4/AVI (OpenCV), GIF (Pillow) or a PNG contact sheet.

Frames are ``(H, W, 3)`` uint8 RGB; conversion to BGR happens only for OpenCV.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from pmr_stream.render.options import ImageArray

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".gif", ".png")


def _check_frame(f: npt.ArrayLike, i: int, shape: tuple[int, ...] | None) -> ImageArray:
    a = np.asarray(f)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(
            f"frame {i}: expected a (H, W, 3) uint8 RGB image, got shape {a.shape} dtype {a.dtype}"
        )
    if shape is not None and a.shape != shape:
        raise ValueError(f"frame {i}: size {a.shape} differs from the first frame's {shape}")
    return a


def _frame_list(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike]) -> list[ImageArray]:
    out: list[ImageArray] = []
    shape = None
    for i, f in enumerate(_frame_source(frames)):
        a = _check_frame(f, i, shape)
        shape = a.shape
        out.append(a)
    if not out:
        raise ValueError("no frames given")
    return out


def _frame_source(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike]) -> Iterable[npt.ArrayLike]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames: expected (T, H, W, 3) uint8, got shape {frames.shape}")
        return frames
    return frames


def contact_sheet(
    frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike],
    columns: int = 4,
    max_frames: int = 12,
    gap: int = 4,
) -> ImageArray:
    """Tile up to ``max_frames`` evenly spaced frames into one picture.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB or an iterable of ``(H, W, 3)`` frames.
        columns: tiles per row (fewer if there are fewer frames).
        max_frames: most frames shown; first and last are always included.
        gap: pixels of light grey between tiles.

    Returns:
        ``(rows * H + (rows - 1) * gap, cols * W + (cols - 1) * gap, 3)`` uint8 RGB.
    """
    if columns < 1 or max_frames < 1 or gap < 0:
        raise ValueError(
            f"columns and max_frames must be >= 1 and gap >= 0, got {columns}, {max_frames}, {gap}"
        )
    fl = _frame_list(frames)
    n = min(len(fl), max_frames)
    idx = np.unique(np.round(np.linspace(0, len(fl) - 1, n)).astype(int))
    n = len(idx)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    h, w = fl[0].shape[:2]
    sheet = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 215, dtype=np.uint8)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = fl[i]
    return sheet


def write_video(
    frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike], path: str | os.PathLike[str], fps: float = 30.0
) -> Path:
    """Write RGB frames to ``path``; the format follows the extension.

    * ``.mp4`` / ``.avi``: OpenCV ``VideoWriter`` with fourcc ``mp4v``; frames
      are streamed, so an iterator of frames keeps memory flat.
    * ``.gif``: Pillow, looping forever, ``1000 / fps`` ms per frame. Pillow merges
      consecutive identical frames (adding up their durations).
    * ``.png``: a :func:`contact_sheet` of up to 12 evenly spaced frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB or an iterable of ``(H, W, 3)`` frames.
        path: output file; parent directories are created.
        fps: frames per second (> 0).

    Returns:
        The path written.

    Raises:
        ValueError: unknown extension, bad frames, no frames or bad fps.
        OSError: the writer could not open the file or wrote nothing.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise ValueError(
            f"unsupported output extension {path.suffix!r} for {path}; supported: {', '.join(VIDEO_EXTENSIONS)}"
        )
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext in (".mp4", ".avi"):
        _write_cv2(frames, path, fps)
    elif ext == ".gif":
        _write_gif(_frame_list(frames), path, fps)
    else:
        _write_png(contact_sheet(frames), path)
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"writing {path} produced no data")
    log.info("wrote %s", path)
    return path


def _write_cv2(frames: npt.NDArray[np.uint8] | Iterable[npt.ArrayLike], path: Path, fps: float) -> None:
    writer = None
    shape = None
    count = 0
    try:
        for i, f in enumerate(_frame_source(frames)):
            a = _check_frame(f, i, shape)
            if writer is None:
                shape = a.shape
                writer = cv2.VideoWriter(
                    str(path), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (a.shape[1], a.shape[0])
                )
                if not writer.isOpened():
                    raise OSError(
                        f"cv2.VideoWriter could not open {path} (fourcc mp4v, {a.shape[1]}x{a.shape[0]})"
                    )
            writer.write(cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise ValueError("no frames given")


def _write_gif(frames: list[ImageArray], path: Path, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], loop=0, duration=max(1, int(round(1000.0 / fps)))
    )


def _write_png(image: ImageArray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(image)).save(path)


__all__ = ["VIDEO_EXTENSIONS", "write_video", "contact_sheet"]
