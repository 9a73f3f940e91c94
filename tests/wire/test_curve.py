"""CurveZMQ where raw skeletons travel: the non-loopback rule and failed handshakes (real sockets on loopback)."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pmr_stream.wire.curve import (
    CurveOptions,
    InsecureEndpointError,
    add_curve_arguments,
    curve_from_args,
    generate_keypair,
    insecure_from_args,
    is_local_endpoint,
)
from pmr_stream.wire.schema import FrameMessage, StreamStart
from pmr_stream.wire.sockets import HANDSHAKE_RETRY_S, Publisher, SocketOptions, SubscriberSocket
from pmr_stream.wire.subscriber import Received, Subscriber

LOOPBACK = "tcp://127.0.0.1:*"


def _keys(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "keys"
    out: dict[str, Path] = {}
    for name in ("server", "client", "stranger"):
        out[name + ".key"], out[name + ".key_secret"] = generate_keypair(d, name)
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "client.key").write_bytes(out["client.key"].read_bytes())
    out["clients"] = clients
    return out


def _server(k: dict[str, Path]) -> SocketOptions:
    return SocketOptions(curve=CurveOptions(k["server.key_secret"], authorized_keys_dir=k["clients"]))


def _client(k: dict[str, Path], who: str = "client", server_key: str = "server.key") -> SocketOptions:
    return SocketOptions(curve=CurveOptions(k[who + ".key_secret"], server_key_file=k[server_key]))


def _start() -> StreamStart:
    return StreamStart(stream="cam", seq=0, session="s", t_mono_ns=time.monotonic_ns(), t_wall_ns=time.time_ns(),
                       fps=30.0, source="test", max_persons=1)  # fmt: skip


def _frame(seq: int) -> FrameMessage:
    return FrameMessage(stream="cam", person=0, seq=seq, frame=seq, pts_s=seq / 30, t_mono_ns=time.monotonic_ns(),
                        t_wall_ns=time.time_ns(), joints=np.zeros((25, 3), np.float32),
                        confidence=np.ones(25, np.float32))  # fmt: skip


# ----------------------------------------------------------------------------- which addresses are local


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("tcp://127.0.0.1:5555", True), ("tcp://127.3.2.1:*", True), ("tcp://localhost:5555", True),
        ("tcp://[::1]:5555", True), ("tcp://[::ffff:127.0.0.1]:5555", True), ("ipc:///tmp/x.ipc", True),
        ("inproc://x", True), ("tcp://10.0.0.1:5555;127.0.0.1:5556", True),
        ("tcp://*:5555", False), ("tcp://0.0.0.0:5555", False), ("tcp://[::]:5555", False),
        ("tcp://192.168.1.20:5555", False), ("tcp://producer-host:5555", False), ("tcp://eth0:5555", False),
        ("tcp://127.0.0.1:5555;10.0.0.2:5556", False), ("epgm://eth0;239.192.1.1:5555", False), ("bogus", False),
    ],
)  # fmt: skip
def test_is_local_endpoint(endpoint: str, local: bool) -> None:
    assert is_local_endpoint(endpoint) is local


# ----------------------------------------------------------------------------- raw skeletons stay on the host


@pytest.mark.parametrize(
    "endpoint", ["tcp://*:*", "tcp://0.0.0.0:*", "tcp://[::]:*", "tcp://192.168.77.1:5555"]
)
def test_raw_sockets_refuse_non_loopback_without_curve(endpoint: str) -> None:
    with pytest.raises(InsecureEndpointError, match="raw skeletons, which identify people.*--insecure") as e:
        Publisher(endpoint)  # a producer's publisher carries raw/ (the default)
    assert "\n" not in str(e.value) and "refusing to bind" in str(e.value)
    with pytest.raises(InsecureEndpointError, match="refusing to bind"):
        SubscriberSocket(endpoint, ["raw/"], bind=True)
    with pytest.raises(InsecureEndpointError, match="refusing to bind"):
        SubscriberSocket(endpoint, [""], bind=True)  # everything includes raw/
    with pytest.raises(InsecureEndpointError, match="refusing to bind"):
        SubscriberSocket(endpoint, ["raw/cam1", "anon/"], bind=True)


def test_connecting_raw_to_another_host_is_refused_too() -> None:
    """The direction does not matter: raw skeletons would cross the network in clear either way."""
    with pytest.raises(
        InsecureEndpointError, match="refusing to connect to tcp://10.9.8.7:5555.*--curve-server-key"
    ):
        SubscriberSocket("tcp://10.9.8.7:5555", ["raw/"])
    with pytest.raises(InsecureEndpointError, match="refusing to connect to"):
        Publisher("tcp://10.9.8.7:5555", bind=False)  # pmr produce --connect to a remote binding subscriber


def test_what_may_use_any_address(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    k = _keys(tmp_path)
    # anon/ only, loopback, ipc: allowed in clear
    with SubscriberSocket("tcp://0.0.0.0:*", ["anon/"], bind=True), \
            Publisher("tcp://0.0.0.0:*", carries_raw=False), \
            Publisher("tcp://127.0.0.2:*"), Publisher(f"ipc://{tmp_path}/raw.ipc"):  # fmt: skip
        pass
    # raw with CURVE: allowed
    with Publisher("tcp://0.0.0.0:*", _server(k)) as pub:
        assert pub.carries_raw
    # raw in clear with an explicit insecure: allowed, with a warning
    with caplog.at_level(logging.WARNING, "pmr_stream.wire.curve"), \
            Publisher("tcp://0.0.0.0:*", SocketOptions(insecure=True)):  # fmt: skip
        pass
    assert any(
        "raw skeletons in clear text" in r.getMessage() and "0.0.0.0" in r.getMessage()
        for r in caplog.records
    )


def test_a_publisher_declared_anon_never_sends_raw() -> None:
    with Publisher(LOOPBACK, carries_raw=False) as pub:
        pub.send(StreamStart(stream="cam", seq=0, session="s", t_mono_ns=1, t_wall_ns=1, fps=30.0, source="t",
                             max_persons=1, anonymized=True, model_id="m"))  # fmt: skip
        with pytest.raises(ValueError, match="carries_raw=False"):
            pub.send(_start())
        assert pub.sent == 1


# ----------------------------------------------------------------------------- the flags, declared once


def _parse(argv: list[str], prefix: str = "", role: str = "") -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_curve_arguments(p, prefix, role=role)
    return p.parse_args(argv)


def test_curve_flags_with_a_prefix(tmp_path: Path) -> None:
    a = _parse(["--raw-curve-secret", "s", "--raw-curve-server-key", "k", "--raw-insecure"], "raw-", "client")
    assert curve_from_args(a, "raw-", bind=False) == CurveOptions(Path("s"), server_key_file=Path("k"))
    assert insecure_from_args(a, "raw-") and not insecure_from_args(a)
    with pytest.raises(SystemExit):  # a client has no admitted-clients folder
        _parse(["--raw-curve-clients", "d"], "raw-", "client")
    assert curve_from_args(_parse([]), bind=True) is None
    cases = [
        (["--curve-secret", "s"], False, "--curve-secret on a connecting socket .* needs --curve-server-key"),
        (["--curve-secret", "s"], True, "needs --curve-clients DIR .* or --curve-allow-any"),
        (
            ["--curve-secret", "s", "--curve-server-key", "k"],
            True,
            "--curve-server-key is for the connecting side",
        ),
        (["--curve-secret", "s", "--curve-allow-any"], False, "--curve-allow-any is for the binding side"),
        (["--curve-clients", "d"], True, "--curve-clients needs --curve-secret"),
    ]
    for argv, bind, match in cases:
        with pytest.raises(ValueError, match=match):
            curve_from_args(_parse(argv), bind=bind)


# ----------------------------------------------------------------------------- a failed handshake is one


def _wait(cond: Callable[[], bool], timeout_s: float, sub: Subscriber) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        sub.receive(0.05)
    return bool(cond())


@pytest.mark.parametrize("who", ["no curve", "wrong server key", "stranger"])
def test_a_failed_handshake_is_reported_as_one_not_as_a_cut(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, who: str
) -> None:
    k = _keys(tmp_path)
    opts = {"no curve": SocketOptions(), "wrong server key": _client(k, server_key="stranger.key"),
            "stranger": _client(k, "stranger")}[who]  # fmt: skip
    with caplog.at_level(logging.WARNING), Publisher(LOOPBACK, _server(k)) as pub, \
            Subscriber(pub.endpoint, ["raw/"], opts) as sub:  # fmt: skip
        # two failures: the first, and a retry after HANDSHAKE_RETRY_S[0]; a cut would be counted in between
        assert _wait(lambda: sub.drops["handshake_failed"] >= 2, 20 + HANDSHAKE_RETRY_S[0], sub), dict(
            sub.drops
        )
        pub.send(_start())
        pub.send(_frame(1))
        assert sub.receive(0.2) is None  # nothing passes
        t = sub.socket.events()
        stats = sub.stats()
        server_failures = pub.events().handshake_failures
    assert "connection_cut" not in sub.drops and t.cut == 0, (dict(sub.drops), t)
    assert t.handshake_failures >= 2 and stats["transport"]["handshake_failures"] >= 2
    assert t.connects <= 4, t  # retried after a growing wait, not every reconnect_ivl_ms
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(ln.startswith(f"{pub.endpoint}: CURVE handshake failed: ") for ln in lines), lines
    assert not any("over 1048576 bytes" in ln for ln in lines), lines
    assert server_failures >= 1  # the server's monitor thread saw it too
    assert any(ln.startswith(f"a client of {pub.endpoint}: CURVE handshake failed") for ln in lines), lines


def test_the_right_keys_still_get_through_after_failures(tmp_path: Path) -> None:
    k = _keys(tmp_path)
    with Publisher(LOOPBACK, _server(k)) as pub, Subscriber(pub.endpoint, ["raw/"], _client(k)) as good, \
            Subscriber(pub.endpoint, ["raw/"]) as plain:  # fmt: skip
        assert pub.wait_for_subscribers(1, timeout_s=20)
        assert _wait(lambda: plain.drops["handshake_failed"] >= 1, 20, plain)
        pub.send(_start())
        for i in range(1, 6):
            pub.send(_frame(i))
        got: list[Received] = []
        deadline = time.monotonic() + 20
        while len(got) < 6 and time.monotonic() < deadline:
            r = good.receive(0.1)
            if r is not None:
                got.append(r)
        assert len(got) == 6 and good.socket.events().handshake_failures == 0
        assert plain.receive(0.1) is None and plain.received == 0
