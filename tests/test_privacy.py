"""The allow-list of anonymized output (pmr_stream/wire/privacy.py): messages, ids, keys, and `pmr anonymize` files."""

from __future__ import annotations

import json
import os
import stat
import struct
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.cli import main
from pmr_stream.formats.io import load_recording
from pmr_stream.formats.ntu import NtuSkeleton, read_skeleton, write_skeleton
from pmr_stream.formats.ntu_dataset import project
from pmr_stream.formats.recording import Recording
from pmr_stream.wire.checks import STREAM_ID_RE
from pmr_stream.wire.privacy import (
    ANON_METADATA,
    ANON_SOURCE,
    CONFIDENCE,
    FILE_METADATA,
    WIRE_ALLOW,
    PersonIds,
    StreamIds,
    anon_end,
    anon_frame,
    anon_gap,
    anon_start,
    default_key_path,
    fresh_person_order,
    fresh_session,
    is_pseudonym,
    load_stream_key,
    pseudonym,
    reannounce,
    service_metadata,
)
from pmr_stream.wire.schema import FIELDS, FrameGap, FrameMessage, StreamEnd, StreamStart, pack

KEY = bytes(range(32))
RAW_ID = "S001C001P001R001A001"
KINECT_IDS = [72057594037931101, 72057594037931177]
PATH = "/home/alice/ntu/S001C001P001R001A001.skeleton"


