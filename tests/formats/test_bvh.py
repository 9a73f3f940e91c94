"""BVH export (``pmr convert --to bvh``), checked with an independent reader.

bvhio (PyPI, the ``dev`` extra) parses the files and computes every joint's world position by
its own forward kinematics; the positions are compared with the recording's after the
documented transform (:func:`pmr_stream.formats.bvh.from_bvh_axes`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pmr_stream.cli import main
from pmr_stream.formats import Recording, bvh_ik, load_recording, save_recording
from pmr_stream.formats.bvh import (
    UNITS,
    BvhOptions,
    BvhSkeleton,
    bvh_text,
    channel_names,
    from_bvh_axes,
    to_bvh_axes,
    write_bvh_files,
)
from pmr_stream.skeleton import NTU25, NTU_JOINT_NAMES, median_bone_lengths, retarget_bones
from pmr_stream.synth import make_performers
from pmr_stream.synth.clips import generate_clip

bvhio = pytest.importorskip(
    "bvhio", reason="the independent BVH reader bvhio is not installed (pip install -e '.[dev]')"
)

#: Bones whose parent has one child: their directions are reproduced exactly.
ONE_CHILD_BONES = [b for b, (_, p) in enumerate(NTU25.bones) if len(bvh_ik.CHILDREN[p]) == 1]


def read_back(path: str | Path, unit: str = "cm") -> tuple[npt.NDArray[np.float64], int, float]:
    """bvhio's joint positions ``(T, 25, 3)`` in Kinect-convention metres, its frame count and frame time."""
    container = bvhio.readAsBvh(str(path))
    root = bvhio.readAsHierarchy(str(path))
    layout = [j for j, _, _ in root.layout()]
    by_name = {j.Name: j for j in layout}
    assert sorted(by_name) == sorted(NTU_JOINT_NAMES)
    out = np.zeros((container.FrameCount, NTU25.num_joints, 3))
    for f in range(container.FrameCount):
        root.loadPose(f)
        for k, name in enumerate(NTU_JOINT_NAMES):
            p = by_name[name].PositionWorld
            out[f, k] = (p.x, p.y, p.z)
    return from_bvh_axes(out, BvhOptions(unit=unit)), container.FrameCount, container.FrameTime


def errors_mm(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1) * 1000.0


