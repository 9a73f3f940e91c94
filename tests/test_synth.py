"""The synthetic NTU stand-in: bodies, actions, cameras, noise, files, stream and its two signals."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pmr_stream import synth as S
from pmr_stream.formats.ntu import read_skeleton
from pmr_stream.formats.ntu_dataset import parse_ntu_name
from pmr_stream.skeleton import NTU25, Joint, bone_directions, bone_lengths

CAST = S.make_performers(40, seed=0)
RIGHT = next(p for p in CAST if p.handedness == "right")
LEFT = next(p for p in CAST if p.handedness == "left")


# ----------------------------------------------------------------------------- performers


def test_performers_are_ntu_like_and_deterministic() -> None:
    assert [p.id for p in CAST] == list(range(1, 41))
    assert sum(p.sex == "male" for p in CAST) == 23 and sum(p.sex == "female" for p in CAST) == 17
    assert sum(p.handedness == "left" for p in CAST) == 4
    assert all(1.50 <= p.height_m <= 1.95 for p in CAST)
    assert all(len(p.bone_lengths) == 24 and min(p.bone_lengths) > 0.02 for p in CAST)
    male = np.mean([p.height_m for p in CAST if p.sex == "male"])
    female = np.mean([p.height_m for p in CAST if p.sex == "female"])
    assert male > female + 0.07
    assert S.make_performers(40, seed=0) == CAST
    assert S.make_performers(40, seed=1) != CAST


def test_body_proportions_depend_on_sex_and_are_nearly_symmetric() -> None:
    def rel(p: S.Performer, bone: int) -> float:
        return p.bone_lengths[bone] / p.height_m

    clav, hip = S.BONE_OF_JOINT[Joint.SHOULDER_RIGHT], S.BONE_OF_JOINT[Joint.HIP_RIGHT]
    males = [p for p in CAST if p.sex == "male"]
    females = [p for p in CAST if p.sex == "female"]
    assert np.mean([rel(p, clav) for p in males]) > 1.05 * np.mean([rel(p, clav) for p in females])
    assert np.mean([rel(p, hip) for p in females]) > 1.05 * np.mean([rel(p, hip) for p in males])
    for p in CAST:
        b = p.bones()
        for left, right in S.BONE_MIRROR_PAIRS:
            assert abs(b[left] / b[right] - 1) < 0.04
    # individuals differ beyond their height
    scaled = np.array([p.bones() / p.height_m for p in CAST])
    assert np.median(scaled.std(axis=0) / scaled.mean(axis=0)) > 0.02


# ----------------------------------------------------------------------------- clips


def test_bone_lengths_constant_without_noise_and_equal_to_the_performers() -> None:
    for k, action in enumerate(S.ACTION_NAMES):
        p = CAST[k % 40]
        clip = S.generate_clip(p, action, camera=1 + k % 3, replication=1, seed=3, noise=False)
        lengths = bone_lengths(clip)  # (T, 24)
        np.testing.assert_allclose(lengths, np.broadcast_to(p.bones(), lengths.shape), atol=2e-5)
    noisy = bone_lengths(S.generate_clip(RIGHT, "wave", 1, 1, seed=3))
    assert noisy.std(axis=0).mean() > 0.003  # Kinect noise makes them wobble


def test_same_seed_same_bytes_other_seed_other_motion() -> None:
    a = S.generate_clip_with_confidence(CAST[4], "clap", 2, 1, seed=7)
    b = S.generate_clip_with_confidence(CAST[4], "clap", 2, 1, seed=7)
    assert a.joints.tobytes() == b.joints.tobytes() and a.confidence.tobytes() == b.confidence.tobytes()
    c = S.generate_clip(CAST[4], "clap", 2, 1, seed=8)
    assert c.shape != a.joints.shape or not np.allclose(c, a.joints)
    assert a.joints.dtype == np.float32 and a.joints.shape[1:] == (25, 3)


def test_clip_lengths_are_ntu_like() -> None:
    lengths = [
        S.generate_clip(p, a, 1, r, seed=0, noise=False).shape[0]
        for p in CAST[:3] for a in S.ACTION_NAMES for r in (1, 2)
    ]  # fmt: skip
    assert min(lengths) >= S.MIN_FRAMES and max(lengths) <= S.MAX_FRAMES
    assert np.std(lengths) > 10  # they vary with action, tempo and repetitions


def test_every_action_moves_differently() -> None:
    feats = []
    for a in S.ACTION_NAMES:
        per_performer = []
        for p in CAST[:3]:
            d = bone_directions(S.generate_clip(p, a, 1, 1, seed=0, noise=False))  # (T, 24, 3)
            per_performer.append(np.concatenate([d.mean(0).ravel(), d.std(0).ravel()]))
        feats.append(np.mean(per_performer, axis=0))
    f = np.array(feats)
    dist = np.linalg.norm(f[:, None] - f[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    assert len(S.ACTION_NAMES) >= 12
    assert dist.min() > 0.3, "two actions have nearly the same mean pose features"
    for required in ("drink", "wave", "clap", "jump", "squat", "kick", "punch", "bow", "walk_in_place",
                     "raise_both_arms", "point", "sit_down"):  # fmt: skip
        assert required in S.ACTION_NAMES


def _hand_head_distance(clip: np.ndarray, hand: int) -> float:
    return float(np.linalg.norm(clip[:, hand] - clip[:, Joint.HEAD], axis=-1).min())


def test_handedness_mirrors_one_handed_actions() -> None:
    left = S.generate_clip(LEFT, "drink", 1, 1, seed=0, noise=False)
    right = S.generate_clip(RIGHT, "drink", 1, 1, seed=0, noise=False)
    assert (
        _hand_head_distance(left, Joint.HAND_LEFT) < 0.2
        and _hand_head_distance(left, Joint.HAND_RIGHT) > 0.35
    )
    assert (
        _hand_head_distance(right, Joint.HAND_RIGHT) < 0.2
        and _hand_head_distance(right, Joint.HAND_LEFT) > 0.35
    )
    kick = S.generate_clip_with_confidence(LEFT, "kick", 1, 1, seed=0, noise=False).body
    assert kick[:, Joint.FOOT_LEFT, 1].max() > kick[:, Joint.FOOT_RIGHT, 1].max() + 0.2  # the left foot kicks


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R minimising |a @ R.T - b| for centred point sets (N, 3)."""
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def test_camera_views_differ_by_a_rotation_about_the_vertical() -> None:
    clips = {
        c: S.generate_clip_with_confidence(CAST[2], "wave", c, 1, seed=5, noise=False) for c in (1, 2, 3)
    }
    assert clips[1].joints.shape == clips[2].joints.shape  # the cameras film the same performance
    level = {}
    for c, clip in clips.items():
        tilt = S.rot_x(np.radians(clip.camera_pose.pitch_deg))
        pts = clip.joints.reshape(-1, 3).astype(np.float64) @ tilt.T  # undo the downward tilt
        level[c] = pts - pts.mean(axis=0)
    for c, yaw in ((2, 45.0), (3, -45.0)):
        r = _kabsch(level[1], level[c])  # camera c = r @ camera 1
        np.testing.assert_allclose(level[1] @ r.T, level[c], atol=1e-4)
        assert abs(r[1, 1]) > 0.9999  # about the vertical axis
        angle = np.degrees(np.arctan2(r[0, 2], r[0, 0]))
        # a camera turned by +yaw sees the world turned by -yaw
        assert angle == pytest.approx(-yaw, abs=0.1)


