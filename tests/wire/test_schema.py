"""The message schema: exact round trips, and every kind of bad payload refused with its reason."""

from __future__ import annotations

import pickle
import struct
from typing import Any

import msgpack
import numpy as np
import pytest

from pmr_stream.wire.checks import REASONS, WireError
from pmr_stream.wire.schema import (
    MAX_MESSAGE_BYTES,
    SCHEMA_VERSION,
    FrameGap,
    FrameMessage,
    StreamEnd,
    decode,
    encode,
    pack,
    subscription,
    to_dict,
    topic_for,
    unpack,
)
from tests.wire.messages import frame, start


def test_frame_round_trip_is_exact_and_small() -> None:
    m = frame(seq=7, frame_index=3, person=2)
    payload = encode(m)
    assert len(payload) < 600  # 300 B joints + 100 B confidence + the header
    back = decode(payload)
    assert isinstance(back, FrameMessage)
    assert back == m
    assert back.joints.dtype == np.float32 and back.joints.shape == (25, 3)
    np.testing.assert_array_equal(back.joints, m.joints)
    assert (back.stream, back.person, back.seq, back.frame, back.pts_s) == ("cam0", 2, 7, 3, 0.1)
    assert back != frame(seq=7, frame_index=3, person=2, joints=m.joints + 1e-6)


def test_joints_are_raw_little_endian_float32() -> None:
    m = frame()
    d = msgpack.unpackb(encode(m))
    assert d["v"] == SCHEMA_VERSION and d["kind"] == "frame"
    x = struct.unpack("<75f", d["joints"])
    np.testing.assert_array_equal(np.array(x, np.float32).reshape(25, 3), m.joints)
    assert struct.unpack("<25f", d["confidence"])[-1] == 1.0


@pytest.mark.parametrize(
    "msg",
    [
        start(
            metadata={
                "source": "x.skeleton",
                "ntu_body_ids": [72057594037931101, 2**64 - 1],
                "nested": {"a": [1.5, None, True]},
            }
        ),
        FrameGap("cam0", 3, 9, 0.3, 1, 2),
        StreamEnd("cam0", 4, 1, 2, "interrupted", 10),
        frame(anonymized=True, model_id="pmr-ntu-v1"),
        start(anonymized=True, model_id="pmr-ntu-v1"),
    ],
    ids=["start", "gap", "end", "anon-frame", "anon-start"],
)
def test_every_kind_round_trips(msg: Any) -> None:
    assert decode(encode(msg)) == msg
    topic, back = unpack(pack(msg))
    assert back == msg
    assert topic == ("anon/cam0" if msg.anonymized else "raw/cam0")


def test_topics_and_subscriptions() -> None:
    assert topic_for("cam1") == "raw/cam1"
    assert topic_for("cam1", anonymized=True) == "anon/cam1"
    assert subscription("raw/") == b"raw/"
    assert subscription("") == b""
    # a complete topic is closed with NUL so that raw/cam1 does not match raw/cam10
    assert subscription("raw/cam1") == b"raw/cam1\0"
    assert not pack(frame(stream="cam10")).startswith(subscription("raw/cam1"))
    assert pack(frame(stream="cam1")).startswith(subscription("raw/cam1"))


# ----------------------------------------------------------------------------- bad payloads


def _payload(**changes: Any) -> bytes:
    """A valid frame payload with fields changed (``None`` removes a field)."""
    d = to_dict(frame())
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return msgpack.packb(d, use_bin_type=True)


_NAN_JOINTS = np.zeros((25, 3), "<f4")
_NAN_JOINTS[4, 1] = np.nan
_INF_JOINTS = np.zeros((25, 3), "<f4")
_INF_JOINTS[0, 0] = -np.inf
_NAN_CONF = np.ones(25, "<f4")
_NAN_CONF[3] = np.nan

