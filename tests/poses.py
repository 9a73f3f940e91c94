"""Hand-made skeletons for tests."""

from __future__ import annotations

import numpy as np

from pmr_stream import skeleton as sk


def standing() -> np.ndarray:
    """A plausible standing NTU-25 skeleton facing the camera, 3 m away (metres, Kinect convention)."""
    j = {
        "SpineBase": (0, 0.0, 3), "SpineMid": (0, 0.28, 3), "SpineShoulder": (0, 0.48, 3), "Neck": (0, 0.55, 3),
        "Head": (0, 0.68, 3), "ShoulderLeft": (-0.17, 0.45, 3), "ElbowLeft": (-0.2, 0.18, 3),
        "WristLeft": (-0.21, -0.06, 3), "HandLeft": (-0.21, -0.12, 3), "HandTipLeft": (-0.21, -0.2, 3),
        "ThumbLeft": (-0.18, -0.13, 2.97), "ShoulderRight": (0.17, 0.45, 3), "ElbowRight": (0.2, 0.18, 3),
        "WristRight": (0.21, -0.06, 3), "HandRight": (0.21, -0.12, 3), "HandTipRight": (0.21, -0.2, 3),
        "ThumbRight": (0.18, -0.13, 2.97), "HipLeft": (-0.08, -0.02, 3), "KneeLeft": (-0.09, -0.42, 3),
        "AnkleLeft": (-0.09, -0.8, 3.02), "FootLeft": (-0.09, -0.84, 2.9), "HipRight": (0.08, -0.02, 3),
        "KneeRight": (0.09, -0.42, 3), "AnkleRight": (0.09, -0.8, 3.02), "FootRight": (0.09, -0.84, 2.9),
    }  # fmt: skip
    return np.array([j[n] for n in sk.NTU_JOINT_NAMES], dtype=np.float32)