def test_kinect_like_placement_feet_on_the_floor_and_flight() -> None:
    for a in ("drink", "squat", "sit_down", "walk_in_place", "kick", "bow"):
        clip = S.generate_clip_with_confidence(CAST[6], a, 1, 2, seed=0)
        base = clip.joints[:, Joint.SPINE_BASE]
        assert 2.2 < base[:, 2].mean() < 4.2  # metres from the camera
        assert -0.8 < base[:, 1].mean() < 0.8
        lowest_foot = clip.body[
            :, [Joint.ANKLE_LEFT, Joint.FOOT_LEFT, Joint.ANKLE_RIGHT, Joint.FOOT_RIGHT], 1
        ].min(axis=1)
        assert np.all(np.abs(lowest_foot - S.FOOT_CLEARANCE_M) < 0.01)
        head = clip.body[:, Joint.HEAD, 1]
        assert head.min() > 0.6 and head[0] > 1.2  # starts upright, head above the hips
    jump = S.generate_clip_with_confidence(CAST[6], "jump", 1, 1, seed=0, noise=False).body
    assert jump[:, [Joint.FOOT_LEFT, Joint.FOOT_RIGHT], 1].min(axis=1).max() > 0.08  # both feet off the floor
    sit = S.generate_clip_with_confidence(CAST[6], "sit_down", 1, 1, seed=0, noise=False).body
    assert (
        sit[-1, Joint.SPINE_BASE, 1] < sit[0, Joint.SPINE_BASE, 1] - 0.25
    )  # the pelvis ends much lower (seated)


def test_confidence_marks_glitches_and_inferred_joints() -> None:
    noisy = [S.generate_clip_with_confidence(CAST[k], "punch", 1, 1, seed=0) for k in range(6)]
    conf = np.concatenate([c.confidence for c in noisy])
    assert conf.shape[1] == 25 and set(np.unique(conf)) <= {0.5, 1.0}
    assert (conf[:, [Joint.HAND_TIP_LEFT, Joint.HAND_TIP_RIGHT]] < 1).mean() > 0.02
    assert (conf[:, [Joint.SPINE_BASE, Joint.SPINE_MID, Joint.HEAD]] == 1).all()
    clean = S.generate_clip_with_confidence(CAST[0], "punch", 1, 1, seed=0, noise=False)
    assert (clean.confidence == 1).all()


# ----------------------------------------------------------------------------- files

SMALL = S.StandinSpec(performers=2, actions=("wave", "squat"), cameras=(1, 2, 3), replications=1, seed=11)


