"""NTU ``.skeleton`` reader and writer: real files, generated files, malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats.ntu import (
    DEFAULT_BODY_ID,
    NtuBody,
    NtuFrame,
    NtuSkeleton,
    SkeletonFormatError,
    format_skeleton,
    parse_skeleton,
    read_skeleton,
    write_skeleton,
)
from pmr_stream.formats.ntu_dataset import COLOR_CAMERA, DEPTH_CAMERA, NtuName, parse_ntu_name
from pmr_stream.skeleton import Joint
from tests.ntu_samples import NTU_DIR, ntu_file

#: The README's table: file -> (frames, bodies).
NTU_FILES = {
    "S001C001P001R001A001.skeleton": (103, 1),
    "S001C001P001R001A011.skeleton": (82, 1),
    "S002C001P003R001A003.skeleton": (100, 1),
    "S003C001P015R001A034.skeleton": (71, 1),
    "S004C002P003R001A017.skeleton": (124, 1),
    "S001C003P008R002A058.skeleton": (70, 2),
}
TWO_PERSON = "S001C003P008R002A058.skeleton"


def make_joints(n_t: int, n_p: int, seed: int = 0) -> np.ndarray:
    """Plausible ``(T, P, 25, 3)`` float32 metres: persons side by side, 2.5-3.5 m away."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.3, 0.3, size=(1, n_p, 25, 3)) + np.array([0.0, 0.0, 3.0])
    base[:, :, :, 0] += np.arange(n_p)[None, :, None] * 0.8 - 0.4 * (n_p - 1)
    drift = np.cumsum(rng.normal(0.0, 0.005, size=(n_t, n_p, 25, 3)), axis=0)
    return (base + drift).astype(np.float32)


def assert_same_skeleton(a: NtuSkeleton, b: NtuSkeleton) -> None:
    """Every field of every body of every frame is identical."""
    assert a.num_frames == b.num_frames
    for t, (fa, fb) in enumerate(zip(a.frames, b.frames, strict=True)):
        assert len(fa.bodies) == len(fb.bodies), f"frame {t}"
        for ba, bb in zip(fa.bodies, fb.bodies, strict=True):
            for name in (
                "body_id", "clipped_edges", "hand_left_confidence", "hand_left_state",
                "hand_right_confidence", "hand_right_state", "is_restricted", "lean_x", "lean_y",
                "tracking_state",
            ):  # fmt: skip
                va, vb = getattr(ba, name), getattr(bb, name)
                assert va == vb and type(va) is type(vb), f"frame {t} {name}: {va!r} != {vb!r}"
            assert ba.joints.dtype == bb.joints.dtype == np.float64
            np.testing.assert_array_equal(ba.joints, bb.joints)


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", sorted(NTU_FILES))
def test_real_file_counts_match_readme(name: str) -> None:
    frames, bodies = NTU_FILES[name]
    skel = read_skeleton(ntu_file(name))
    assert skel.num_frames == frames
    assert skel.max_bodies() == bodies
    assert len(skel.body_ids()) == bodies
    assert skel.source.endswith(name)
    for frame in skel.frames:
        for body in frame.bodies:
            assert body.joints.shape == (25, 12)
            assert set(np.unique(body.joints[:, 11])) <= {0.0, 1.0, 2.0}
            assert np.all((body.joints[:, 2] > 1.5) & (body.joints[:, 2] < 5.0))  # depth in metres


def test_real_file_first_joint_and_body() -> None:
    skel = read_skeleton(ntu_file("S001C001P001R001A001.skeleton"))
    body = skel.frames[0].bodies[0]
    assert body.body_id == 72057594037931101
    assert isinstance(body.body_id, int)
    np.testing.assert_array_equal(body.joints[0, :3], [0.2181153, 0.1725972, 3.785547])
    np.testing.assert_array_equal(
        body.joints[0, 3:],
        [277.419, 191.8218, 1036.233, 519.1677, -0.2059419, 0.05349901, 0.9692109, -0.1239193, 2],
    )
    assert (body.clipped_edges, body.hand_left_confidence, body.hand_left_state) == (0, 1, 1)
    assert (body.hand_right_confidence, body.hand_right_state, body.is_restricted) == (1, 1, 0)
    assert (body.lean_x, body.lean_y, body.tracking_state) == (0.02764709, 0.05745083, 2)
    # Joint 4 (Head) is an end joint: Kinect writes a zero quaternion there.
    np.testing.assert_array_equal(body.joints[3, 7:11], 0.0)


