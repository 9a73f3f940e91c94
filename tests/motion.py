"""Windows of recorded motion for tests that want realistic input (parity, graph checks, dummies).

The real NTU RGB+D samples are used when they are there (:data:`tests.ntu_samples.NTU_DIR`),
else the shipped demo recording (a stand-in performer): the same windows every run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.skeleton import crop_clip, normalize
from tests.ntu_samples import NTU_DIR


def motion_windows(n: int) -> npt.NDArray[np.float32]:
    """Up to ``n`` normalised windows ``(n, 75, 25, 3)`` float32 (metres, relative to the first
    frame's SpineMid), cut every 25 frames from the first person of each recording in file order."""
    files = sorted(NTU_DIR.glob("*.skeleton")) if NTU_DIR.is_dir() else []
    windows: list[np.ndarray] = []
    for path in files or [DEMO_CLIP]:
        rec = load_recording(path)
        first = rec.joints[rec.present[:, 0], 0]
        windows += [normalize(w)[0] for w in crop_clip(first, "all", stride=25)] if len(first) else []
        if len(windows) >= n:
            break
    return np.stack(windows[:n]).astype(np.float32)
