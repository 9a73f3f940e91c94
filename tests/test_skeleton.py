"""Layouts, joints and bones, normalisation and clip policies."""

from __future__ import annotations

import numpy as np
import pytest

from pmr_stream import skeleton as sk
from tests.poses import standing


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
    assert sk.chain_to_root(sk.Joint.HEAD) == [3, 2, 20, 1, 0]
    for e, n in zip(sk.NTU_END_EFFECTORS, sk.NTU_END_EFFECTOR_CHAIN, strict=True):
        assert len(sk.chain_to_root(e)) == n


def test_joint_enum_names_the_ntu_joints() -> None:
    assert len(sk.Joint) == sk.J and [int(j) for j in sk.Joint] == list(range(sk.J))
    assert sk.NTU_JOINT_NAMES[sk.Joint.HAND_TIP_LEFT] == "HandTipLeft"
    assert sk.NTU_JOINT_NAMES[sk.Joint.SPINE_SHOULDER] == "SpineShoulder"
    assert sk.NTU25.index("ThumbRight") == sk.Joint.THUMB_RIGHT


def test_body_bones_are_every_bone_but_the_hands() -> None:
    ends = [sk.NTU_JOINT_NAMES[c] for c, _ in sk.NTU25.bones[sk.NTU_BODY_BONES]]
    hands = [sk.NTU_JOINT_NAMES[c] for c, _ in sk.NTU25.bones[sk.NTU_BODY_BONES.stop :]]
    assert len(ends) == 18 and len(hands) == 6
    assert all(n.startswith(("Hand", "Thumb")) for n in hands)
    assert not any(n.startswith(("Hand", "Thumb")) for n in ends)


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


def test_normalize_and_denormalize_round_trip() -> None:
    rng = np.random.default_rng(0)
    clip = standing()[None] + rng.normal(0, 0.01, (30, 25, 3)).astype(np.float32)
    n, tf = sk.normalize(clip)
    np.testing.assert_allclose(n[0, sk.Joint.SPINE_MID], 0.0, atol=1e-6)
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