@pytest.mark.parametrize("name", sorted(NTU_FILES))
def test_real_file_round_trip_is_exact(name: str, tmp_path: Path) -> None:
    path = ntu_file(name)
    original = read_skeleton(path)
    out = tmp_path / name
    write_skeleton(out, original)
    again = read_skeleton(out)
    assert_same_skeleton(original, again)
    # The writer reproduces Kinect's own text (only the line ending may differ).
    assert out.read_text() == path.read_bytes().decode("ascii").replace("\r\n", "\n")


def test_two_person_file_keeps_persons_apart() -> None:
    skel = read_skeleton(ntu_file(TWO_PERSON))
    joints, confidence, present, ids = skel.to_arrays()
    assert joints.shape == (70, 2, 25, 3) and joints.dtype == np.float32
    assert confidence.shape == (70, 2, 25) and present.shape == (70, 2) and present.dtype == bool
    assert len(ids) == 2 and ids[0] != ids[1]
    assert ids == skel.body_ids()
    for p in range(2):
        frames = np.flatnonzero(present[:, p])
        assert frames.size > 0
        track = joints[frames, p, Joint.SPINE_BASE]
        jumps = np.linalg.norm(np.diff(track, axis=0), axis=-1)
        assert jumps.max() < 0.3, f"person {p} SpineBase jumps {jumps.max():.3f} m"
    both = present.all(axis=1)
    gap = np.linalg.norm(joints[both, 0, Joint.SPINE_BASE] - joints[both, 1, Joint.SPINE_BASE], axis=-1)
    assert gap.min() > 0.3  # two different people, not one body split in two
    # Each frame's bodies land in the slot of their ID.
    for t, frame in enumerate(skel.frames):
        for body in frame.bodies:
            p = ids.index(body.body_id)
            np.testing.assert_array_equal(joints[t, p], body.joints[:, :3].astype(np.float32))


def test_real_confidence_from_tracking_state() -> None:
    skel = read_skeleton(ntu_file("S001C001P001R001A001.skeleton"))
    _, confidence, present, _ = skel.to_arrays()
    assert present.all()
    states = np.stack([f.bodies[0].joints[:, 11] for f in skel.frames])
    np.testing.assert_array_equal(confidence[:, 0], np.select([states == 2, states == 1], [1.0, 0.5], 0.0))
    assert (confidence[:, 0] == 0.5).any()  # this take has inferred joints


def test_projection_matches_real_pixel_columns() -> None:
    """Generated depth/colour pixels agree with Kinect's own (checks the x sign too)."""
    skel = read_skeleton(ntu_file("S001C001P001R001A001.skeleton"))
    joints, confidence, present, ids = skel.to_arrays()
    made = NtuSkeleton.from_arrays(joints, confidence, present, ids)
    real = np.stack([f.bodies[0].joints for f in skel.frames])
    ours = np.stack([f.bodies[0].joints for f in made.frames])
    assert np.abs(ours[..., 3:5] - real[..., 3:5]).max() < 10.0  # depth pixels
    assert np.abs(ours[..., 5:7] - real[..., 5:7]).max() < 60.0  # colour pixels (camera offset ~5 cm)
    # Moving right in x moves right in the image, for both cameras.
    x, depth_x, color_x = real[..., 0].ravel(), real[..., 3].ravel(), real[..., 5].ravel()
    assert np.corrcoef(x / real[..., 2].ravel(), depth_x)[0, 1] > 0.9
    assert np.corrcoef(x / real[..., 2].ravel(), color_x)[0, 1] > 0.9


def test_real_file_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    path = ntu_file("S001C001P001R001A001.skeleton")
    text = path.read_text()
    reference = parse_skeleton(text)
    variants = {
        "crlf": text.replace("\n", "\r\n"),
        "no_final_newline": text.rstrip("\n"),
        "crlf_no_final_newline": text.replace("\n", "\r\n").rstrip("\r\n"),
        "trailing_blank_lines": text + "\n  \n\r\n",
        "bom": "\ufeff" + text,
    }
    for label, variant in variants.items():
        out = tmp_path / f"{label}.skeleton"
        out.write_bytes(variant.encode("utf-8"))
        assert_same_skeleton(reference, read_skeleton(out))


# --------------------------------------------------------------------------- generated files


