"""The validating subscriber on real sockets: bad messages are counted and dropped, good ones arrive."""

from __future__ import annotations

import threading
import time
from typing import Any

import msgpack
import numpy as np

from pmr_stream.wire.schema import FrameMessage, StreamEnd, StreamStart, encode, pack, to_dict
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Received, Subscriber, SubscriberOptions
from tests.waiting import wait_until
from tests.wire.messages import TCP_ANY, frame, receive_all, start


def _raw(seq: int, **changes: Any) -> bytes:
    """A packed raw/cam0 frame whose payload fields are changed after validation."""
    d = to_dict(frame(seq=seq))
    d.update(changes)
    return b"raw/cam0\0" + msgpack.packb(d, use_bin_type=True)


def test_bad_messages_are_counted_dropped_and_good_ones_arrive() -> None:
    nan = np.zeros((25, 3), "<f4")
    nan[3, 2] = np.nan
    inf = np.zeros((25, 3), "<f4")
    inf[7, 0] = np.inf
    sent: list[bytes] = [
        pack(start(seq=0)),
        pack(frame(seq=1)),
        pack(frame(seq=2))[:-10],  # truncated
        _raw(2, v=2),  # wrong version
        _raw(2, joints=b"\0" * 299),  # wrong size
        _raw(2, confidence=b"\0" * 104),  # wrong size
        _raw(2, joints=nan.tobytes()),  # NaN
        _raw(2, joints=inf.tobytes()),  # inf
        pack(frame(stream="ghost", seq=1)),  # unknown stream
        pack(frame(seq=1)),  # sequence number goes back (a replay)
        pack(frame(seq=0)),  # and further back
        pack(frame(seq=2)),
        b"raw/cam9\0" + encode(frame(seq=3)),  # topic does not match the message
        b"raw/garbage without a separator",
        pack(frame(seq=5)),  # 3 and 4 never came
        pack(StreamEnd("cam0", 6, 1, 2, "eof", 3)),
        pack(frame(seq=7)),  # after the end
    ]
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        for data in sent:
            pub.send_raw(data)
        got = receive_all(sub, len(sent))
        assert sub.received == len(sent)
        assert [(r.message.kind, r.message.seq) for r in got] == [
            ("start", 0),
            ("frame", 1),
            ("frame", 2),
            ("frame", 5),
            ("end", 6),
        ]
        np.testing.assert_array_equal(got[1].message.joints, frame(seq=1).joints)  # type: ignore[union-attr]
        assert dict(sub.drops) == {
            "not_msgpack": 1, "version": 1, "size": 2, "non_finite": 2, "unknown_stream": 2,
            "seq_backwards": 2, "topic_mismatch": 1, "framing": 1,
        }  # fmt: skip
        assert sub.decode_errors == 8
        cam0 = sub.streams["raw/cam0"]
        assert cam0.frames == 3 and cam0.seq_missing == 2 and cam0.ended
        assert dict(cam0.drops) == {"seq_backwards": 2, "unknown_stream": 1}
        assert dict(sub.unknown_streams) == {"raw/ghost": 1, "raw/cam0": 1}
        assert "raw/ghost" not in sub.streams
        assert sub.stats()["streams"]["raw/cam0"]["ended"] == "eof"


def test_a_100_mb_message_is_refused_and_the_subscriber_goes_on() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(start(seq=0))
        pub.send(frame(seq=1))
        before = receive_all(sub, 2)
        assert [r.message.seq for r in before] == [0, 1]
        pub.send_raw(b"raw/cam0\0" + bytes(100 * 2**20))  # 100 MB
        # ZeroMQ refuses it (MAXMSGSIZE) and drops the connection; the SUB reconnects.
        after: list[Received] = []
        seq = 2
        deadline = time.monotonic() + 30
        while not after and time.monotonic() < deadline:
            pub.send(frame(seq=seq))
            seq += 1
            pub.poll_subscriptions()
            r = sub.receive(0.05)
            if r is not None:
                after.append(r)
        assert after, "no good message arrived after the 100 MB one"
        assert isinstance(after[0].message, FrameMessage) and after[0].message.seq >= 2
        t = sub.socket.events()
        assert t.cut == 1 and t.reconnects == 1  # ZeroMQ refused it and cut the connection; we reconnected
        assert dict(sub.drops) == {"connection_cut": 1}  # counted with its reason
        assert sub.received == 2 + len(after)  # the 100 MB message never reached the application


