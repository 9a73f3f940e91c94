"""The project's recording format: validation, save/load, NTU and clip conversions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.formats.ntu import NtuSkeleton, read_skeleton
from pmr_stream.formats.recording import FORMAT_VERSION, RECORDING_KEYS, Recording
from tests.ntu_samples import ntu_file


def make_recording(n_t: int = 8, n_p: int = 2, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    joints = (rng.normal(0.0, 0.3, size=(n_t, n_p, 25, 3)) + [0.0, 0.0, 3.0]).astype(np.float32)
    present = np.ones((n_t, n_p), dtype=bool)
    if n_p > 1:
        present[: n_t // 2, 1] = False
        joints[~present] = 0.0
    confidence = np.where(present[..., None], rng.uniform(0, 1, size=(n_t, n_p, 25)), 0).astype(np.float32)
    return Recording(
        joints=joints,
        confidence=confidence,
        timestamps=np.arange(n_t) / 30.0,
        present=present,
        metadata={"source": "unit test", "subject": {"id": 3, "tags": ["a", "b"]}, "big": 2**63 + 5},
    )


def save_raw(path: Path, **overrides: object) -> None:
    """Write a recording archive with some keys replaced (or removed with ``None``)."""
    rec = make_recording()
    arrays: dict[str, object] = {
        "joints": rec.joints,
        "confidence": rec.confidence,
        "timestamps": rec.timestamps,
        "present": rec.present,
        "layout": np.array(rec.layout),
        "metadata_json": np.array(json.dumps(rec.metadata)),
        "format_version": np.array(FORMAT_VERSION),
    }
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


# --------------------------------------------------------------------------- basics


def test_properties_and_person() -> None:
    rec = make_recording(10, 2)
    assert rec.num_frames == 10 and rec.num_persons == 2
    assert rec.fps == pytest.approx(30.0)
    assert rec.person(1).shape == (10, 25, 3)
    np.testing.assert_array_equal(rec.person(0), rec.joints[:, 0])
    with pytest.raises(IndexError, match="2 persons"):
        rec.person(2)
    assert make_recording(1, 1).fps is None
    assert rec.layout == "ntu25"


def test_dtypes_are_normalised() -> None:
    rec = make_recording(4, 1)
    again = Recording(
        rec.joints.astype(np.float64),
        rec.confidence.astype(np.float64),
        np.arange(4),
        rec.present.astype(np.int8),
    )
    assert again.joints.dtype == np.float32 and again.confidence.dtype == np.float32
    assert again.timestamps.dtype == np.float64 and again.present.dtype == bool
    assert again.metadata == {}


def _bad_fields() -> dict[str, tuple[dict[str, object], str]]:
    rec = make_recording(4, 2)
    nan_joints = rec.joints.copy()
    nan_joints[1, 0, 3, 2] = np.nan
    return {
        "joints_ndim": ({"joints": rec.joints[:, 0]}, "joints must have shape"),
        "joints_count": ({"joints": rec.joints[:, :, :24]}, "joints must have shape"),
        "joints_nan": ({"joints": nan_joints}, "joints contain NaN"),
        "joints_strings": ({"joints": np.full((4, 2, 25, 3), "a")}, "joints must hold real numbers"),
        "confidence_shape": ({"confidence": rec.confidence[:, :1]}, "confidence must have shape"),
        "confidence_range": ({"confidence": rec.confidence + 1.5}, "confidence must lie in [0, 1]"),
        "timestamps_shape": ({"timestamps": np.arange(5.0)}, "timestamps must have shape"),
        "timestamps_decreasing": ({"timestamps": np.array([0.0, 0.1, 0.05, 0.2])}, "must not decrease"),
        "timestamps_inf": ({"timestamps": np.array([0.0, np.inf, 1.0, 2.0])}, "timestamps contain NaN"),
        "present_shape": ({"present": rec.present[:, :1]}, "present must have shape"),
        "present_values": ({"present": np.full((4, 2), 2)}, "present must be bool"),
        "layout": ({"layout": "coco17"}, "unknown layout 'coco17'"),
        "metadata_type": ({"metadata": [1, 2]}, "metadata must be a dict"),
        "metadata_json": ({"metadata": {"a": object()}}, "JSON-serialisable"),
        "metadata_nan": ({"metadata": {"a": float("nan")}}, "JSON-serialisable"),
    }


BAD_FIELDS = _bad_fields()


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_validation_names_the_problem(case: str) -> None:
    overrides, message = BAD_FIELDS[case]
    rec = make_recording(4, 2)
    fields = {
        "joints": rec.joints, "confidence": rec.confidence, "timestamps": rec.timestamps,
        "present": rec.present, "layout": rec.layout, "metadata": rec.metadata,
    }  # fmt: skip
    fields.update(overrides)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Recording(**fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path: Path) -> None:
    rec = make_recording(9, 3)
    path = tmp_path / "take.npz"
    rec.save(path)
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == set(RECORDING_KEYS)
        assert int(archive["format_version"]) == FORMAT_VERSION
        assert json.loads(str(archive["metadata_json"])) == rec.metadata
    back = Recording.load(path)
    for name in ("joints", "confidence", "timestamps", "present"):
        a, b = getattr(rec, name), getattr(back, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert back.layout == rec.layout
    assert back.metadata == rec.metadata
    assert back.metadata["big"] == 2**63 + 5  # 64-bit body IDs survive JSON


def test_save_writes_exactly_the_given_path(tmp_path: Path) -> None:
    rec = make_recording(3, 1)
    path = tmp_path / "take.rec"
    rec.save(str(path))
    assert path.is_file() and not (tmp_path / "take.rec.npz").exists()
    np.testing.assert_array_equal(Recording.load(path).joints, rec.joints)


def test_zero_persons_and_zero_frames_round_trip(tmp_path: Path) -> None:
    for n_t, n_p in ((0, 1), (5, 0)):
        rec = Recording(
            np.zeros((n_t, n_p, 25, 3)),
            np.zeros((n_t, n_p, 25)),
            np.arange(n_t) / 30.0,
            np.zeros((n_t, n_p), bool),
        )
        path = tmp_path / f"empty_{n_t}_{n_p}.npz"
        rec.save(path)
        back = Recording.load(path)
        assert back.joints.shape == (n_t, n_p, 25, 3)


def _bad_files() -> dict[str, tuple[dict[str, object], str]]:
    rec = make_recording()
    nan_joints = rec.joints.copy()
    nan_joints[0, 0, 0, 0] = np.nan
    return {
        "missing_key": ({"present": None}, "missing keys ['present']"),
        "wrong_shape": ({"confidence": rec.confidence[:, :, :20]}, "confidence must have shape"),
        "pickled_object": (
            {"joints": np.array([{"evil": 1}], dtype=object)},
            "'joints' cannot be read without pickle",
        ),
        "nan": ({"joints": nan_joints}, "joints contain NaN"),
        "future_version": (
            {"format_version": np.array(FORMAT_VERSION + 1)},
            "format_version 2 is not supported",
        ),
        "version_not_int": ({"format_version": np.array("1")}, "format_version must be an integer"),
        "layout_not_string": ({"layout": np.array([1, 2])}, "layout must be a string scalar"),
        "metadata_not_json": ({"metadata_json": np.array("{not json")}, "metadata_json is not valid JSON"),
        "metadata_not_object": ({"metadata_json": np.array("[1, 2]")}, "must hold a JSON object"),
    }


BAD_FILES = _bad_files()


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_load_refuses_bad_files(case: str, tmp_path: Path) -> None:
    overrides, message = BAD_FILES[case]
    path = tmp_path / f"bad_{case}.npz"
    save_raw(path, **overrides)
    with pytest.raises(ValueError) as info:
        Recording.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_load_refuses_non_archives(tmp_path: Path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.npz: not a readable recording"):
        Recording.load(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single.npy: not a recording .npz"):
        Recording.load(single)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Recording.load(tmp_path / "missing.npz")


# --------------------------------------------------------------------------- conversions


def test_from_ntu_to_ntu_keeps_joints_real_file() -> None:
    path = ntu_file("S001C003P008R002A058.skeleton")
    skel = read_skeleton(path)
    rec = Recording.from_ntu(skel)
    assert rec.joints.shape == (70, 2, 25, 3)
    assert rec.fps == pytest.approx(30.0)
    assert rec.metadata["ntu_name"]["action"] == 58 and rec.metadata["ntu_name"]["camera"] == 3
    assert rec.metadata["ntu_body_ids"] == skel.body_ids()
    back = rec.to_ntu()
    assert back.body_ids() == skel.body_ids()
    assert [len(f.bodies) for f in back.frames] == [len(f.bodies) for f in skel.frames]
    for f_orig, f_back in zip(skel.frames, back.frames, strict=True):
        for b_orig, b_back in zip(f_orig.bodies, f_back.bodies, strict=True):
            assert b_orig.body_id == b_back.body_id
            np.testing.assert_array_equal(b_back.xyz.astype(np.float32), b_orig.xyz.astype(np.float32))
            np.testing.assert_allclose(b_back.xyz, b_orig.xyz, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(b_back.joints[:, 11], b_orig.joints[:, 11])  # tracking states


def test_from_ntu_to_ntu_generated() -> None:
    joints = (np.random.default_rng(1).normal(0, 0.2, size=(5, 2, 25, 3)) + [0, 0, 3]).astype(np.float32)
    present = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 1]], dtype=bool)
    joints[~present] = 0
    skel = NtuSkeleton.from_arrays(joints, present=present, body_ids=[11, 22])
    rec = Recording.from_ntu(skel, fps=15.0)
    assert rec.fps == pytest.approx(15.0)
    assert "ntu_name" not in rec.metadata
    np.testing.assert_array_equal(rec.present, present)
    out = rec.to_ntu().to_arrays()
    np.testing.assert_array_equal(out[0], joints)
    assert out[3] == [11, 22]
    rec.metadata["ntu_body_ids"] = [1]  # no longer one per person: default IDs
    assert rec.to_ntu().body_ids()[0] == 72057594037927936
    with pytest.raises(ValueError, match="fps"):
        Recording.from_ntu(skel, fps=0.0)


def test_from_clip() -> None:
    clip = np.random.default_rng(2).normal(0, 0.2, size=(6, 25, 3)).astype(np.float32)
    clip[2] = 0.0
    rec = Recording.from_clip(clip, fps=25.0, metadata={"who": "dummy"})
    assert rec.joints.shape == (6, 1, 25, 3)
    assert rec.fps == pytest.approx(25.0)
    np.testing.assert_array_equal(rec.present[:, 0], [True, True, False, True, True, True])
    np.testing.assert_array_equal(rec.confidence[2], 0.0)
    np.testing.assert_array_equal(rec.confidence[3], 1.0)
    assert rec.metadata == {"who": "dummy"}

    multi = np.stack([clip, clip + 1.0], axis=1)
    conf = np.full((6, 2, 25), 0.25, dtype=np.float32)
    rec2 = Recording.from_clip(multi, confidence=conf)
    assert rec2.num_persons == 2
    np.testing.assert_array_equal(rec2.confidence, conf)
    rec3 = Recording.from_clip(clip, confidence=np.full((6, 25), 0.5))
    assert rec3.confidence.shape == (6, 1, 25)
    with pytest.raises(ValueError, match="shape"):
        Recording.from_clip(np.zeros((6, 24, 3)))