def test_skeleton_files_are_named_and_readable(tmp_path: Path) -> None:
    out = S.generate_dataset(SMALL, tmp_path / "standin", fmt="skeleton", progress=False)
    files = sorted(out.glob("*.skeleton"))
    assert len(files) == SMALL.num_clips == 12
    data = S.generate_standin(SMALL)
    for f in files:
        assert re.fullmatch(r"S001C00[123]P00[12]R001A0(02|05)\.skeleton", f.name)
        name = parse_ntu_name(f)
        i = list(data.names).index(name.stem)
        joints, conf, present, _ = read_skeleton(f).to_arrays()
        assert joints.shape[1] == 1 and present.all()
        np.testing.assert_allclose(joints[:, 0], data.clip(i), atol=1e-6)
        np.testing.assert_array_equal(conf[:, 0], data.clip_confidence(i))
        assert S.ACTION_NAMES[name.action - 1] in SMALL.actions
    labels = json.loads((out / "labels.json").read_text())
    assert labels["action_names"] == list(S.ACTION_NAMES)
    assert labels["split"]["train_cameras"] == [2, 3] and labels["split"]["test_cameras"] == [1]
    perf = json.loads((out / "performers.json").read_text())["performers"]
    assert [p["id"] for p in perf] == [1, 2] and {p["gender"] for p in perf} <= {"male", "female"}


def test_npz_loads_without_pickle_and_is_deterministic(tmp_path: Path) -> None:
    path = S.generate_dataset(SMALL, tmp_path, fmt="npz", progress=False)
    again = S.generate_dataset(SMALL, tmp_path / "again.npz", fmt="npz", progress=False)
    with np.load(path, allow_pickle=False) as z, np.load(again, allow_pickle=False) as z2:
        for key in z.files:
            assert z[key].tobytes() == z2[key].tobytes(), key
        n = len(z["action"])
        assert n == 12 and z["offsets"].shape == (n + 1,) and z["offsets"][-1] == len(z["joints"])
        assert z["joints"].dtype == np.float32 and z["joints"].shape[1:] == (25, 3)
        assert z["offsets"].dtype == np.int64
        for i, stem in enumerate(z["names"]):
            name = parse_ntu_name(str(stem))
            assert (z["action"][i], z["performer"][i], z["camera"][i]) == (
                name.action - 1,
                name.performer - 1,
                name.camera,
            )
            assert z["split"][i] == ("test" if name.camera == 1 else "train")
        assert list(z["action_names"]) == list(S.ACTION_NAMES)
        assert set(z["gender"]) <= {0, 1} and len(z["performer_gender"]) == 2


# ----------------------------------------------------------------------------- stream and imports


def test_synthetic_stream_is_endless_smooth_and_deterministic() -> None:
    stream = S.SyntheticStream(CAST[1], actions=["wave", "sit_down", "clap"], seed=2, noise=False)
    frames = stream.take(400)
    assert frames.shape == (400, 25, 3) and frames.dtype == np.float32 and np.isfinite(frames).all()
    step = np.linalg.norm(np.diff(frames[:, Joint.SPINE_BASE], axis=0), axis=-1)
    assert step.max() < 0.05  # no jumps where one action hands over to the next (30 fps)
    seen = set()
    for _ in range(300):
        next(stream)
        seen.add(stream.current_action)
    assert len(seen) >= 2
    again = S.SyntheticStream(CAST[1], actions=["wave", "sit_down", "clap"], seed=2, noise=False).take(400)
    assert again.tobytes() == frames.tobytes()
    assert S.SyntheticStream(seed=3).take(5).shape == (5, 25, 3)


def test_prime_generates_ahead_without_changing_the_frames() -> None:
    plain = S.SyntheticStream(CAST[2], seed=4).take(200)
    primed = S.SyntheticStream(CAST[2], seed=4)
    primed.prime()
    assert len(primed._buffer) > 30  # a whole action segment is ready before the first frame is asked for
    primed.prime()  # a second call while frames are buffered does nothing
    assert primed.take(200).tobytes() == plain.tobytes()


def test_synth_does_not_import_torch() -> None:
    code = "import sys, pmr_stream.synth; sys.exit('torch' in sys.modules or 'training' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_forward_kinematics_respects_the_tree() -> None:
    angles = np.radians(np.random.default_rng(0).normal(0, 40, (5, 25, 3)))
    x = S.forward_kinematics(S.euler_to_matrix(angles), RIGHT.bones())
    np.testing.assert_allclose(bone_lengths(x), np.broadcast_to(RIGHT.bones(), (5, 24)), atol=1e-6)
    assert len(NTU25.bones) == 24


# ----------------------------------------------------------------------------- both signals


def test_standin_carries_identity_and_action_signals() -> None:
    from pmr_tools.standin_signals import measure_signals

    data = S.generate_standin(S.StandinSpec(performers=12, replications=1, seed=0))
    clips = [data.clip(i) for i in range(len(data))]
    sig = measure_signals(clips, data.action, data.performer, data.camera, len(data.action_names))
    assert sig.num_performers == 12 and sig.reid_chance == pytest.approx(1 / 12)
    assert sig.reid_top1 > 0.6, sig  # chance 8 %
    assert sig.action_top1 > 0.8, sig  # chance 5 %
