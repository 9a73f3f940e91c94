"""Recorded motion for benchmarks, start-up checks and tests: the real NTU RGB+D samples where a
checkout has them (``../shared/data/ntu`` beside the repository, or ``$PMR_NTU_DIR``; read in
place, never copied), else the shipped demo recording (a stand-in performer).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

#: The variable that names another folder of NTU ``.skeleton`` samples.
NTU_DIR_ENV = "PMR_NTU_DIR"
#: The NTU RGB+D sample's colour video in :func:`ntu_samples_dir` (1920x1080, 30 fps, 103 frames; may be absent).
NTU_SAMPLE_VIDEO = "S001C001P001R001A001_rgb.avi"


def ntu_samples_dir() -> Path:
    """``$PMR_NTU_DIR``, else ``shared/data/ntu`` beside the repository (it may not exist)."""
    env = os.environ.get(NTU_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ntu"


def ntu_sample_files(folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``.skeleton`` files of ``folder`` (default :func:`ntu_samples_dir`), sorted; ``[]`` if none."""
    d = Path(folder) if folder is not None else ntu_samples_dir()
    return sorted(d.glob("*.skeleton")) if d.is_dir() else []


def recorded_windows(
    n: int = 16, ntu_dir: str | os.PathLike[str] | None = None
) -> tuple[npt.NDArray[np.float32], str]:
    """Up to ``n`` normalised windows ``(n, 75, 25, 3)`` float32 (metres, relative to the first
    frame's SpineMid), cut every 25 frames from the first person of each recording in file order,
    and where they came from. The same windows every run."""
    from pmr_stream.assets import DEMO_CLIP
    from pmr_stream.formats.io import load_recording
    from pmr_stream.skeleton import crop_clip, normalize

    files = ntu_sample_files(ntu_dir)
    origin = f"NTU samples in {files[0].parent}" if files else "the demo recording"
    windows: list[npt.NDArray[np.float32]] = []
    for path in files or [Path(DEMO_CLIP)]:
        rec = load_recording(path)
        first = rec.joints[rec.present[:, 0], 0]
        windows += [normalize(w)[0] for w in crop_clip(first, "all", stride=25)] if len(first) else []
        if len(windows) >= n:
            break
    return np.stack(windows[:n]).astype(np.float32), origin


__all__ = ["NTU_DIR_ENV", "NTU_SAMPLE_VIDEO", "ntu_samples_dir", "ntu_sample_files", "recorded_windows"]
