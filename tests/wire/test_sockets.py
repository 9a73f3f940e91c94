"""ZeroMQ helpers on real loopback sockets: PUB/SUB, exact topics, CONFLATE, CurveZMQ, Ctrl-C."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import pytest
import zmq

from pmr_stream.wire.curve import CurveOptions, generate_keypair, load_key_file
from pmr_stream.wire.schema import Message, unpack
from pmr_stream.wire.sockets import Publisher, SocketOptions, SubscriberSocket, stop_on_signals
from tests.waiting import wait_until
from tests.wire.messages import TCP_ANY, frame, start


def _collect(sub: SubscriberSocket, n: int, timeout_s: float = 20.0) -> list[bytes]:
    """Up to ``n`` frames: returns once ``n`` came, or after ``timeout_s`` with those that did."""
    out: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        data = sub.recv(50)
        if data is not None:
            out.append(data)
    return out


def test_publish_subscribe_on_loopback() -> None:
    with Publisher(TCP_ANY) as pub, SubscriberSocket(pub.endpoint, ["raw/"]) as sub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:") and not pub.endpoint.endswith(":*")
        assert pub.wait_for_subscribers(1, timeout_s=20)
        msgs: list[Message] = [start(), frame(seq=1), frame(seq=2)]
        for m in msgs:
            pub.send(m)
        got = [unpack(d)[1] for d in _collect(sub, 3)]
        assert got == msgs
        assert sub.socket.getsockopt(zmq.RCVHWM) == 1000
        assert sub.socket.getsockopt(zmq.MAXMSGSIZE) >= 1 << 20
        assert sub.events().connects == 1


def test_exact_stream_subscription_skips_longer_ids() -> None:
    with Publisher(TCP_ANY) as pub, SubscriberSocket(pub.endpoint, ["raw/cam1"]) as sub:
        assert pub.wait_for_subscribers(1, timeout_s=20)
        pub.send(frame(stream="cam10", seq=1))
        pub.send(frame(stream="cam1", seq=2))
        pub.send(frame(stream="cam1", seq=3, anonymized=True, model_id="m"))  # anon/cam1
        pub.send(frame(stream="cam1", seq=4))  # one connection keeps the order: all before it came first
        got: list[tuple[str, int]] = []

        def last_arrived() -> bool:
            data = sub.recv(100)
            if data is not None:
                topic, msg = unpack(data)
                got.append((topic, msg.seq))
            return bool(got) and got[-1][1] == 4

        wait_until(last_arrived, what="the last frame on raw/cam1")
        assert got == [("raw/cam1", 2), ("raw/cam1", 4)]


def test_conflate_keeps_only_the_newest() -> None:
    opts = SocketOptions(conflate=True)
    with (
        Publisher(TCP_ANY) as pub,
        SubscriberSocket(pub.endpoint, ["raw/"], opts) as sub,
        SubscriberSocket(pub.endpoint, ["raw/"]) as witness,
    ):
        assert pub.wait_for_subscribers(2, timeout_s=10)
        for i in range(1, 51):
            pub.send(frame(seq=i))
        # All 50 have reached this machine's sockets once a subscriber without CONFLATE holds them.
        assert len(_collect(witness, 50, timeout_s=20)) == 50
        seqs: list[int] = []

        def newest_arrived() -> bool:
            data = sub.recv(100)
            if data is not None:
                seqs.append(unpack(data)[1].seq)
            return bool(seqs) and seqs[-1] == 50

        wait_until(newest_arrived, timeout_s=20, what="message 50 on the conflating subscriber")
        # Each receive gives the newest message there: older ones were dropped, none came twice.
        assert seqs == sorted(set(seqs)) and len(seqs) < 50
        assert _collect(sub, 1, timeout_s=0.3) == []


def test_publisher_sees_subscriptions() -> None:
    with Publisher(TCP_ANY) as pub:
        assert not pub.wait_for_subscribers(1, timeout_s=0.2)
        with SubscriberSocket(pub.endpoint, ["raw/a", "anon/"]):
            assert pub.wait_for_subscribers(2, timeout_s=20)
        assert pub.subscribers == 2


def test_bad_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot bind"):
        Publisher(
            "tcp://no-such-interface-xyz:1", SocketOptions(insecure=True)
        )  # not loopback: allowed, then fails
    with Publisher(TCP_ANY) as pub, pytest.raises(ValueError, match="cannot bind"):
        Publisher(pub.endpoint)  # the port is taken


# ----------------------------------------------------------------------------- CurveZMQ


def test_kernel_buffer_is_set_on_the_socket() -> None:
    import zmq

    with Publisher(TCP_ANY, SocketOptions(kernel_buffer_bytes=8192)) as pub:
        assert pub.socket.getsockopt(zmq.SNDBUF) == 8192 and pub.socket.getsockopt(zmq.RCVBUF) == 8192
    with Publisher(TCP_ANY) as pub:
        assert pub.socket.getsockopt(zmq.SNDBUF) == -1  # the OS's auto-tuning
    with pytest.raises(ValueError, match="kernel_buffer_bytes must be >= 1024"):
        SocketOptions(kernel_buffer_bytes=100)


def test_generate_keypair_files(tmp_path: Path) -> None:
    pub, sec = generate_keypair(tmp_path, "producer")
    assert (pub.name, sec.name) == ("producer.key", "producer.key_secret")
    assert stat.S_IMODE(sec.stat().st_mode) == 0o600
    p1, s1 = load_key_file(sec, secret=True)
    p2, s2 = load_key_file(pub)
    assert p1 == p2 and len(p1) == 40 and s1 is not None and len(s1) == 40 and s2 is None
    assert s1.decode() not in pub.read_text()
    # pyzmq's own reader agrees
    import zmq.auth

    assert zmq.auth.load_certificate(str(sec)) == (p1, s1)
    with pytest.raises(FileExistsError):
        generate_keypair(tmp_path, "producer")
    with pytest.raises(ValueError, match="key name"):
        generate_keypair(tmp_path, "../evil")


def test_key_file_errors_name_the_file(tmp_path: Path) -> None:
    pub, _ = generate_keypair(tmp_path, "a")
    with pytest.raises(ValueError, match=r"a\.key: no secret-key"):
        load_key_file(pub, secret=True)
    with pytest.raises(FileNotFoundError, match="missing.key"):
        load_key_file(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text('curve\n    public-key = "tooshort"\n')
    with pytest.raises(ValueError, match=r"bad\.key:2: public-key is not a 40-character"):
        load_key_file(bad)
    (tmp_path / "empty.key").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no public-key"):
        load_key_file(tmp_path / "empty.key")


def _curve_setup(tmp_path: Path) -> tuple[CurveOptions, Path, Path, Path]:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    server_pub, server_sec = generate_keypair(keys, "server")
    client_pub, client_sec = generate_keypair(keys, "client")
    _, stranger_sec = generate_keypair(keys, "stranger")
    clients.mkdir()
    (clients / "client.key").write_bytes(client_pub.read_bytes())
    server = CurveOptions(secret_key_file=server_sec, authorized_keys_dir=clients)
    return server, server_pub, client_sec, stranger_sec


def test_curve_admits_authorized_clients_only(tmp_path: Path) -> None:
    server, server_pub, client_sec, stranger_sec = _curve_setup(tmp_path)
    client = SocketOptions(curve=CurveOptions(secret_key_file=client_sec, server_key_file=server_pub))
    stranger = SocketOptions(curve=CurveOptions(secret_key_file=stranger_sec, server_key_file=server_pub))
    with Publisher(TCP_ANY, SocketOptions(curve=server)) as pub:
        with (
            SubscriberSocket(pub.endpoint, ["raw/"], client) as good,
            SubscriberSocket(pub.endpoint, ["raw/"], stranger) as bad,
            SubscriberSocket(pub.endpoint, ["raw/"]) as plain,
        ):
            assert pub.wait_for_subscribers(1, timeout_s=10)
            wait_until(lambda: pub.events().handshake_failures >= 2, what="the server to refuse both others")
            for i in range(5):
                pub.send(frame(seq=i + 1))
            assert len(_collect(good, 5)) == 5
            assert _collect(bad, 1, timeout_s=0.3) == []
            assert _collect(plain, 1, timeout_s=0.1) == []
            assert pub.subscribers == 1
            assert good.events().handshakes >= 1
            assert bad.events().handshake_failures >= 1


def test_curve_misconfiguration_is_refused(tmp_path: Path) -> None:
    server, server_pub, client_sec, _ = _curve_setup(tmp_path)
    with pytest.raises(ValueError, match="authorized_keys_dir"):
        Publisher(TCP_ANY, SocketOptions(curve=CurveOptions(secret_key_file=server.secret_key_file)))
    with pytest.raises(ValueError, match="server_key_file"):
        SubscriberSocket(
            "tcp://127.0.0.1:1", ["raw/"], SocketOptions(curve=CurveOptions(secret_key_file=client_sec))
        )
    with pytest.raises(ValueError, match="no secret-key"):
        Publisher(
            TCP_ANY, SocketOptions(curve=CurveOptions(secret_key_file=server_pub, allow_any_client=True))
        )
    with pytest.raises(FileNotFoundError, match="authorized keys folder"):
        Publisher(
            TCP_ANY,
            SocketOptions(curve=CurveOptions(server.secret_key_file, authorized_keys_dir=tmp_path / "no")),
        )


# ----------------------------------------------------------------------------- Ctrl-C


def test_stop_on_signals_turns_ctrl_c_into_an_event() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)
        wait_until(stop.is_set, timeout_s=10, what="the stop event after SIGINT")
    assert signal.getsignal(signal.SIGINT) is before
