"""The format dispatcher: guessing formats, loading, saving, converting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats import (
    NtuSkeleton,
    Recording,
    convert,
    guess_format,
    load_recording,
    read_skeleton,
    recording_to_sgn,
    recording_to_stgcn,
    save_recording,
    write_skeleton,
)
from tests.ntu_samples import ntu_file


def generated_skeleton(path: Path) -> Path:
    """A two-person ``.skeleton`` where person 2 leaves for a while."""
    rng = np.random.default_rng(7)
    joints = (rng.normal(0.0, 0.3, size=(12, 2, 25, 3)) + [0.0, 0.0, 3.0]).astype(np.float32)
    present = np.ones((12, 2), dtype=bool)
    present[4:7, 1] = False
    joints[~present] = 0.0
    write_skeleton(path, NtuSkeleton.from_arrays(joints, present=present, source=str(path)))
    return path


def test_guess_format_each(tmp_path: Path) -> None:
    rec = Recording.from_clip(np.random.default_rng(0).normal(size=(5, 2, 25, 3)))
    sgn, stgcn = recording_to_sgn(rec), recording_to_stgcn(rec)
    files = {
        "take.skeleton": None,
        "TAKE.SKELETON": None,
        "rec.npz": "npz",
        "sgn.npy": ("npy", sgn),
        "sgn_batch.npy": ("npy", np.stack([sgn, sgn])),
        "sgn.npz": ("npz", sgn),
        "stgcn.npy": ("npy", stgcn),
        "stgcn_batch.npz": ("npz", np.stack([stgcn] * 3)),
        "stgcn_other_key.npz": ("npz_arr_0", stgcn),
    }
    for name, content in files.items():
        path = tmp_path / name
        if content == "npz":
            rec.save(path)
        elif isinstance(content, tuple):
            how, arr = content
            if how == "npy":
                np.save(path, arr)
            elif how == "npz":
                np.savez_compressed(path, x=arr)
            else:
                np.savez(path, arr)
    expected = {
        "take.skeleton": "skeleton", "TAKE.SKELETON": "skeleton", "rec.npz": "npz", "sgn.npy": "sgn",
        "sgn_batch.npy": "sgn", "sgn.npz": "sgn", "stgcn.npy": "stgcn", "stgcn_batch.npz": "stgcn",
        "stgcn_other_key.npz": "stgcn",
    }  # fmt: skip
    assert {name: guess_format(tmp_path / name) for name in files} == expected
    assert guess_format(tmp_path / "new.npz") == "npz"  # a file about to be written


def test_guess_format_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"take.csv: .*known formats: skeleton, npz, sgn, stgcn"):
        guess_format(tmp_path / "take.csv")
    with pytest.raises(ValueError, match=r"noext: .*'\(none\)'"):
        guess_format(tmp_path / "noext")
    with pytest.raises(ValueError, match=r"new.npy: a new .npy file can be sgn or stgcn.*known formats"):
        guess_format(tmp_path / "new.npy")
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((4, 149)))
    with pytest.raises(ValueError, match=r"odd.npy: array shape \(4, 149\) is neither SGN"):
        guess_format(odd)
    broken = tmp_path / "broken.npz"
    broken.write_text("not a zip")
    with pytest.raises(ValueError, match="broken.npz: cannot read the array header"):
        guess_format(broken)
    with pytest.raises(
        ValueError, match=r"x.npz: unknown format 'bvh'; known formats: skeleton, npz, sgn, stgcn"
    ):
        load_recording(tmp_path / "x.npz", "bvh")
    rec = Recording.from_clip(np.ones((2, 25, 3)))
    with pytest.raises(
        ValueError, match="unknown format 'fbx'; known formats: skeleton, npz, sgn, stgcn, bvh"
    ):
        save_recording(rec, tmp_path / "x.npz", "fbx")
    with pytest.raises(ValueError, match="new.npy: a new .npy file can be sgn or stgcn"):
        save_recording(rec, tmp_path / "new.npy")


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    rec = Recording.from_clip(np.random.default_rng(1).normal(size=(4, 25, 3)))
    path = tmp_path / "clip.npy"
    save_recording(rec, path, "stgcn")
    assert guess_format(path) == "stgcn"
    np.testing.assert_array_equal(load_recording(path).joints, rec.joints)
    save_recording(rec, path)  # an existing .npy keeps its format
    assert guess_format(path) == "stgcn"
    odd = tmp_path / "take.txt"
    save_recording(rec, odd, "skeleton")
    assert load_recording(odd, "skeleton").num_frames == 4


def _convert_chain(src: Path, tmp_path: Path) -> tuple[Recording, Recording]:
    first = load_recording(src)
    # (destination, format to pass or None to let the extension decide, format expected)
    steps = [
        ("a.npz", None, "npz"),
        ("b.npy", "stgcn", "stgcn"),
        ("c.npz", "sgn", "sgn"),
        ("d.skeleton", None, "skeleton"),
    ]
    current = src
    for name, fmt, expected in steps:
        dst = tmp_path / name
        convert(current, dst, dst_fmt=fmt)
        assert guess_format(dst) == expected
        current = dst
    return first, load_recording(current)


def test_convert_chain_generated(tmp_path: Path) -> None:
    src = generated_skeleton(tmp_path / "gen.skeleton")
    first, last = _convert_chain(src, tmp_path)
    assert first.joints.shape == last.joints.shape == (12, 2, 25, 3)
    np.testing.assert_array_equal(last.joints, first.joints)
    np.testing.assert_array_equal(last.present, first.present)


def test_convert_chain_real_two_person_file(tmp_path: Path) -> None:
    src = ntu_file("S001C003P008R002A058.skeleton")
    first, last = _convert_chain(src, tmp_path)
    np.testing.assert_array_equal(last.joints, first.joints)
    np.testing.assert_array_equal(last.present, first.present)
    skel_in, skel_out = read_skeleton(src), read_skeleton(tmp_path / "d.skeleton")
    assert [len(f.bodies) for f in skel_out.frames] == [len(f.bodies) for f in skel_in.frames]
    orig = skel_in.to_arrays()[0]
    np.testing.assert_array_equal(skel_out.to_arrays()[0], orig)  # float32 precision kept end to end


def test_convert_returns_recording_and_keeps_npz_metadata(tmp_path: Path) -> None:
    src = ntu_file("S001C001P001R001A001.skeleton")
    rec = convert(src, tmp_path / "take.npz")
    assert isinstance(rec, Recording) and rec.num_frames == 103
    back = load_recording(tmp_path / "take.npz")
    assert back.metadata == rec.metadata
    assert back.metadata["ntu_name"]["stem"] == "S001C001P001R001A001"
    np.testing.assert_array_equal(back.timestamps, np.arange(103) / 30.0)
    convert(tmp_path / "take.npz", tmp_path / "again.skeleton")
    assert read_skeleton(tmp_path / "again.skeleton").body_ids() == [72057594037931101]
