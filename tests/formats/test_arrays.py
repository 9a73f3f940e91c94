"""SGN (T, 150) and ST-GCN (3, T, 25, M) array forms and their files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats.arrays import (
    load_array_file,
    read_array,
    recording_to_sgn,
    recording_to_stgcn,
    save_array_file,
    sgn_to_recording,
    stgcn_to_recording,
)
from pmr_stream.formats.recording import Recording


def make_recording(n_t: int, n_p: int, seed: int = 0, gaps: bool = True) -> Recording:
    """A recording whose later persons leave and come back (absent frames are zeros)."""
    rng = np.random.default_rng(seed)
    joints = (rng.normal(0.0, 0.3, size=(n_t, n_p, 25, 3)) + [0.0, 0.0, 3.0]).astype(np.float32)
    present = np.ones((n_t, n_p), dtype=bool)
    if gaps:
        for p in range(1, n_p):
            present[p : p + 2, p] = False
    joints[~present] = 0.0
    return Recording.from_clip(joints)


# --------------------------------------------------------------------------- SGN


def test_sgn_layout_one_person() -> None:
    rec = make_recording(7, 1)
    arr = recording_to_sgn(rec)
    assert arr.shape == (7, 150) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[:, :75], rec.joints[:, 0].reshape(7, 75))
    np.testing.assert_array_equal(arr[:, 75:], 0.0)
    # Joint 1's x y z come first, then joint 2's.
    np.testing.assert_array_equal(arr[3, 3:6], rec.joints[3, 0, 1])
    back = sgn_to_recording(arr)
    assert back.num_persons == 1  # an all-zero person 2 is dropped
    np.testing.assert_array_equal(back.joints, rec.joints)
    assert back.present.all()


def test_sgn_round_trip_two_persons() -> None:
    rec = make_recording(9, 2)
    arr = recording_to_sgn(rec)
    np.testing.assert_array_equal(arr[:, 75:], rec.joints[:, 1].reshape(9, 75))
    back = sgn_to_recording(arr, fps=20.0)
    assert back.num_persons == 2
    np.testing.assert_array_equal(back.joints, rec.joints)
    np.testing.assert_array_equal(back.present, rec.present)
    assert not back.present[1:3, 1].any()
    np.testing.assert_array_equal(back.confidence, np.repeat(rec.present[..., None], 25, axis=2))
    assert back.fps == pytest.approx(20.0)


def test_sgn_keeps_the_two_main_persons() -> None:
    rec = make_recording(6, 3, gaps=False)
    rec.present[:4, 0] = False  # person 0 is there least: persons 1 and 2 are kept
    arr = recording_to_sgn(rec)
    np.testing.assert_array_equal(arr[:, :75], rec.joints[:, 1].reshape(6, 75))
    np.testing.assert_array_equal(arr[:, 75:], rec.joints[:, 2].reshape(6, 75))


def test_sgn_zeroes_absent_frames_even_if_joints_are_stale() -> None:
    rec = make_recording(5, 1, gaps=False)
    rec.present[2, 0] = False  # joints still hold numbers there
    arr = recording_to_sgn(rec)
    np.testing.assert_array_equal(arr[2], 0.0)
    assert not sgn_to_recording(arr).present[2, 0]


@pytest.mark.parametrize("shape", [(10, 149), (10, 75), (10,), (2, 10, 150)])
def test_sgn_shape_errors(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"SGN clip must have shape \(T, 150\)"):
        sgn_to_recording(np.zeros(shape, dtype=np.float32))


# --------------------------------------------------------------------------- ST-GCN


@pytest.mark.parametrize("n_p", [1, 2])
def test_stgcn_round_trip(n_p: int) -> None:
    rec = make_recording(8, n_p, seed=n_p)
    arr = recording_to_stgcn(rec)
    assert arr.shape == (3, 8, 25, 2) and arr.dtype == np.float32
    # (C, T, V, M): channel c of joint v of person m at frame t.
    assert arr[2, 5, 7, 0] == rec.joints[5, 0, 7, 2]
    if n_p == 1:
        np.testing.assert_array_equal(arr[..., 1], 0.0)
    back = stgcn_to_recording(arr)
    assert back.num_persons == n_p
    np.testing.assert_array_equal(back.joints, rec.joints)
    np.testing.assert_array_equal(back.present, rec.present)


def test_stgcn_more_slots_and_fewer() -> None:
    rec = make_recording(4, 3, gaps=False)
    rec.present[:, 1] = False
    rec.present[0, 1] = True
    arr = recording_to_stgcn(rec, max_persons=2)
    np.testing.assert_array_equal(arr[..., 0], rec.joints[:, 0].transpose(2, 0, 1))
    np.testing.assert_array_equal(arr[..., 1], rec.joints[:, 2].transpose(2, 0, 1))
    wide = recording_to_stgcn(rec, max_persons=4)
    assert wide.shape == (3, 4, 25, 4)
    np.testing.assert_array_equal(wide[..., 3], 0.0)
    assert stgcn_to_recording(wide).num_persons == 3
    with pytest.raises(ValueError, match="max_persons"):
        recording_to_stgcn(rec, max_persons=0)


@pytest.mark.parametrize(
    "shape", [(2, 10, 25, 2), (3, 10, 24, 2), (3, 10, 25), (3, 10, 25, 0), (1, 3, 10, 25, 2)]
)
def test_stgcn_shape_errors(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"ST-GCN clip must have shape \(3, T, 25, M\)"):
        stgcn_to_recording(np.zeros(shape, dtype=np.float32))


def test_non_ntu_layout_refused() -> None:
    rec = Recording(
        np.zeros((2, 1, 33, 3)), np.zeros((2, 1, 33)), np.arange(2.0), np.ones((2, 1), bool), "mediapipe33"
    )
    with pytest.raises(ValueError, match="ntu25"):
        recording_to_sgn(rec)
    with pytest.raises(ValueError, match="ntu25"):
        recording_to_stgcn(rec)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", ["sgn", "stgcn"])
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_file_round_trip(kind: str, suffix: str, tmp_path: Path) -> None:
    rec = make_recording(6, 2)
    path = tmp_path / f"clip{suffix}"
    save_array_file(rec, path, kind)  # type: ignore[arg-type]
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            assert archive.files == ["x"]
    expected_shape = (6, 150) if kind == "sgn" else (3, 6, 25, 2)
    assert read_array(path).shape == expected_shape
    back = load_array_file(path, kind)  # type: ignore[arg-type]
    np.testing.assert_array_equal(back.joints, rec.joints)
    np.testing.assert_array_equal(back.present, rec.present)
    assert back.metadata["source"] == str(path)


@pytest.mark.parametrize("kind", ["sgn", "stgcn"])
def test_batches_and_index(kind: str, tmp_path: Path) -> None:
    recs = [make_recording(5, 2, seed=s) for s in range(3)]
    to_arr = recording_to_sgn if kind == "sgn" else recording_to_stgcn
    batch = np.stack([to_arr(r) for r in recs])
    npy, npz = tmp_path / "batch.npy", tmp_path / "batch.npz"
    np.save(npy, batch)
    np.savez(npz, x=batch, y=np.arange(3))  # labels beside the clips, as toolkits store them
    for path in (npy, npz):
        for i in (0, 2, -1):
            np.testing.assert_array_equal(load_array_file(path, kind, index=i).joints, recs[i].joints)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="clip index 3 out of range for a batch of 3"):
            load_array_file(path, kind, index=3)  # type: ignore[arg-type]
    single = tmp_path / "single.npy"
    np.save(single, batch[0])
    with pytest.raises(ValueError, match="out of range for a single clip"):
        load_array_file(single, kind, index=1)  # type: ignore[arg-type]


def test_file_errors(tmp_path: Path) -> None:
    rec = make_recording(4, 1)
    wrong_ndim = tmp_path / "flat.npy"
    np.save(wrong_ndim, np.zeros(150, dtype=np.float32))
    with pytest.raises(
        ValueError, match=r"flat.npy: a sgn array must have shape \(T, 150\) or \(N, T, 150\), got \(150,\)"
    ):
        load_array_file(wrong_ndim, "sgn")
    with pytest.raises(ValueError, match=r"flat.npy: a stgcn array must have shape"):
        load_array_file(wrong_ndim, "stgcn")
    wrong_width = tmp_path / "wide.npy"
    np.save(wrong_width, np.zeros((4, 151), dtype=np.float32))
    with pytest.raises(ValueError, match="wide.npy: an SGN clip must have shape"):
        load_array_file(wrong_width, "sgn")

    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled.npy: cannot read array file without pickle"):
        load_array_file(pickled, "sgn")
    pickled_npz = tmp_path / "pickled.npz"
    np.savez(pickled_npz, x=np.array([[1, "a"]], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz: cannot read array file without pickle"):
        load_array_file(pickled_npz, "stgcn")

    strings = tmp_path / "strings.npy"
    np.save(strings, np.full((4, 150), "1.0"))
    with pytest.raises(ValueError, match="strings.npy: SGN clip must hold real numbers"):
        load_array_file(strings, "sgn")
    nan = tmp_path / "nan.npy"
    arr = recording_to_sgn(rec)
    arr[1, 4] = np.nan
    np.save(nan, arr)
    with pytest.raises(ValueError, match="nan.npy: joints contain NaN"):
        load_array_file(nan, "sgn")
    many = tmp_path / "many.npz"
    np.savez(many, a=arr, b=arr)
    with pytest.raises(ValueError, match=r"many.npz: expected the clip array under key 'x', found keys"):
        load_array_file(many, "sgn")
    garbage = tmp_path / "garbage.npy"
    garbage.write_text("not numpy")
    with pytest.raises(ValueError, match="garbage.npy: cannot read array file"):
        load_array_file(garbage, "sgn")

    with pytest.raises(FileNotFoundError, match="absent.npy"):
        load_array_file(tmp_path / "absent.npy", "sgn")
    with pytest.raises(ValueError, match="unknown array kind 'coco'"):
        load_array_file(wrong_ndim, "coco")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"clip.txt: array files must end in .npy or .npz"):
        save_array_file(rec, tmp_path / "clip.txt", "sgn")
    with pytest.raises(ValueError, match="unknown array kind"):
        save_array_file(rec, tmp_path / "clip.npy", "pyskl")  # type: ignore[arg-type]