def angles_deg(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The angle between each bone of ``a`` and of ``b`` ``(..., 24)`` in degrees (float64)."""
    child, parent = [c for c, _ in NTU25.bones], [q for _, q in NTU25.bones]
    va, vb = (
        np.asarray(x, np.float64)[..., child, :] - np.asarray(x, np.float64)[..., parent, :] for x in (a, b)
    )
    cos = np.sum(va * vb, axis=-1) / (np.linalg.norm(va, axis=-1) * np.linalg.norm(vb, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def synthetic(action: str = "sit_down", performer: int = 1) -> npt.NDArray[np.float32]:
    """Exact forward kinematics of a stand-in performer (rigid hips, shoulders and hands)."""
    return generate_clip(make_performers(3, 0)[performer], action, 2, 1, noise=False)


@pytest.mark.parametrize("action", ["sit_down", "wave", "kick"])
def test_synthetic_motion_comes_back_exactly(tmp_path: Path, action: str) -> None:
    clip = synthetic(action)
    out = tmp_path / "s.bvh"
    [written] = write_bvh_files(Recording.from_clip(clip), out)
    back, frames, frame_time = read_back(out)
    assert (written.frames, written.held, frames) == (len(clip), 0, len(clip))
    assert frame_time == pytest.approx(1 / 30, abs=1e-8)
    assert errors_mm(back, clip).max() < 0.05  # float32 in the reader: ~1e-4 mm at 3 m
    assert angles_deg(back, clip).max() < 0.01  # the reader's float32: ~1e-3 degrees


def test_real_ntu_take_round_trip(ntu_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two persons -> two files; one-child bones exact, the branching joints' residual bounded."""
    src = ntu_dir / "S001C003P008R002A058.skeleton"
    rec = load_recording(src)
    assert main(["convert", "--input", str(src), "--output", str(tmp_path / "take.bvh")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take_person0.bvh", "take_person1.bvh"]
    assert "not an anonymized recording" in capsys.readouterr().err
    for p in range(2):
        x, pres = rec.joints[:, p], rec.present[:, p]
        back, frames, _ = read_back(tmp_path / f"take_person{p}.bvh")
        assert frames == rec.num_frames and pres.all()
        ang = angles_deg(back, x)
        assert ang[:, ONE_CHILD_BONES].max() < 0.01  # bone directions exact
        assert ang.max() < 60.0  # hand and shoulder bones: the best one rotation can do
        assert errors_mm(back[:, 0], x[:, 0]).max() < 0.01  # the root exactly
        # against the input with its bones set to the file's lengths: only the IK's residual
        same_bones = retarget_bones(x, median_bone_lengths(x))
        e = errors_mm(back, same_bones)
        assert e.max() < 50.0 and e.mean() < 15.0, (e.max(), e.mean())  # measured 36-41 / 8.6-9.4 mm
        bones_back = np.linalg.norm(
            back[:, [c for c, _ in NTU25.bones]] - back[:, [q for _, q in NTU25.bones]], axis=-1
        )
        np.testing.assert_allclose(
            bones_back, np.broadcast_to(median_bone_lengths(x), bones_back.shape), atol=1e-6
        )


def test_anonymized_like_motion_has_its_bones_everywhere(ntu_dir: Path, tmp_path: Path) -> None:
    """Motion with the same bones in every frame (as ``--bones dummy`` writes): positions come back
    within the branching joints' residual of the input itself."""
    rec = load_recording(ntu_dir / "S001C001P001R001A001.skeleton")
    dummy = synthetic("wave", performer=2)
    x = retarget_bones(rec.joints[:, 0], median_bone_lengths(dummy))
    anon = Recording.from_clip(x, metadata={"anonymized": True})
    [written] = write_bvh_files(anon, tmp_path / "a.bvh")
    back, _, _ = read_back(written.path)
    e = errors_mm(back, x)
    assert e.max() < 50.0 and e.mean() < 15.0, (e.max(), e.mean())
    assert angles_deg(back, x)[:, ONE_CHILD_BONES].max() < 0.01


def test_hierarchy_from_a_dummy_body(tmp_path: Path) -> None:
    clip, dummy = synthetic("wave", performer=0), synthetic("kick", performer=2)
    [written] = write_bvh_files(Recording.from_clip(clip), tmp_path / "d.bvh", body=dummy)
    back, _, _ = read_back(written.path)
    lengths = np.linalg.norm(
        back[:, [c for c, _ in NTU25.bones]] - back[:, [q for _, q in NTU25.bones]], axis=-1
    )
    np.testing.assert_allclose(lengths[0], median_bone_lengths(dummy), atol=1e-6)  # the dummy's bones
    assert angles_deg(back, clip).max() < 0.01  # the motion's directions (rigid girdles)


def test_header_hierarchy_and_units(tmp_path: Path) -> None:
    clip = synthetic("wave")
    rec = Recording.from_clip(clip, fps=25.0)
    skeleton = BvhSkeleton.from_body(clip)
    texts = {}
    for unit in UNITS:
        [w] = write_bvh_files(rec, tmp_path / f"{unit}.bvh", opts=BvhOptions(unit=unit))
        texts[unit] = Path(w.path).read_text()
        back, frames, frame_time = read_back(w.path, unit)
        assert frames == len(clip) and frame_time == pytest.approx(0.04, abs=1e-8)
        assert errors_mm(back, clip).max() < 0.05
    text = texts["cm"]
    lines = text.splitlines()
    assert lines[:3] == ["HIERARCHY", "ROOT SpineBase", "{"]
    names = re.findall(r"^\s*(?:ROOT|JOINT) (\w+)$", text, flags=re.M)
    assert sorted(names) == sorted(NTU_JOINT_NAMES) and names[0] == "SpineBase"
    channels = re.findall(r"^\s*CHANNELS (\d) (.*)$", text, flags=re.M)
    assert channels[0] == ("6", "Xposition Yposition Zposition Yrotation Zrotation Xrotation")
    assert all(
        n == "3" and c.split() == list(channel_names(NTU_JOINT_NAMES.index(j)))
        for (n, c), j in zip(channels[1:], names[1:], strict=True)
    )
    assert text.count("End Site") == 7  # Head, two HandTips, two Thumbs, two Feet
    assert "MOTION\nFrames: 88\nFrame Time: 0.04000000\n" in text
    motion = lines[lines.index("Frame Time: 0.04000000") + 1 :]
    assert len(motion) == len(clip) and all(len(m.split()) == 6 + 3 * 24 for m in motion)
    offsets = np.array([[float(v) for v in m] for m in re.findall(r"OFFSET (\S+) (\S+) (\S+)", text)])
    joint_offsets = offsets[
        [i for i, line in enumerate(re.findall(r"(End Site|ROOT|JOINT)", text)) if line != "End Site"]
    ]
    order = [NTU_JOINT_NAMES.index(n) for n in names]
    np.testing.assert_allclose(joint_offsets, skeleton.offsets()[order], atol=1e-6)
    bone_of = {c: b for b, (c, _) in enumerate(NTU25.bones)}
    lengths_cm = np.linalg.norm(joint_offsets[1:], axis=-1)
    np.testing.assert_allclose(
        lengths_cm, median_bone_lengths(clip)[[bone_of[j] for j in order[1:]]] * 100, atol=1e-5
    )
    mm = np.array([[float(v) for v in m] for m in re.findall(r"OFFSET (\S+) (\S+) (\S+)", texts["mm"])])
    np.testing.assert_allclose(mm, offsets * 10, atol=1e-5)


def test_gaps_hold_the_last_pose(tmp_path: Path) -> None:
    clip = synthetic("wave")
    present = np.ones(len(clip), bool)
    present[:5] = False  # not there yet: the first pose
    present[30:40] = False  # away: the pose of frame 29
    x = clip.copy()
    x[~present] = 0.0
    rec = Recording.from_clip(x)
    [w] = write_bvh_files(rec, tmp_path / "g.bvh")
    assert (w.frames, w.held) == (len(clip), 15)
    back, frames, _ = read_back(w.path)
    assert frames == len(clip)
    assert errors_mm(back[present], clip[present]).max() < 0.05
    assert errors_mm(back[:5], np.broadcast_to(clip[5], (5, 25, 3))).max() < 0.05
    assert errors_mm(back[30:40], np.broadcast_to(clip[29], (10, 25, 3))).max() < 0.05


def test_nothing_of_the_metadata_is_written(tmp_path: Path) -> None:
    secret = {"source": "/data/secret/S001C001P042R001A001.skeleton", "ntu_body_ids": [72057594037931101],
              "ntu_name": {"performer": 42}, "label": "SECRETNAME"}  # fmt: skip
    rec = Recording.from_clip(synthetic("wave"), metadata=secret)
    [w] = write_bvh_files(rec, tmp_path / "p.bvh")
    text = Path(w.path).read_text()
    words = set(re.findall(r"[A-Za-z_][A-Za-z_:]*", text))
    allowed = {
        "HIERARCHY",
        "ROOT",
        "JOINT",
        "OFFSET",
        "CHANNELS",
        "End",
        "Site",
        "MOTION",
        "Frames:",
        "Frame",
        "Time:",
    }
    allowed |= set(NTU_JOINT_NAMES) | {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}
    assert words <= allowed, words - allowed
    assert not any(s in text for s in ("secret", "SECRET", "P042", "7205759"))


def test_euler_orders_round_trip_through_gimbal_lock() -> None:
    rng = np.random.default_rng(0)
    for order in ("ZXY", "YZX", "XYZ", "ZYX", "XZY", "YXZ"):
        a = rng.uniform(-180, 180, (300, 3))
        a[:, 1] = rng.uniform(-89, 89, 300)
        a[::7, 1], a[::11, 1] = 90.0, -90.0
        r = bvh_ik.euler_matrix(a, order)
        np.testing.assert_allclose(bvh_ik.euler_matrix(bvh_ik.euler_angles(r, order), order), r, atol=1e-12)
    t = np.linspace(0, 4 * np.pi, 400)  # a smooth turn of two full rotations: no 360-degree jumps
    axis = np.stack([np.cos(t / 3), np.sin(t / 3), np.ones_like(t)], -1) / np.sqrt(2)
    angles = bvh_ik.euler_angles(bvh_ik.axis_angle(axis, t), "YZX")
    assert np.abs(np.diff(angles, axis=0)).max() < 15.0


def test_an_elbow_bends_as_a_hinge() -> None:
    """The twist of the upper arm follows the forearm, so the elbow turns about one axis only."""
    clip = synthetic("wave")
    skeleton = BvhSkeleton.from_body(clip)
    local = bvh_ik.local_rotations(bvh_ik.global_rotations(to_bvh_axes(clip), skeleton.offsets()))
    for elbow in (5, 9):
        angles = bvh_ik.joint_angles(local)[:, elbow]  # ZXY: Z, X, Y
        assert np.abs(angles[:, 2]).max() > 60  # it bends, about the T-pose's Y axis
        assert np.abs(angles[:, :2]).max() < 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--person", "3"], "--person 3 out of range: the recording has 1 person slot(s)"),
        (["--to", "npz", "--person", "0"], "--person: only for BVH output"),
        (["--unit", "inch"], None),  # argparse's own refusal
    ],
)
def test_cli_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None
) -> None:
    src = tmp_path / "in.npz"
    Recording.from_clip(synthetic("wave")).save(src)
    out = tmp_path / "out.bvh"
    if message is None:
        with pytest.raises(SystemExit):
            main(["convert", "--input", str(src), "--output", str(out), *argv])
        return
    assert main(["convert", "--input", str(src), "--output", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_bad_recordings_are_refused(tmp_path: Path) -> None:
    mp = Recording(
        np.ones((3, 1, 33, 3)),
        np.ones((3, 1, 33)),
        np.arange(3) / 30,
        np.ones((3, 1), bool),
        layout="mediapipe33",
    )
    with pytest.raises(ValueError, match="BVH export needs an ntu25 recording, this one is mediapipe33"):
        write_bvh_files(mp, tmp_path / "m.bvh")
    absent = Recording.from_clip(np.zeros((4, 25, 3)))
    with pytest.raises(ValueError, match="no person is present in any frame"):
        write_bvh_files(absent, tmp_path / "a.bvh")
    two = Recording.from_clip(np.stack([synthetic("wave")] * 2, axis=1))
    with pytest.raises(ValueError, match="a BVH file holds one skeleton, this recording has 2 persons"):
        save_recording(two, tmp_path / "two.bvh")
    one = save_recording(Recording.from_clip(synthetic("wave")), tmp_path / "one.bvh")
    assert (one.format, one.persons, one.frames) == ("bvh", 1, 88)
    with pytest.raises(ValueError, match="BVH files are written, not read"):
        load_recording(one.path)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        bvh_text(synthetic("wave"), np.ones(88, bool), 0.0, BvhSkeleton.from_body(synthetic("wave")))
    with pytest.raises(ValueError, match="bones of zero length"):
        BvhSkeleton.from_body(np.zeros((2, 25, 3)))


def test_cli_skeleton_of_the_shipped_dummy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--dummy shipped``: the bones are the shipped dummy's (the lengths ``--bones dummy`` sets)."""
    from pmr_stream.assets import DEFAULT_DUMMY
    from pmr_stream.backends.base import load_dummy_window

    src = tmp_path / "raw.npz"
    clip = synthetic("wave")
    Recording.from_clip(clip).save(src)
    out = tmp_path / "on_dummy.bvh"
    assert main(["convert", "--input", str(src), "--output", str(out), "--dummy", "shipped"]) == 0
    assert "the shipped dummy's skeleton, cm" in capsys.readouterr().out
    back, _, _ = read_back(out)
    lengths = np.linalg.norm(
        back[:, [c for c, _ in NTU25.bones]] - back[:, [q for _, q in NTU25.bones]], axis=-1
    )
    dummy = median_bone_lengths(load_dummy_window(DEFAULT_DUMMY))
    assert np.abs(dummy - median_bone_lengths(clip)).max() > 0.01  # a body other than the motion's
    np.testing.assert_allclose(lengths, np.broadcast_to(dummy, lengths.shape), atol=1e-6)
    assert angles_deg(back, clip).max() < 0.01  # the motion's bone directions on the dummy's bones


def test_cli_overwrite_of_per_person_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "two.npz"
    clip = synthetic("wave")
    Recording.from_clip(np.stack([clip, clip + np.float32([1.0, 0.0, 0.0])], axis=1)).save(src)
    (tmp_path / "out_person1.bvh").write_text("keep\n")
    argv = ["convert", "--input", str(src), "--output", str(tmp_path / "out.bvh")]
    assert main(argv) == 2
    assert "out_person1.bvh: exists already; pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_person1.bvh", "two.npz"]  # nothing written
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_person0.bvh", "out_person1.bvh", "two.npz"]
    assert (tmp_path / "out_person1.bvh").read_text().startswith("HIERARCHY\nROOT SpineBase\n")