def test_late_subscriber_is_served_from_the_next_stream_start() -> None:
    with Publisher(TCP_ANY) as pub:
        pub.send(start(seq=0))  # nobody is listening yet: lost, as PUB/SUB does
        with Subscriber(pub.endpoint, ["raw/"]) as sub:
            assert pub.wait_for_subscribers(1, timeout_s=20)
            for s in range(1, 6):
                pub.send(frame(seq=s))
            pub.send(start(seq=6))  # the periodic re-announcement
            for s in range(7, 11):
                pub.send(frame(seq=s))
            got = receive_all(sub, 10)
            assert [r.message.seq for r in got] == [6, 7, 8, 9, 10]
            assert dict(sub.drops) == {"unknown_stream": 5}
            assert all(r.start is not None and r.start.seq == 6 for r in got)
            assert sub.streams["raw/cam0"].seq_missing == 0


def test_restarted_producer_resets_sequence_tracking() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        for m in (start(seq=0, session="a"), frame(seq=1), frame(seq=2),
                  start(seq=0, session="b"), frame(seq=1), start(seq=2, session="b")):  # fmt: skip
            pub.send(m)
        got = receive_all(sub, 6)
        assert [r.message.seq for r in got] == [0, 1, 2, 0, 1, 2]
        assert not sub.drops
        st = sub.streams["raw/cam0"]
        assert st.restarts == 1 and st.starts == 2 and st.start is not None and st.start.session == "b"
        assert isinstance(got[-1].message, StreamStart)


def test_without_require_start_frames_are_accepted_unannounced() -> None:
    with (
        Publisher(TCP_ANY) as pub,
        Subscriber(pub.endpoint, ["raw/"], options=SubscriberOptions(require_start=False)) as sub,
    ):
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(frame(seq=4))
        pub.send(frame(seq=5))
        got = receive_all(sub, 2)
        assert [r.message.seq for r in got] == [4, 5]
        assert got[0].start is None and not sub.drops


def test_stats_rate_persons_latency() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(start(seq=0))

        def send() -> None:
            seq = 1
            for f in range(30):
                for p in range(2):
                    pub.send(frame(seq=seq, frame_index=f, person=p, t_wall_ns=time.time_ns()))
                    seq += 1
                time.sleep(0.01)  # the producer's pace, about 100 frames per second: the rate under test

        sender = threading.Thread(target=send)
        sender.start()
        receive_all(sub, 61)
        sender.join()
        st = sub.streams["raw/cam0"]
        assert st.frames == 60 and st.persons() == 2
        p50, p99 = st.latency_percentiles()
        assert 0 <= p50 <= p99 < 1000
        assert 20 < st.rate(window_s=5.0) < 120  # 30 frames in a bit over 0.3 s
        summary = sub.stats()["streams"]["raw/cam0"]
        assert summary["frames"] == 60 and summary["persons"] == 2


def test_iter_stops_on_event_and_drains_what_is_queued() -> None:
    with Publisher(TCP_ANY) as pub, Subscriber(pub.endpoint, ["raw/"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(start(seq=0))
        for s in range(1, 31):
            pub.send(frame(seq=s))
        stop = threading.Event()
        stop.set()
        got: list[int] = []

        def handed_out_all() -> bool:
            # With stop set, iter returns at once with what is queued here (maybe not all 31 yet).
            got.extend(r.message.seq for r in sub.iter(stop=stop))
            return len(got) >= 31

        wait_until(handed_out_all, what="iter(stop=set) to hand out all 31 messages")
        assert got == list(range(31))
