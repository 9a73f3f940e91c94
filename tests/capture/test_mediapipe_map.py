"""The MediaPipe-33 -> NTU-25 map: its algebra on a hand-made pose, then MediaPipe's real
output for a real NTU take.

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
from pmr_stream.capture.mediapipe_map import estimate_root_position, mediapipe_to_ntu
from tests.poses import standing

log = logging.getLogger(__name__)

#: Anatomically plausible bone-length ranges (metres) for an adult, NTU-25 bones.
PLAUSIBLE = {
    "SpineMid": (0.15, 0.40), "SpineShoulder": (0.12, 0.35), "Neck": (0.02, 0.15), "Head": (0.05, 0.25),
    "ShoulderLeft": (0.08, 0.25), "ShoulderRight": (0.08, 0.25), "ElbowLeft": (0.20, 0.40),
    "ElbowRight": (0.20, 0.40), "WristLeft": (0.18, 0.35), "WristRight": (0.18, 0.35),
    "HipLeft": (0.03, 0.15), "HipRight": (0.03, 0.15), "KneeLeft": (0.30, 0.55), "KneeRight": (0.30, 0.55),
    "AnkleLeft": (0.28, 0.50), "AnkleRight": (0.28, 0.50), "FootLeft": (0.05, 0.25), "FootRight": (0.05, 0.25),
}  # fmt: skip


def mp_from_ntu(x: np.ndarray) -> np.ndarray:
    """A MediaPipe-like 33-landmark world pose built from an NTU pose (un-mirrored image axes)."""
    lm = np.zeros((33, 3))
    idx = {n: i for i, n in enumerate(sk.MP_JOINT_NAMES)}
    ntu = {n: x[i].astype(np.float64) for i, n in enumerate(sk.NTU_JOINT_NAMES)}
    for side, s in (("left", "Left"), ("right", "Right")):
        for mp_name, ntu_name in (("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"),
                                  ("hip", "Hip"), ("knee", "Knee"), ("ankle", "Ankle"),
                                  ("foot_index", "Foot"), ("thumb", "Thumb"), ("index", "HandTip"),
                                  ("pinky", "HandTip"), ("heel", "Ankle")):  # fmt: skip
            lm[idx[f"{side}_{mp_name}"]] = ntu[ntu_name + s]
    for n in ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
              "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right"):  # fmt: skip
        lm[idx[n]] = ntu["Head"]
    hip = (lm[idx["left_hip"]] + lm[idx["right_hip"]]) / 2
    lm = lm - hip
    return lm * np.array([-1.0, -1.0, 1.0])  # Kinect -> MediaPipe axes (x image-right, y down)


def test_mediapipe_map_axes_and_sides() -> None:
    x = standing()
    lm = mp_from_ntu(x)
    vis = np.full(33, 0.9)
    vis[sk.MP_JOINT_NAMES.index("left_wrist")] = 0.2
    joints, conf = mediapipe_to_ntu(lm, vis)
    assert joints.shape == (25, 3) and conf.shape == (25,)
    # the person's right is +x, up is +y in the Kinect convention
    assert joints[sk.Joint.SHOULDER_RIGHT, 0] > joints[sk.Joint.SHOULDER_LEFT, 0]
    assert (
        joints[sk.Joint.HEAD, 1]
        > joints[sk.Joint.SPINE_BASE, 1]
        > joints[sk.NTU_JOINT_NAMES.index("AnkleLeft"), 1]
    )
    # knees, ankles and elbows come through unchanged (up to the hip-centre translation)
    hip_centre = (x[sk.Joint.HIP_LEFT] + x[sk.Joint.HIP_RIGHT]) / 2
    for name in ("KneeLeft", "AnkleRight", "ElbowRight", "WristLeft"):
        i = sk.NTU_JOINT_NAMES.index(name)
        np.testing.assert_allclose(joints[i], x[i] - hip_centre, atol=1e-5)
    # hips are pulled towards the midline, as Kinect places them
    assert abs(joints[sk.Joint.HIP_LEFT, 0]) < abs(x[sk.Joint.HIP_LEFT, 0] - hip_centre[0])
    # confidence: the smallest visibility a joint is made from
    assert conf[sk.NTU_JOINT_NAMES.index("WristLeft")] == pytest.approx(0.2)
    assert conf[sk.NTU_JOINT_NAMES.index("HandLeft")] == pytest.approx(0.2)
    assert conf[sk.NTU_JOINT_NAMES.index("WristRight")] == pytest.approx(0.9)


def test_mediapipe_map_mirrored_image_swaps_labels() -> None:
    lm = mp_from_ntu(standing())
    plain, _ = mediapipe_to_ntu(lm)
    # what MediaPipe reports for the mirrored image of the same person: x flipped, labels swapped
    mirrored_lm = lm[list(sk.MEDIAPIPE33.mirror_permutation)] * np.array([-1.0, 1.0, 1.0])
    from_mirror, _ = mediapipe_to_ntu(mirrored_lm, mirrored=True)
    np.testing.assert_allclose(from_mirror, plain, atol=1e-6)


def test_mediapipe_map_batch_origin_and_errors() -> None:
    lm = np.stack([mp_from_ntu(standing())] * 4)
    joints, conf = mediapipe_to_ntu(lm, origin=np.array([0.1, 0.2, 3.0]))
    assert joints.shape == (4, 25, 3)
    np.testing.assert_allclose(joints[:, 0], np.tile([0.1, 0.2, 3.0], (4, 1)), atol=1e-6)
    image, _ = mediapipe_to_ntu(lm[0] * 0 + 0.5, kind="image")
    np.testing.assert_allclose(image, 0.5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(\.\.\., 33, 3\)"):
        mediapipe_to_ntu(np.zeros((25, 3)))
    bad = lm[0].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mediapipe_to_ntu(bad)
    with pytest.raises(ValueError, match="visibility must have shape"):
        mediapipe_to_ntu(lm[0], np.ones(25))
    with pytest.raises(ValueError, match="kind"):
        mediapipe_to_ntu(lm[0], kind="depth")  # type: ignore[arg-type]


def test_estimate_root_position_recovers_a_known_placement() -> None:
    # project a known skeleton with a pinhole camera and recover its depth
    lm = mp_from_ntu(standing())  # hip-centred, MediaPipe axes
    width, height, fov = 1280, 720, 70.0
    f = (width / 2) / np.tan(np.radians(fov) / 2)
    true_pos = np.array([0.4, -0.1, 3.2])  # in MediaPipe image axes (x right, y down)
    cam = lm + true_pos
    image = np.stack(
        [f * cam[:, 0] / cam[:, 2] / width + 0.5, f * cam[:, 1] / cam[:, 2] / height + 0.5, cam[:, 2]], -1
    )
    est = estimate_root_position(lm, image, (width, height), fov)
    np.testing.assert_allclose(est, [-0.4, 0.1, 3.2], atol=0.08)


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
    body = float(cos[:, sk.NTU_BODY_BONES].mean())
    overall = float(cos.mean())
    log.info("per-bone direction cosine MediaPipe vs Kinect: body %.3f, all 24 bones %.3f", body, overall)
    assert body > 0.85, f"body-bone direction cosine {body:.3f}"
    assert overall > 0.6, f"all-bone direction cosine {overall:.3f}"
    # Without undoing the mirror the same frames agree far worse: the check can fail.
    swapped = sk.mirror(mp_n)
    cos_swapped = (sk.bone_directions(kin_n) * sk.bone_directions(swapped)).sum(-1)
    assert float(cos_swapped[:, sk.NTU_BODY_BONES].mean()) < body - 0.05
    # The hip centre lands where Kinect saw the person (pinhole estimate, within 0.6 m).
    err = np.abs(mp_joints[:, 0] - kin[:, 0]).mean(axis=0)
    assert np.all(err < 0.6), f"hip-centre placement error per axis {err}"
