"""The non-learned baseline: every bone set to the dummy's length by forward kinematics.

Each frame keeps its root (SpineBase) position and every bone's direction (so its joint
angles); only the lengths change, to the dummy's median bone lengths. Body shape is
gone, gait and posture stay. It is what the learned model has to beat.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pmr_stream.skeleton import C, J, median_bone_lengths, retarget_bones


def fk_anonymize(windows: npt.ArrayLike, dummies: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Batch form for the evaluation: ``windows`` ``(N, T, 25, 3)``, one dummy window per row ``(N, T', 25, 3)``."""
    w = np.asarray(windows, dtype=np.float32)
    d = np.asarray(dummies, dtype=np.float32)
    if w.ndim != 4 or w.shape[2:] != (J, C) or d.ndim != 4 or len(d) != len(w):
        raise ValueError(
            f"fk_anonymize: windows (N, T, {J}, 3) and dummies (N, T', {J}, 3) expected, got {w.shape}, {d.shape}"
        )
    lengths = median_bone_lengths(d)  # (N, 24)
    return retarget_bones(w, lengths[:, None, :])


__all__ = ["fk_anonymize"]