def test_generated_frames_with_zero_one_and_three_bodies(tmp_path: Path) -> None:
    joints = make_joints(6, 3)
    present = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=bool
    )  # appear, all three, disappear, empty frames at both ends
    joints[~present] = 0.0
    conf = np.full((6, 3, 25), 1.0, dtype=np.float32)
    conf[2, 1, :5] = 0.5
    conf[2, 1, 5:7] = 0.0
    ids = [72057594037931101, 5, 2**64 - 1]
    skel = NtuSkeleton.from_arrays(joints, conf, present, ids, source="gen")
    assert [len(f.bodies) for f in skel.frames] == [0, 1, 3, 2, 1, 0]
    assert skel.max_bodies() == 3
    assert skel.body_ids() == ids

    path = tmp_path / "gen.skeleton"
    write_skeleton(path, skel)
    lines = path.read_text().split("\n")
    assert lines[:3] == ["6", "0", "1"]
    again = read_skeleton(path)
    assert_same_skeleton(skel, again)
    j2, c2, p2, ids2 = again.to_arrays()
    np.testing.assert_array_equal(j2, joints)  # float32 values survive the text exactly
    np.testing.assert_array_equal(p2, present)
    assert ids2 == ids
    expected_conf = np.where(present[..., None], conf, 0.0)
    np.testing.assert_array_equal(c2, expected_conf)


def test_generated_file_looks_like_kinect() -> None:
    joints = make_joints(2, 1)
    skel = NtuSkeleton.from_arrays(joints)
    body = skel.frames[0].bodies[0]
    assert body.body_id == DEFAULT_BODY_ID
    assert body.tracking_state == 2
    np.testing.assert_array_equal(body.joints[:, 11], 2.0)
    np.testing.assert_array_equal(body.joints[:, 7:11], 0.0)
    x, y, z = (body.joints[:, i] for i in range(3))
    _, _, fd, cxd, cyd = DEPTH_CAMERA
    _, _, fc, cxc, cyc = COLOR_CAMERA
    np.testing.assert_allclose(body.joints[:, 3], cxd + fd * x / z, rtol=1e-6)
    np.testing.assert_allclose(body.joints[:, 4], cyd - fd * y / z, rtol=1e-6)
    np.testing.assert_allclose(body.joints[:, 5], cxc + fc * x / z, rtol=1e-6)
    np.testing.assert_allclose(body.joints[:, 6], cyc - fc * y / z, rtol=1e-6)
    # float32 input is written with its shortest text, like Kinect's 7-digit numbers.
    token = format_skeleton(skel).split("\n")[4].split()[0]
    assert np.float32(float(token)) == joints[0, 0, 0, 0]
    assert token == str(joints[0, 0, 0, 0])  # numpy's shortest float32 text, not 0.2181152999...


def test_default_presence_and_from_arrays_errors() -> None:
    joints = make_joints(3, 2)
    joints[1, 1] = 0.0
    skel = NtuSkeleton.from_arrays(joints)
    assert [len(f.bodies) for f in skel.frames] == [2, 1, 2]
    with pytest.raises(ValueError, match="shape"):
        NtuSkeleton.from_arrays(np.zeros((3, 2, 24, 3)))
    with pytest.raises(ValueError, match="NaN"):
        NtuSkeleton.from_arrays(np.full((3, 25, 3), np.nan))
    with pytest.raises(ValueError, match="distinct"):
        NtuSkeleton.from_arrays(joints, body_ids=[7, 7])
    with pytest.raises(ValueError, match="one ID per person"):
        NtuSkeleton.from_arrays(joints, body_ids=[7])
    with pytest.raises(ValueError, match="confidence"):
        NtuSkeleton.from_arrays(joints, confidence=np.ones((3, 2, 24)))


def test_single_person_clip_and_max_persons() -> None:
    clip = make_joints(4, 1)[:, 0]
    skel = NtuSkeleton.from_arrays(clip)
    j, _, p, ids = skel.to_arrays()
    assert j.shape == (4, 1, 25, 3) and p.all() and ids == [DEFAULT_BODY_ID]

    joints = make_joints(5, 3)
    present = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1], [0, 1, 1], [0, 0, 1]], dtype=bool)
    skel = NtuSkeleton.from_arrays(joints, present=present, body_ids=[10, 20, 30])
    j2, _, p2, ids2 = skel.to_arrays(max_persons=2)
    # Person 10 is in 2 frames, 20 in 4, 30 in 4: keep 20 and 30, in order of appearance.
    assert ids2 == [20, 30]
    np.testing.assert_array_equal(p2, present[:, 1:])
    np.testing.assert_array_equal(j2[p2], joints[:, 1:][present[:, 1:]])
    assert skel.to_arrays(max_persons=0)[0].shape == (5, 0, 25, 3)
    with pytest.raises(ValueError):
        skel.to_arrays(max_persons=-1)


