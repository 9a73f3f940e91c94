"""The subscriber's limits on real sockets: big metadata and too many streams are refused and counted;
ended and idle streams are forgotten, and what is left of them keeps late starts and sequence gaps right."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pmr_stream.wire.checks import MAX_METADATA_BYTES, MetadataTooLarge, metadata_bytes
from pmr_stream.wire.schema import StreamEnd, decode, encode, pack
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber, SubscriberOptions
from tests.waiting import wait_until
from tests.wire.messages import TCP_ANY, frame, receive_all, start


def _meta(nbytes: int) -> dict[str, Any]:
    """Metadata of about ``nbytes`` msgpack-encoded (nested lists of floats, like a raw pose)."""
    rows = max(1, nbytes // (75 * 9))
    return {"reference_pose": [[0.123456789] * 75 for _ in range(rows)]}


def _end(stream: str, seq: int) -> StreamEnd:
    return StreamEnd(stream, seq, time.monotonic_ns(), time.time_ns(), "eof", 1)


def test_decode_refuses_big_metadata_before_walking_it() -> None:
    small, big = start(metadata=_meta(8000)), start(seq=7, session="abc", metadata=_meta(40_000))
    assert metadata_bytes(big.metadata) > MAX_METADATA_BYTES > metadata_bytes(small.metadata)
    assert decode(encode(small), max_metadata_bytes=MAX_METADATA_BYTES) == small
    assert decode(encode(big)) == big  # no limit unless asked for
    with pytest.raises(MetadataTooLarge, match="metadata is .* bytes > 16384") as exc:
        decode(encode(big), max_metadata_bytes=MAX_METADATA_BYTES)
    assert exc.value.reason == "metadata_too_large"
    assert (exc.value.stream, exc.value.session, exc.value.seq) == ("cam0", "abc", 7)


def test_big_metadata_is_refused_counted_and_the_stream_goes_on() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        sent = [
            pack(start("big", seq=0, metadata=_meta(900_000))),  # ~900 KB: refused
            pack(frame("big", seq=1)),  # its stream never opened: unknown
            pack(start("cam0", seq=0, metadata=_meta(8000))),
            pack(frame("cam0", seq=1)),
            pack(start("cam0", seq=2, metadata=_meta(20_000))),  # a re-announcement over the limit
            pack(frame("cam0", seq=3)),  # the refused start's seq arrived: not lost
            pack(frame("cam0", seq=5)),  # seq 4 was lost
        ]
        for data in sent:
            pub.send_raw(data)
        got = receive_all(sub, len(sent))
        assert [(r.topic, r.message.seq) for r in got] == [("raw/cam0", 0), ("raw/cam0", 1), ("raw/cam0", 3),
                                                           ("raw/cam0", 5)]  # fmt: skip
        assert dict(sub.refused) == {"metadata_too_large": 2}
        assert dict(sub.drops) == {"unknown_stream": 1}  # refusals are not decode errors
        assert sub.streams["raw/cam0"].seq_missing == 1 and sub.seq_missing == 1
        assert got[-1].start is not None and got[-1].start.seq == 0  # the accepted start is kept
        assert sub.stats()["refused"] == {"metadata_too_large": 2}
        assert "raw/big" not in sub.streams


def test_a_lower_metadata_limit_is_the_subscribers_option() -> None:
    opts = SubscriberOptions(max_metadata_bytes=100)
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"], options=opts) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(start(metadata={"k": "x" * 200}))
        pub.send(start("ok", metadata={"k": "x" * 50}))
        got = receive_all(sub, 2)
        assert [r.topic for r in got] == ["raw/ok"] and dict(sub.refused) == {"metadata_too_large": 1}
    with pytest.raises(ValueError, match="max_streams"):
        SubscriberOptions(max_streams=0)


def test_too_many_streams_are_refused_until_one_ends() -> None:
    opts = SubscriberOptions(max_streams=3)
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"], options=opts) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        sent = [pack(start(f"s{i}")) for i in range(4)]  # s3: one too many
        sent += [pack(frame("s3", seq=1)), pack(_end("s0", 1)), pack(start("s4")), pack(frame("s4", seq=1))]
        for data in sent:
            pub.send_raw(data)
        got = receive_all(sub, len(sent))
        assert [r.topic for r in got] == ["raw/s0", "raw/s1", "raw/s2", "raw/s0", "raw/s4", "raw/s4"]
        assert dict(sub.refused) == {"too_many_streams": 1}
        assert dict(sub.drops) == {"unknown_stream": 1}  # the frame of the refused stream
        # s0 ended: it was forgotten at once to make room for s4 (no more than 3 tracked at any time)
        assert set(sub.streams) == {"raw/s1", "raw/s2", "raw/s4"} and sub.forgotten == 1
        # a replayed start of the ended s0 does not re-open it, even though it had to be forgotten
        pub.send(start("s0", seq=0))
        pub.send(start("s0", seq=9))
        receive_all(sub, len(sent) + 2)
        assert sub.drops["seq_backwards"] == 1 and sub.drops["unknown_stream"] == 2
        assert "raw/s0" not in sub.streams and sub.refused["too_many_streams"] == 1


def test_ended_and_idle_streams_are_forgotten_and_come_back_right() -> None:
    opts = SubscriberOptions(ended_grace_s=0.1, idle_s=0.3)
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"], options=opts) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        first = [start("done", metadata=_meta(8000)), frame("done", seq=1), _end("done", 2),
                 start("quiet", metadata=_meta(8000)), frame("quiet", seq=1), frame("quiet", seq=2)]  # fmt: skip
        for m in first:
            pub.send(m)
        receive_all(sub, len(first))
        assert set(sub.streams) == {"raw/done", "raw/quiet"}

        def all_forgotten() -> bool:  # nothing arrives: forgetting is polled
            sub.expire()
            return not sub.streams

        wait_until(all_forgotten, interval_s=0.02, what="both streams to be forgotten")
        assert sub.forgotten == 2  # and with them, their starts and metadata
        later = [
            start("done", seq=1),  # a late re-announcement of the ended session: dropped, not re-opened
            start("done", seq=5),  # nor by a higher sequence number of that session
            frame("done", seq=6),
            frame("quiet", seq=4),  # the forgotten idle stream, before it announces itself: dropped
            start("quiet", seq=6),  # ... and now it does: resumed; seq 3 and 5 were lost
            frame("quiet", seq=7),
            start("done", seq=0, session="s2"),  # a restarted producer: a new stream state
            frame("done", seq=1),
        ]
        for m in later:
            pub.send(m)
        got = receive_all(sub, len(first) + len(later))
        assert [(r.topic, r.message.seq) for r in got] == [("raw/quiet", 6), ("raw/quiet", 7), ("raw/done", 0),
                                                           ("raw/done", 1)]  # fmt: skip
        assert dict(sub.drops) == {"seq_backwards": 1, "unknown_stream": 3}
        quiet, done = sub.streams["raw/quiet"], sub.streams["raw/done"]
        assert quiet.seq_missing == 1 and sub.seq_missing == 2  # seq 3 (counted when 4 came) and 5
        assert quiet.restarts == 0 and done.restarts == 1 and done.seq_missing == 0
        assert sub.stats()["forgotten"] == 2


def test_tombstones_are_bounded() -> None:
    opts = SubscriberOptions(max_streams=4, ended_grace_s=0.0)
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"], options=opts) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        for i in range(40):
            pub.send(start(f"t{i}"))
            pub.send(_end(f"t{i}", 1))
        got = receive_all(sub, 80)
        assert len(got) == 80 and not sub.refused  # every stream admitted: ended ones make room
        sub.expire()
        assert not sub.streams and sub.forgotten == 40
        assert len(sub._gone) <= 4  # what is remembered of forgotten streams has a bound too


def test_a_late_start_of_an_ended_session_does_not_reopen_it() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        for m in (start(seq=0), frame(seq=1), _end("cam0", 2), start(seq=1), start(seq=3), frame(seq=4),
                  start(seq=0, session="s2")):  # fmt: skip
            pub.send(m)
        got = receive_all(sub, 7)
        assert [(r.message.kind, r.message.seq) for r in got] == [
            ("start", 0),
            ("frame", 1),
            ("end", 2),
            ("start", 0),
        ]
        assert dict(sub.drops) == {"seq_backwards": 1, "unknown_stream": 2}
        st = sub.streams["raw/cam0"]
        assert st.restarts == 1 and st.start is not None and st.start.session == "s2" and not st.ended
