"""The MediaPipe-33 -> NTU-25 map, checked on MediaPipe's real output for a real NTU take.

S001C001P001R001A001_rgb.avi is the Kinect v2 colour video of the same take as
S001C001P001R001A001.skeleton, so the mapped MediaPipe skeleton must agree in
posture with Kinect's, frame by frame.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from pmr_stream import skeleton as sk

log = logging.getLogger(__name__)

# Bones whose both ends Kinect tracks well on the body (hands, thumbs and hand tips
# are small and noisy in both systems and are reported separately).
BODY_BONES = [
    i for i, (c, p) in enumerate(sk.NTU25.bones)
    if sk.NTU_JOINT_NAMES[c] not in {"HandLeft", "HandRight", "HandTipLeft", "HandTipRight", "ThumbLeft", "ThumbRight"}
]  # fmt: skip

#: Anatomically plausible bone-length ranges (metres) for an adult, NTU-25 bones.
PLAUSIBLE = {
    "SpineMid": (0.15, 0.40), "SpineShoulder": (0.12, 0.35), "Neck": (0.02, 0.15), "Head": (0.05, 0.25),
    "ShoulderLeft": (0.08, 0.25), "ShoulderRight": (0.08, 0.25), "ElbowLeft": (0.20, 0.40),
    "ElbowRight": (0.20, 0.40), "WristLeft": (0.18, 0.35), "WristRight": (0.18, 0.35),
    "HipLeft": (0.03, 0.15), "HipRight": (0.03, 0.15), "KneeLeft": (0.30, 0.55), "KneeRight": (0.30, 0.55),
    "AnkleLeft": (0.28, 0.50), "AnkleRight": (0.28, 0.50), "FootLeft": (0.05, 0.25), "FootRight": (0.05, 0.25),
}  # fmt: skip


@pytest.fixture(scope="module")
def mediapipe_take(ntu_dir: Path) -> dict[str, np.ndarray]:
    pytest.importorskip("mediapipe", reason="mediapipe==0.10.21 is not installed")
    from pmr_stream.capture.pose import PoseOptions, iter_video_poses

    video = ntu_dir / "S001C001P001R001A001_rgb.avi"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    frames = list(iter_video_poses(video, PoseOptions(mirrored=True, horizontal_fov_deg=84.1)))
    found = [r for _, r in frames if r is not None]
    return {
        "num_frames": np.array(len(frames)),
        "joints": np.stack([r.joints for r in found]),
        "confidence": np.stack([r.confidence for r in found]),
        "index": np.array([i for i, r in frames if r is not None]),
    }


@pytest.mark.mediapipe
@pytest.mark.slow
def test_person_found_in_nearly_every_frame(mediapipe_take: dict[str, np.ndarray]) -> None:
    assert int(mediapipe_take["num_frames"]) == 103
    assert len(mediapipe_take["index"]) >= 100


@pytest.mark.mediapipe
@pytest.mark.slow
def test_bone_lengths_plausible_and_consistent(mediapipe_take: dict[str, np.ndarray]) -> None:
    lengths = sk.bone_lengths(mediapipe_take["joints"])  # (T, 24)
    names = [sk.NTU_JOINT_NAMES[c] for c, _ in sk.NTU25.bones]
    for b, name in enumerate(names):
        if name not in PLAUSIBLE:
            continue
        lo, hi = PLAUSIBLE[name]
        median = float(np.median(lengths[:, b]))
        assert lo <= median <= hi, f"{name}: median length {median:.3f} m outside [{lo}, {hi}]"
        # consistent over frames: the coefficient of variation of a body bone stays small
        cv = float(lengths[:, b].std() / lengths[:, b].mean())
        assert cv < 0.10, f"{name}: length varies by {cv:.1%} over the clip"
    # left/right symmetry of the limbs
    for a, b in (("ElbowLeft", "ElbowRight"), ("KneeLeft", "KneeRight"), ("AnkleLeft", "AnkleRight")):
        la, lb = np.median(lengths[:, names.index(a)]), np.median(lengths[:, names.index(b)])
        assert abs(la - lb) / max(la, lb) < 0.15, f"{a} {la:.3f} m vs {b} {lb:.3f} m"


@pytest.mark.mediapipe
@pytest.mark.slow
def test_posture_agrees_with_kinect(mediapipe_take: dict[str, np.ndarray], ntu_dir: Path) -> None:
    from pmr_stream.formats.ntu import read_skeleton

    kinect, _, _, _ = read_skeleton(ntu_dir / "S001C001P001R001A001.skeleton").to_arrays(max_persons=1)
    kin = kinect[mediapipe_take["index"], 0]  # (T, 25, 3) the frames MediaPipe found a person in
    mp_joints = mediapipe_take["joints"]
    # normalise both (translation by SpineMid of the first frame) and compare bone directions
    kin_n, _ = sk.normalize(kin)
    mp_n, _ = sk.normalize(mp_joints)
    cos = (sk.bone_directions(kin_n) * sk.bone_directions(mp_n)).sum(-1)  # (T, 24)
    body = float(cos[:, BODY_BONES].mean())
    overall = float(cos.mean())
    log.info("per-bone direction cosine MediaPipe vs Kinect: body %.3f, all 24 bones %.3f", body, overall)
    assert body > 0.85, f"body-bone direction cosine {body:.3f}"
    assert overall > 0.6, f"all-bone direction cosine {overall:.3f}"
    # Without undoing the mirror the same frames agree far worse: the check can fail.
    swapped = sk.mirror(mp_n)
    cos_swapped = (sk.bone_directions(kin_n) * sk.bone_directions(swapped)).sum(-1)
    assert float(cos_swapped[:, BODY_BONES].mean()) < body - 0.05
    # The hip centre lands where Kinect saw the person (pinhole estimate, within 0.6 m).
    err = np.abs(mp_joints[:, 0] - kin[:, 0]).mean(axis=0)
    assert np.all(err < 0.6), f"hip-centre placement error per axis {err}"