def test_duplicate_body_id_in_one_frame_becomes_its_own_person() -> None:
    table = np.zeros((25, 12))
    table[:, 2] = 3.0
    other = table.copy()
    other[:, 0] = 1.0

    def body(joints: np.ndarray) -> NtuBody:
        return NtuBody(9, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 2, joints)

    skel = NtuSkeleton([NtuFrame([body(table), body(other)])])
    j, _, p, ids = skel.to_arrays()
    assert ids == [9, 9] and p.all()
    assert j[0, 0, 0, 0] == 0.0 and j[0, 1, 0, 0] == 1.0


def test_writer_refuses_nan() -> None:
    skel = NtuSkeleton.from_arrays(make_joints(1, 1))
    skel.frames[0].bodies[0].joints[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        format_skeleton(skel)


def test_number_formatting_round_trips_awkward_values() -> None:
    values = [0.0, -0.0, 1e-05, -7.257856e-05, 1.0 / 3.0, 123456789.125, 1e20, 5e-324, 2.0]
    table = np.zeros((25, 12))
    table[: len(values), 0] = values
    table[:, 11] = 2
    skel = NtuSkeleton([NtuFrame([NtuBody(1, 0, 0, 0, 0, 0, 0, 1e-7, -2.5, 2, table)])])
    text = format_skeleton(skel)
    lines = text.split("\n")
    assert lines[2] == "1 0 0 0 0 0 0 1E-07 -2.5 2"
    assert lines[4] == "0 0 0 0 0 0 0 0 0 0 0 2"  # integers without ".0", Kinect style
    assert lines[7].split()[0] == "-7.257856E-05"
    again = parse_skeleton(text)
    assert_same_skeleton(skel, again)
    assert np.signbit(again.frames[0].bodies[0].joints[1, 0])  # -0.0 kept


def test_empty_skeleton_and_body_validation() -> None:
    assert format_skeleton(NtuSkeleton([])) == "0\n"
    assert parse_skeleton("0\n").num_frames == 0
    assert NtuSkeleton([]).max_bodies() == 0
    with pytest.raises(ValueError, match="shape"):
        NtuBody(1, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 2, np.zeros((24, 12)))
    with pytest.raises(ValueError, match="64-bit"):
        NtuBody(2**64, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 2, np.zeros((25, 12)))


# --------------------------------------------------------------------------- malformed files


def _valid_lines() -> list[str]:
    """A valid 2-frame, 1-body file: line 1 frames, 2 bodies, 3 body, 4 '25', 5-29 joints,
    30 bodies, 31 body, 32 '25', 33-57 joints."""
    text = format_skeleton(NtuSkeleton.from_arrays(make_joints(2, 1)))
    lines = text.split("\n")[:-1]
    assert len(lines) == 57
    return lines


def _replace(lines: list[str], line_no: int, new: str) -> list[str]:
    out = list(lines)
    out[line_no - 1] = new
    return out


def _bad_cases() -> dict[str, tuple[str, int, str]]:
    """name -> (file text, line number of the error, text the message must contain)."""
    lines = _valid_lines()
    joint41 = lines[40].split()
    joined = "\n".join
    return {
        "truncated_mid_joint": (
            joined(lines[:40] + [" ".join(joint41[:7])]),
            41,
            "12 numbers for a joint, got 7",
        ),
        "truncated_mid_number": (joined(lines[:40]) + "\n" + lines[40][:9], 41, "12 numbers for a joint"),
        "truncated_at_line_end": (joined(lines[:40]) + "\n", 41, "end of file"),
        "too_few_numbers": (
            joined(_replace(lines, 10, " ".join(lines[9].split()[:11]))) + "\n",
            10,
            "got 11",
        ),
        "too_many_numbers": (joined(_replace(lines, 10, lines[9] + " 1")) + "\n", 10, "got 13"),
        "non_numeric": (
            joined(_replace(lines, 12, lines[11].replace(lines[11].split()[2], "abc", 1))),
            12,
            "'abc'",
        ),
        "nan_value": (
            joined(_replace(lines, 13, "nan " + " ".join(lines[12].split()[1:]))),
            13,
            "non-numeric x",
        ),
        "underscore_number": (
            joined(_replace(lines, 13, "1_0 " + " ".join(lines[12].split()[1:]))),
            13,
            "'1_0'",
        ),
        "fractional_tracking_state": (
            joined(_replace(lines, 14, lines[13][:-1] + "1.5")),
            14,
            "trackingState",
        ),
        "wrong_joint_count": (joined(_replace(lines, 4, "24")), 4, "joint count 25, got 24"),
        "negative_body_count": (joined(_replace(lines, 30, "-1")), 30, "body count"),
        "non_integer_frame_count": (joined(_replace(lines, 1, "2.0")), 1, "frame count"),
        "empty_file": ("", 1, "frame count"),
        "whitespace_only_file": ("\n \n", 1, "frame count"),
        "body_line_too_short": (
            joined(_replace(lines, 31, " ".join(lines[30].split()[:9]))),
            31,
            "10 fields",
        ),
        "body_id_not_integer": (
            joined(_replace(lines, 3, "1.5 " + " ".join(lines[2].split()[1:]))),
            3,
            "bodyID",
        ),
        "body_id_too_large": (
            joined(_replace(lines, 3, f"{2**64} " + " ".join(lines[2].split()[1:]))),
            3,
            "64-bit",
        ),
        "blank_line_inside": (joined(lines[:20] + [""] + lines[20:]), 21, "empty line"),
        "more_frames_declared": (joined(_replace(lines, 1, "3")) + "\n", 58, "end of file"),
        "garbage_at_end": (joined(lines) + "\ngarbage here\n", 58, "end of file after the last frame"),
        "garbage_after_blank_lines": (joined(lines) + "\n\n\n0\n", 60, "'0'"),
        "non_ascii_digit": (joined(_replace(lines, 6, "\u0661" + lines[5][1:])), 6, "non-ASCII"),
    }


BAD_CASES = _bad_cases()


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_malformed_file_names_file_and_line(case: str, tmp_path: Path) -> None:
    text, line, fragment = BAD_CASES[case]
    path = tmp_path / f"bad_{case}.skeleton"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(SkeletonFormatError) as info:
        read_skeleton(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert f"bad_{case}.skeleton line {line}: expected " in str(err)
    assert fragment in str(err)
    assert err.expected and err.expected in str(err)


def test_malformed_crlf_file_reports_same_line(tmp_path: Path) -> None:
    text, line, _ = BAD_CASES["too_few_numbers"]
    path = tmp_path / "crlf.skeleton"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    with pytest.raises(SkeletonFormatError) as info:
        read_skeleton(path)
    assert info.value.line == line


def test_undecodable_bytes_report_their_line(tmp_path: Path) -> None:
    lines = _valid_lines()
    data = ("\n".join(lines[:7]) + "\n").encode() + b"\xff\xfe 1 2\n" + ("\n".join(lines[8:]) + "\n").encode()
    path = tmp_path / "binary.skeleton"
    path.write_bytes(data)
    with pytest.raises(SkeletonFormatError) as info:
        read_skeleton(path)
    assert info.value.line == 8 and "binary.skeleton line 8" in str(info.value)


def test_parse_skeleton_uses_source_name() -> None:
    with pytest.raises(SkeletonFormatError, match=r"^mystream line 1: expected"):
        parse_skeleton("x\n", source="mystream")
    with pytest.raises(SkeletonFormatError, match=r"^<string> line 2"):
        parse_skeleton("1\n")


# --------------------------------------------------------------------------- file names


def test_parse_ntu_name() -> None:
    name = parse_ntu_name("S001C003P008R002A058")
    assert name == NtuName(setup=1, camera=3, performer=8, replication=2, action=58)
    assert name.stem == "S001C003P008R002A058"
    assert parse_ntu_name(Path("/data/nturgbd/S017C002P003R001A120.skeleton")) == NtuName(17, 2, 3, 1, 120)
    assert parse_ntu_name("dir/S001C001P001R001A001_rgb.avi").stem == "S001C001P001R001A001"
    with pytest.raises(AttributeError):
        name.setup = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "S01C001P001R001A001",
        "S001C001P001R001",
        "s001c001p001r001a001",
        "S001C001P001R001A001x",
        "x.skeleton",
    ],
)
def test_parse_ntu_name_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="not an NTU file name") as info:
        parse_ntu_name(bad)
    assert repr(Path(bad).name) in str(info.value)


def test_real_names_parse() -> None:
    ntu_file(TWO_PERSON)
    for name in NTU_FILES:
        assert parse_ntu_name(NTU_DIR / name).stem + ".skeleton" == name
