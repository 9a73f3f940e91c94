"""Layouts, the MediaPipe map's algebra, normalisation and clip policies."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_ntu_tree() -> None:
    assert len(sk.NTU_JOINT_NAMES) == sk.J and len(sk.NTU25.bones) == sk.J - 1
    # the same 24 bones as the NTU authors' 1-based list (which names SpineBase-SpineMid twice)
    official = {frozenset((i, p - 1)) for i, p in enumerate(sk.NTU_PARENTS_1BASED)}
    assert official == {frozenset(b) for b in sk.NTU25.bones}
    # parents come before children in bone order
    seen = {0}
    for c, p in sk.NTU25.bones:
        assert p in seen
        seen.add(c)
    assert sk.chain_to_root(sk.HEAD) == [3, 2, 20, 1, 0]
    for e, n in zip(sk.NTU_END_EFFECTORS, sk.NTU_END_EFFECTOR_CHAIN, strict=True):
        assert len(sk.chain_to_root(e)) == n


def test_left_right_pairs_are_named_consistently() -> None:
    for a, b in sk.NTU_LEFT_RIGHT:
        assert sk.NTU_JOINT_NAMES[a].replace("Left", "") == sk.NTU_JOINT_NAMES[b].replace("Right", "")
    for a, b in sk.MEDIAPIPE33.left_right_pairs:
        assert sk.MP_JOINT_NAMES[a].replace("left", "") == sk.MP_JOINT_NAMES[b].replace("right", "")


def test_mirror_is_an_involution_and_keeps_bone_lengths() -> None:
    x = standing()
    m = sk.mirror(x)
    np.testing.assert_allclose(sk.mirror(m), x)
    np.testing.assert_allclose(np.sort(sk.bone_lengths(m)), np.sort(sk.bone_lengths(x)), atol=1e-6)
    # the standing pose is symmetric, so mirroring gives it back
    np.testing.assert_allclose(m, x, atol=1e-6)


def test_get_layout_unknown_name() -> None:
    assert sk.get_layout("ntu25") is sk.NTU25
    with pytest.raises(KeyError, match="unknown skeleton layout 'coco'"):
        sk.get_layout("coco")


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
    joints, conf = sk.mediapipe_to_ntu(lm, vis)
    assert joints.shape == (25, 3) and conf.shape == (25,)
    # the person's right is +x, up is +y in the Kinect convention
    assert joints[sk.SHOULDER_RIGHT, 0] > joints[sk.SHOULDER_LEFT, 0]
    assert joints[sk.HEAD, 1] > joints[sk.SPINE_BASE, 1] > joints[sk.NTU_JOINT_NAMES.index("AnkleLeft"), 1]
    # knees, ankles and elbows come through unchanged (up to the hip-centre translation)
    hip_centre = (x[sk.HIP_LEFT] + x[sk.HIP_RIGHT]) / 2
    for name in ("KneeLeft", "AnkleRight", "ElbowRight", "WristLeft"):
        i = sk.NTU_JOINT_NAMES.index(name)
        np.testing.assert_allclose(joints[i], x[i] - hip_centre, atol=1e-5)
    # hips are pulled towards the midline, as Kinect places them
    assert abs(joints[sk.HIP_LEFT, 0]) < abs(x[sk.HIP_LEFT, 0] - hip_centre[0])
    # confidence: the smallest visibility a joint is made from
    assert conf[sk.NTU_JOINT_NAMES.index("WristLeft")] == pytest.approx(0.2)
    assert conf[sk.NTU_JOINT_NAMES.index("HandLeft")] == pytest.approx(0.2)
    assert conf[sk.NTU_JOINT_NAMES.index("WristRight")] == pytest.approx(0.9)


def test_mediapipe_map_mirrored_image_swaps_labels() -> None:
    lm = mp_from_ntu(standing())
    plain, _ = sk.mediapipe_to_ntu(lm)
    # what MediaPipe reports for the mirrored image of the same person: x flipped, labels swapped
    mirrored_lm = lm[list(sk.MEDIAPIPE33.mirror_permutation)] * np.array([-1.0, 1.0, 1.0])
    from_mirror, _ = sk.mediapipe_to_ntu(mirrored_lm, mirrored=True)
    np.testing.assert_allclose(from_mirror, plain, atol=1e-6)


def test_mediapipe_map_batch_origin_and_errors() -> None:
    lm = np.stack([mp_from_ntu(standing())] * 4)
    joints, conf = sk.mediapipe_to_ntu(lm, origin=np.array([0.1, 0.2, 3.0]))
    assert joints.shape == (4, 25, 3)
    np.testing.assert_allclose(joints[:, 0], np.tile([0.1, 0.2, 3.0], (4, 1)), atol=1e-6)
    image, _ = sk.mediapipe_to_ntu(lm[0] * 0 + 0.5, kind="image")
    np.testing.assert_allclose(image, 0.5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(\.\.\., 33, 3\)"):
        sk.mediapipe_to_ntu(np.zeros((25, 3)))
    bad = lm[0].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sk.mediapipe_to_ntu(bad)
    with pytest.raises(ValueError, match="visibility must have shape"):
        sk.mediapipe_to_ntu(lm[0], np.ones(25))
    with pytest.raises(ValueError, match="kind"):
        sk.mediapipe_to_ntu(lm[0], kind="depth")  # type: ignore[arg-type]


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
    est = sk.estimate_root_position(lm, image, (width, height), fov)
    np.testing.assert_allclose(est, [-0.4, 0.1, 3.2], atol=0.08)


def test_normalize_and_denormalize_round_trip() -> None:
    rng = np.random.default_rng(0)
    clip = standing()[None] + rng.normal(0, 0.01, (30, 25, 3)).astype(np.float32)
    n, tf = sk.normalize(clip)
    np.testing.assert_allclose(n[0, sk.SPINE_MID], 0.0, atol=1e-6)
    np.testing.assert_allclose(sk.denormalize(n, tf), clip, atol=1e-5)
    # view alignment: a skeleton turned 60 degrees about the vertical is turned back to face the camera
    a = np.radians(60)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    turned = (clip - clip[0, 1]) @ rot.T + np.array([0.5, 0.0, 3.0])
    aligned, tf2 = sk.normalize(turned, align_view=True)
    base, _ = sk.normalize(clip, align_view=True)
    np.testing.assert_allclose(aligned, base, atol=1e-4)
    assert not np.allclose(sk.normalize(turned)[0], base, atol=1e-2)  # alignment did something
    np.testing.assert_allclose(sk.denormalize(aligned, tf2), turned, atol=1e-4)
    # several persons: one offset for all, relative placement kept
    two = np.stack([clip, clip + np.array([1.0, 0, 0], np.float32)], axis=1)
    n2, _ = sk.normalize(two)
    np.testing.assert_allclose(n2[:, 1] - n2[:, 0], np.broadcast_to([1.0, 0, 0], (30, 25, 3)), atol=1e-5)
    with pytest.raises(ValueError, match=r"\(T, 25, 3\)"):
        sk.normalize(np.zeros((10, 24, 3)))
    with pytest.raises(ValueError, match="empty"):
        sk.normalize(np.zeros((0, 25, 3)))


def test_clip_policies() -> None:
    clip = np.arange(40, dtype=np.float32)[:, None, None] * np.ones((1, 25, 3), np.float32)
    padded = sk.pad_to_length(clip)
    assert padded.shape == (75, 25, 3)
    assert np.all(padded[40:] == 39) and np.all(padded[:40] == clip)
    long = np.arange(200, dtype=np.float32)[:, None, None] * np.ones((1, 25, 3), np.float32)
    centre = sk.crop_clip(long, "centre")
    assert centre.shape == (75, 25, 3) and centre[0, 0, 0] == 62
    rng = np.random.default_rng(1)
    starts = {int(sk.crop_clip(long, "random", rng=rng)[0, 0, 0]) for _ in range(50)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 125
    windows = sk.crop_clip(long, "all", stride=50)
    assert windows.shape == (4, 75, 25, 3)
    assert [int(w[0, 0, 0]) for w in windows] == [0, 50, 100, 125]  # last window ends at the clip's end
    assert sk.window_starts(75) == [0] and sk.window_starts(76, stride=75) == [0, 1]
    with pytest.raises(ValueError, match="crop policy"):
        sk.crop_clip(long, "middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride"):
        sk.window_starts(100, stride=0)


def test_check_clip() -> None:
    assert sk.check_clip(np.zeros((5, 25, 3))).dtype == np.float32
    bad = np.zeros((5, 25, 3))
    bad[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match="my clip: contains NaN"):
        sk.check_clip(bad, "my clip")