BAD_PAYLOADS: list[tuple[str, bytes, str]] = [
    ("truncated", encode(frame())[:-7], "not_msgpack"),
    ("truncated-header", encode(frame())[:3], "not_msgpack"),
    ("empty", b"", "not_msgpack"),
    ("not-msgpack", b"\xc1\xc1\xc1", "not_msgpack"),
    ("trailing-bytes", encode(frame()) + b"\x00", "not_msgpack"),
    ("a-pickle", pickle.dumps({"v": 1, "kind": "frame"}), "not_msgpack"),
    ("a-list", msgpack.packb([1, 2, 3]), "not_a_map"),
    ("int-keys", msgpack.packb({1: 2}), "not_msgpack"),
    ("ext-type", msgpack.packb({"v": msgpack.ExtType(5, b"x")}), "not_msgpack"),
    ("no-version", _payload(v=None), "fields"),
    ("version-2", _payload(v=2), "version"),
    ("version-0", _payload(v=0), "version"),
    ("version-as-text", _payload(v="1"), "version"),
    ("version-as-bool", _payload(v=True), "version"),
    ("unknown-kind", _payload(kind="pose"), "kind"),
    ("missing-field", _payload(seq=None), "fields"),
    ("extra-field", _payload(extra=1), "fields"),
    ("person-as-text", _payload(person="0"), "type"),
    ("seq-as-bool", _payload(seq=True), "type"),
    ("seq-as-float", _payload(seq=1.0), "type"),
    ("seq-negative", _payload(seq=-1), "range"),
    ("pts-as-text", _payload(pts_s="0"), "type"),
    ("pts-nan", _payload(pts_s=float("nan")), "non_finite"),
    ("pts-inf", _payload(pts_s=float("inf")), "non_finite"),
    ("pts-negative", _payload(pts_s=-1.0), "range"),
    ("joints-as-list", _payload(joints=[0.0] * 75), "type"),
    ("joints-short", _payload(joints=b"\0" * 299), "size"),
    ("joints-long", _payload(joints=b"\0" * 312), "size"),
    ("joints-(33,3)", _payload(joints=b"\0" * 33 * 12), "size"),
    ("confidence-short", _payload(confidence=b"\0" * 96), "size"),
    ("joints-nan", _payload(joints=_NAN_JOINTS.tobytes()), "non_finite"),
    ("joints-inf", _payload(joints=_INF_JOINTS.tobytes()), "non_finite"),
    ("joints-far", _payload(joints=np.full((25, 3), 5000, "<f4").tobytes()), "range"),
    ("joints-huge", _payload(joints=np.full((25, 3), -3e38, "<f4").tobytes()), "range"),
    ("confidence-nan", _payload(confidence=_NAN_CONF.tobytes()), "non_finite"),
    ("confidence-above-1", _payload(confidence=np.full(25, 1.5, "<f4").tobytes()), "range"),
    ("stream-slash", _payload(stream="a/b"), "stream_id"),
    ("stream-empty", _payload(stream=""), "stream_id"),
    ("stream-too-long", _payload(stream="x" * 65), "stream_id"),
    ("stream-non-ascii", _payload(stream="kamera-ä"), "stream_id"),
    ("stream-as-bytes", _payload(stream=b"cam0"), "type"),
    ("layout-coco", _payload(layout="coco17"), "layout"),
    ("anonymized-without-model", _payload(anonymized=True), "fields"),
    ("model-on-raw", _payload(model_id="m"), "fields"),
    ("bad-utf8", b"\x81\xa1v\xa2\xff\xfe", "not_msgpack"),
    ("too-deep", b"\x91" * 5000, "not_msgpack"),
]


@pytest.mark.parametrize(
    "payload,reason", [(p, r) for _, p, r in BAD_PAYLOADS], ids=[n for n, _, _ in BAD_PAYLOADS]
)
def test_bad_payload_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as ei:
        decode(payload)
    assert ei.value.reason == reason, str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert reason in REASONS
    assert str(ei.value).startswith(reason + ":")


def test_start_metadata_is_checked() -> None:
    d = to_dict(start())
    d["metadata"] = {"x": float("nan")}
    with pytest.raises(WireError, match="metadata.x"):
        decode(msgpack.packb(d))
    nested: dict[str, Any] = {}
    cur = nested
    for _ in range(12):
        cur["a"] = {}
        cur = cur["a"]
    d["metadata"] = nested
    with pytest.raises(WireError) as ei:
        decode(msgpack.packb(d))
    assert ei.value.reason == "range"
    d["metadata"] = [1, 2]
    with pytest.raises(WireError) as ei:
        decode(msgpack.packb(d))
    assert ei.value.reason == "type"
    d["metadata"] = {}
    d["fps"] = 0
    with pytest.raises(WireError) as ei:
        decode(msgpack.packb(d))
    assert ei.value.reason == "range"


def test_a_100_mb_payload_is_refused_before_parsing() -> None:
    big = b"\xc6" + struct.pack(">I", 100 * 2**20) + bytes(100 * 2**20)  # a valid msgpack bin of 100 MB
    with pytest.raises(WireError) as ei:
        decode(big)
    assert ei.value.reason == "too_large"
    with pytest.raises(WireError) as ei:
        unpack(b"raw/cam0\0" + big)
    assert ei.value.reason == "too_large"
    assert MAX_MESSAGE_BYTES < len(big)


def test_framing_and_topic_mismatch() -> None:
    for data in (b"", b"no-separator", b"\0" + encode(frame())):
        with pytest.raises(WireError) as ei:
            unpack(data)
        assert ei.value.reason == "framing"
    with pytest.raises(WireError) as ei:
        unpack(b"raw/other\0" + encode(frame()))
    assert ei.value.reason == "topic_mismatch"
    with pytest.raises(WireError) as ei:
        unpack(b"anon/cam0\0" + encode(frame()))
    assert ei.value.reason == "topic_mismatch"


def test_far_but_valid_joints_are_accepted() -> None:
    m = frame(
        joints=np.full((25, 3), 900.0, np.float32)
    )  # within 1000 m, though the fast check does not accept it
    back = decode(encode(m))
    assert isinstance(back, FrameMessage) and back == m and float(back.joints.max()) == 900.0


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"joints": np.zeros((24, 3))}, "size"),
        ({"joints": np.full((25, 3), np.nan)}, "non_finite"),
        ({"confidence": -np.ones(25)}, "range"),
        ({"person": -1}, "range"),
        ({"stream": "raw/x"}, "stream_id"),
        ({"joints": np.zeros((25, 3), complex)}, "type"),
    ],
)
def test_bad_messages_cannot_be_built(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError) as ei:
        frame(**kwargs)
    assert ei.value.reason == reason


def test_encode_refuses_oversized_messages() -> None:
    m = start(metadata={"blob": "x" * 1000})
    with pytest.raises(WireError) as ei:
        encode(m, max_bytes=1024)
    assert ei.value.reason == "too_large"
    assert len(encode(m)) > 1000


def test_wire_error_reasons_are_known() -> None:
    with pytest.raises(ValueError, match="unknown wire error reason"):
        WireError("made_up", "x")
