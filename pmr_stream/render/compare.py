"""Side-by-side videos of two recordings on disk (what ``pmr compare`` and ``pmr stream`` write).

from pmr_stream.render import RenderOptions, compare_recordings

video = compare_recordings("raw.npz", "anon.npz", "out/side_by_side.mp4", RenderOptions(width=480))
print(video.path, video.frames)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pmr_stream.formats.io import load_recording
from pmr_stream.formats.recording import Recording
from pmr_stream.render.draw import iter_compare_frames
from pmr_stream.render.options import ImageArray, RenderOptions
from pmr_stream.render.video import write_video

#: Frame rate (frames per second) of a video whose recording has none (fewer than two frames).
DEFAULT_FPS: float = 30.0


@dataclass(frozen=True)
class WrittenVideo:
    """What :func:`compare_recordings` wrote: the file, its number of frames and its frame
    rate (frames per second)."""

    path: Path
    frames: int
    fps: float


def select_persons(
    rec: Recording, person: int | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Joints ``(T, P, J, 3)`` metres, confidence ``(T, P, J)`` and presence ``(T, P)`` of
    ``rec``: of all its persons (``person`` None) or of person ``person`` only (``P = 1``).

    Raises:
        ValueError: ``person`` is not one of the recording's persons (0-based).
    """
    if person is None:
        return rec.joints, rec.confidence, rec.present
    if not 0 <= person < rec.num_persons:
        raise ValueError(f"person {person} out of range: the recording has {rec.num_persons} person(s)")
    sl = slice(person, person + 1)
    return rec.joints[:, sl], rec.confidence[:, sl], rec.present[:, sl]


def compare_recordings(
    original: str | os.PathLike[str],
    anonymized: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: RenderOptions | None = None,
    *,
    labels: tuple[str, str] = ("original", "anonymized"),
    person: int | None = None,
    fmt: str | None = None,
    fps: float | None = None,
) -> WrittenVideo:
    """Render two recordings side by side (one camera fitted to both) and write the video.

    Args:
        original, anonymized: recordings (``.skeleton``, ``.npz`` or an SGN/ST-GCN array
            file), drawn left and right. If their lengths differ the shorter is used.
        output: ``.mp4``, ``.avi``, ``.gif`` or ``.png`` (a contact sheet); see :func:`write_video`.
        options: per-panel drawing options (each panel ``options.width`` wide); the
            video is ``2 * width`` by ``height`` pixels.
        labels: panel titles (left, right).
        person: draw only this person (0-based) of each recording; default all.
        fmt: input format of both (``"skeleton"``, ``"npz"``, ``"sgn"``, ``"stgcn"``;
            default: guessed from each file).
        fps: frame rate of the video; default the original's, else :data:`DEFAULT_FPS`.

    Returns:
        The file written, its number of frames and its frame rate.

    Raises:
        ValueError, OSError: a recording cannot be read, ``person`` is out of range, or
            the video cannot be written (see :func:`write_video`).
    """
    a = load_recording(original, fmt)
    b = load_recording(anonymized, fmt)
    ja, ca, pa = select_persons(a, person)
    jb, cb, pb = select_persons(b, person)
    frames = iter_compare_frames(
        ja, jb, labels=labels, options=options,
        confidence_a=ca, confidence_b=cb, present_a=pa, present_b=pb,
    )  # fmt: skip
    count = 0

    def counted() -> Iterator[ImageArray]:
        nonlocal count
        for frame in frames:
            count += 1
            yield frame

    rate = fps or a.fps or DEFAULT_FPS
    path = write_video(counted(), output, fps=rate)
    return WrittenVideo(path, count, rate)


__all__ = ["DEFAULT_FPS", "WrittenVideo", "select_persons", "compare_recordings"]