def walk(n: int, offset: float = 0.0) -> np.ndarray:
    """A moving person ``(n, 25, 3)`` metres."""
    rng = np.random.default_rng(1)
    base = rng.normal(0, 0.25, (25, 3)).astype(np.float32) + np.array([offset, 0.0, 3.0], np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    return (base + 0.05 * np.sin(t / 6.0)).astype(np.float32)


def hostile_metadata(pose: np.ndarray) -> dict[str, Any]:
    """Metadata an attacker or a careless user could put in a recording or a stream start."""
    return {
        "reference_pose": pose.tolist(),  # a raw frame, exactly
        "source": PATH, "path": PATH, "stream": RAW_ID, "id": RAW_ID,
        "ntu_name": {"stem": RAW_ID, "performer": 1, "setup": 1, "camera": 1, "replication": 1, "action": 1},
        "ntu_body_ids": KINECT_IDS, "labels": ["P001", "performer"],
        "nested": {"deeper": {"pose": pose[:3].tolist(), "who": "P001"}},
    }  # fmt: skip


def encodings(text: str) -> list[bytes]:
    """``text`` as UTF-8 (msgpack, JSON, .skeleton) and UTF-32-LE (numpy string arrays in .npz)."""
    return [text.encode(), text.encode("utf-32-le")]


def raw_strings() -> list[bytes]:
    words = (
        RAW_ID,
        "P001",
        "performer",
        "alice",
        "reference_pose",
        "ntu_body_ids",
        *[str(i) for i in KINECT_IDS],
    )
    return [b for w in words for b in encodings(w)]


def assert_no_pose(blob: bytes, pose: np.ndarray) -> None:
    """No coordinate of ``pose`` appears in ``blob``: as msgpack float64, as a float32 joint, or as
    the decimal text a JSON copy of ``pose.tolist()`` holds."""
    for xyz in pose.astype(np.float64):
        assert struct.pack(">3d", *xyz) not in blob and struct.pack("<3f", *xyz) not in blob
        for v in xyz:
            assert struct.pack(">d", v) not in blob  # msgpack float64 of a raw coordinate
            assert not any(e in blob for e in encodings(repr(float(v))))


# ----------------------------------------------------------------------------- the allow-list itself


def test_the_allow_list_names_every_wire_field_and_nothing_else() -> None:
    for kind, fields in FIELDS.items():
        assert set(WIRE_ALLOW[kind]) == set(fields), kind
    assert set(service_metadata("dummy", "last", False)) == set(ANON_METADATA)
    assert CONFIDENCE.shape == (25,) and not CONFIDENCE.flags.writeable  # one constant: nobody changes it


def test_anonymized_control_messages_carry_nothing_of_the_raw_ones() -> None:
    pose = walk(1)[0]
    now_m, now_w = time.monotonic_ns(), time.time_ns()
    raw = StreamStart(stream=RAW_ID, seq=0, session="producer-7f3a", t_mono_ns=now_m, t_wall_ns=now_w, fps=30.0,
                      source=f"kinect:{PATH}", max_persons=6, metadata=hostile_metadata(pose))  # fmt: skip
    ids = StreamIds(KEY)
    sid = ids.anon(RAW_ID)
    meta = service_metadata("dummy", "last", False)
    start = anon_start(
        raw, stream=sid, seq=0, session=fresh_session(raw.session), model_id="m", metadata=meta
    )
    assert start.anonymized and start.model_id == "m" and start.source == ANON_SOURCE
    assert start.metadata == meta and start.session != raw.session and start.max_persons == 6
    gap = anon_gap(
        FrameGap(RAW_ID, 3, 2, 0.06, now_m, now_w, reason="P001 left via /home/alice"), stream=sid, seq=2
    )
    end = anon_end(StreamEnd(RAW_ID, 9, now_m, now_w, reason=PATH, frames=8), stream=sid, seq=3)
    assert gap.reason == "other" and end.reason == "other" and end.frames == 8
    assert anon_gap(FrameGap(RAW_ID, 3, 2, 0.06, now_m, now_w), stream=sid, seq=2).reason == "no_person"
    assert anon_end(StreamEnd(RAW_ID, 9, now_m, now_w, reason="eof"), stream=sid, seq=3).reason == "eof"
    src = FrameMessage(RAW_ID, 5, 4, 3, 0.1, now_m, now_w, pose, np.full(25, 0.37, np.float32))
    frame = anon_frame(src, stream=sid, seq=1, person=0, joints=pose + 0.5, model_id="m")
    assert np.array_equal(frame.confidence, CONFIDENCE) and frame.person == 0
    # the anon/ stream's own numbers, never the raw ones (which also count what never reached anon/)
    assert [m.seq for m in (start, frame, gap, end)] == [0, 1, 2, 3] and src.seq == 4
    again = reannounce(start, seq=4)  # to a new subscription: the same start, the next number
    assert again.seq == 4 and pack(again) == pack(start).replace(b"\xa3seq\x00", b"\xa3seq\x04")
    with pytest.raises(ValueError, match="anon/ start"):
        reannounce(raw, seq=1)
    for m in (start, gap, end, frame, again):
        blob = pack(m)
        assert not any(s in blob for s in raw_strings()), m.kind
        assert b"producer-7f3a" not in blob and b"kinect:" not in blob
        assert_no_pose(blob, pose)


def test_stream_id_pseudonyms() -> None:
    ids = StreamIds(KEY, public=["cam-lobby"])
    a = ids.anon(RAW_ID)
    assert a == pseudonym(KEY, RAW_ID) == StreamIds(KEY).anon(RAW_ID)  # stable for a key
    assert STREAM_ID_RE.fullmatch(a) and is_pseudonym(a) and len(a) == 18 and "P001" not in a
    assert StreamIds(bytes(32)).anon(RAW_ID) != a  # another deployment: unlinkable
    assert ids.anon("S001C001P002R001A001") != a
    assert ids.anon("cam-lobby") == "cam-lobby"  # declared public: unchanged
    long_id = "x" * 64
    assert STREAM_ID_RE.fullmatch(ids.anon(long_id))
    assert KEY.hex() not in repr(ids) and str(KEY) not in repr(ids)
    with pytest.raises(ValueError, match="form of a pseudonym"):
        StreamIds(KEY, public=[a])
    with pytest.raises(ValueError, match="not a stream id"):
        StreamIds(KEY, public=["bad id!"])
    with pytest.raises(ValueError, match="at least 16 bytes"):
        StreamIds(b"short")


def test_key_file_made_once_mode_0600_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cfg" / "stream_key"
    with pytest.raises(FileNotFoundError, match="--stream-key"):
        load_stream_key(path, create=False)
    key = load_stream_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_stream_key(path) == key and load_stream_key(path, create=False) == key
    monkeypatch.setenv("PMR_STREAM_KEY", str(path))
    assert default_key_path() == path and load_stream_key() == key
    monkeypatch.delenv("PMR_STREAM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_key_path() == tmp_path / "xdg" / "pmr-stream" / "stream_key"
    short = tmp_path / "short"
    short.write_bytes(b"123")
    short.chmod(0o600)
    with pytest.raises(ValueError, match="at least 16"):
        load_stream_key(short)
    loose = tmp_path / "loose"
    loose.write_bytes(os.urandom(32))
    loose.chmod(0o644)
    with pytest.raises(ValueError, match="readable by others"):
        load_stream_key(loose)
    with pytest.raises(ValueError, match="not a regular file"):
        load_stream_key(tmp_path)


def test_person_ids_are_fresh_by_first_appearance() -> None:
    ids = PersonIds()
    assert [ids.get(p) for p in (5, 3, 5, 0, 3)] == [0, 1, 0, 2, 1] and len(ids) == 3
    ids.forget(5)
    assert ids.get(5) == 3 and ids.get(3) == 1 and len(ids) == 3  # an evicted person comes back as a new one
    ids.reset()
    assert ids.get(3) == 0
    present = np.zeros((6, 4), bool)
    present[3:, 2] = True
    present[1:, 3] = True
    assert fresh_person_order(present) == [3, 2]  # slot 3 first seen first; never-present slots dropped
    assert fresh_person_order(np.zeros((4, 3), bool)) == [0]


# ----------------------------------------------------------------------------- pmr anonymize, every format


def hostile_recording(n: int = 40) -> tuple[Recording, np.ndarray]:
    """Two persons in slots 1 and 3 of 4 (slot 3 appears first), odd confidences, hostile metadata."""
    a, b = walk(n), walk(n, offset=1.2)
    joints = np.zeros((n, 4, 25, 3), np.float32)
    joints[5:, 1], joints[:, 3] = a[5:], b
    present = np.zeros((n, 4), bool)
    present[5:, 1] = present[:, 3] = True
    conf = np.where(present[:, :, None], np.float32(0.37), np.float32(0.0)) * np.ones((1, 1, 25), np.float32)
    conf[:, :, 7] = np.where(present, np.float32(0.5), 0)
    rec = Recording(joints=joints, confidence=conf, timestamps=np.arange(n) / 30.0, present=present,
                    metadata=hostile_metadata(joints[5, 1]))  # fmt: skip
    return rec, joints


def hostile_skeleton(path: Path, n: int = 40) -> np.ndarray:
    """A .skeleton with Kinect body ids and non-neutral per-body and per-joint fields."""
    x = np.stack([walk(n), walk(n, offset=1.2)], axis=1)
    skel = NtuSkeleton.from_arrays(x, body_ids=KINECT_IDS, source=PATH)
    for frame in skel.frames:
        for body in frame.bodies:
            body.clipped_edges, body.hand_left_state, body.hand_right_confidence = 3, 2, 1
            body.lean_x, body.lean_y, body.is_restricted = 0.4217, -0.1893, 1
            body.joints[:, 3:5] += 3.25  # depth pixels not those of a projection
            body.joints[:, 7:11] = [0.7071, 0.1234, -0.4321, 0.5555]
            body.joints[::2, 11] = 1  # inferred joints
    write_skeleton(path, skel)
    return x


@pytest.mark.parametrize("fmt", ["npz", "skeleton", "sgn", "stgcn"])
def test_pmr_anonymize_writes_only_the_allow_list(tmp_path: Path, fmt: str) -> None:
    rec, joints = hostile_recording()
    src = tmp_path / "S001C001P001R001A001.npz"
    rec.save(src)
    raw_lines: list[str] = []
    if fmt == "skeleton":  # a .skeleton input too: Kinect body ids, hand/lean/orientation fields
        src = tmp_path / "S001C001P001R001A001.skeleton"
        joints = hostile_skeleton(src)
        raw_lines = [
            " ".join(line.split()[:3]) for line in src.read_text().splitlines() if len(line.split()) == 12
        ]
    out = (
        tmp_path
        / {"npz": "anon.npz", "skeleton": "anon.skeleton", "sgn": "anon.npy", "stgcn": "anon.npz"}[fmt]
    )
    assert main(["anonymize", "--input", str(src), "--output", str(out), "--output-format", fmt]) == 0
    blob = out.read_bytes()
    if out.suffix == ".npz":
        with zipfile.ZipFile(out) as zf:
            blob = b"".join(zf.read(n) for n in zf.namelist())
    assert not any(s in blob for s in raw_strings())
    assert not any(e in blob for e in encodings("/home"))
    text = blob.decode("ascii", errors="replace")
    assert not any(f"{xyz} " in text for xyz in raw_lines[:100])  # no raw joint line of the .skeleton input
    pose = joints[5, 1] if fmt != "skeleton" else joints[0, 0]
    assert_no_pose(blob, pose)
    got = load_recording(out, fmt)
    raw_frames = joints.reshape(-1, 25, 3)
    raw_frames = raw_frames[np.abs(raw_frames).sum(axis=(1, 2)) > 0]
    for p in range(got.num_persons):
        for t in np.flatnonzero(got.present[:, p]):
            assert np.abs(raw_frames - got.joints[t, p]).max(axis=(1, 2)).min() > 1e-3  # no raw frame
    if fmt == "npz":
        assert set(got.metadata) <= set(FILE_METADATA) and got.metadata["anonymized"] is True
        assert got.num_persons == 2 and got.present[0, 0] and not got.present[0, 1]  # fresh ids: 0 came first
        np.testing.assert_array_equal(got.confidence, np.repeat(got.present[:, :, None], 25, axis=2))
    if fmt == "skeleton":
        skel = read_skeleton(out)
        assert not set(skel.body_ids()) & set(KINECT_IDS)
        for frame in skel.frames:
            for body in frame.bodies:
                assert (
                    body.clipped_edges,
                    body.hand_left_state,
                    body.hand_right_confidence,
                    body.is_restricted,
                ) == (0,) * 4
                assert body.lean_x == body.lean_y == 0.0
                assert np.all(body.joints[:, 7:11] == 0) and np.all(body.joints[:, 11] == 2)
                np.testing.assert_allclose(
                    body.joints[:, 3:5], project(body.joints[:, :3], (512, 424, 365.5, 256.0, 212.0))
                )


@pytest.mark.parametrize("fmt", ["npz", "skeleton"])
def test_pmr_anonymize_a_real_ntu_file_keeps_no_label(ntu_dir: Path, tmp_path: Path, fmt: str) -> None:
    src = ntu_dir / "S001C001P001R001A001.skeleton"
    if not src.exists():
        pytest.skip(f"{src} not found")
    raw_ids = read_skeleton(src).body_ids()
    out = tmp_path / f"anon.{fmt}"
    assert main(["anonymize", "--input", str(src), "--output", str(out)]) == 0
    if fmt == "npz":
        meta = json.loads(str(np.load(out, allow_pickle=False)["metadata_json"]))
        assert set(meta) <= set(FILE_METADATA) and "P001" not in json.dumps(meta)
    else:
        assert not set(read_skeleton(out).body_ids()) & set(raw_ids)
        assert not any(str(i).encode() in out.read_bytes() for i in raw_ids)


def test_pmr_view_show_original_needs_the_anonymizers_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no_key"
    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--show-original", "--stream-key", str(missing),
               "--duration", "0.1"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"no stream key at {missing}" in err[0]
    assert not missing.exists()  # the viewer never makes a key: it would pair nothing
