"""The anonymizer over CurveZMQ on both its sockets (real sockets on loopback, service in a thread)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.anonymizer.service import serve
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.wire.curve import CurveOptions, InsecureEndpointError, generate_keypair
from pmr_stream.wire.schema import FrameMessage, StreamEnd
from pmr_stream.wire.sockets import Publisher, SocketOptions
from pmr_stream.wire.subscriber import Subscriber
from tests.service.conftest import collect, end_msg, frame_msg, start_msg

N = 40


def _key_set(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "keys"
    k: dict[str, Path] = {}
    for name in ("producer", "anonymizer", "sink", "stranger"):
        k[name], k[name + "_secret"] = generate_keypair(d, name)
    for folder, admitted in (("raw_clients", "anonymizer"), ("anon_clients", "sink")):
        (d / folder).mkdir()
        (d / folder / f"{admitted}.key").write_bytes(k[admitted].read_bytes())
        k[folder] = d / folder
    return k


def _serve_in_thread(raw_ep: str, backend: Any, anon: SocketOptions, raw: SocketOptions,
                     result: dict[str, Any], ready: threading.Event, stop: threading.Event) -> threading.Thread:  # fmt: skip
    def on_ready(ep: str) -> None:
        result["anon_ep"] = ep
        ready.set()

    def target() -> None:
        try:
            result.update(serve([raw_ep], "tcp://127.0.0.1:*", backend, "test-model", ServiceOptions(report_s=0),
                                anon, raw_socket_options=raw, stop=stop, duration_s=60, until_end=True,
                                wait_subscribers=1, wait_timeout_s=20,
                                ready=on_ready))  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            result["error"] = exc
            ready.set()

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th


def test_curve_producer_anonymizer_subscriber(backend: Any, tmp_path: Path) -> None:
    k = _key_set(tmp_path)
    joints = load_recording(DEMO_CLIP).joints[:N, 0].astype(np.float32)
    producer = SocketOptions(curve=CurveOptions(k["producer_secret"], authorized_keys_dir=k["raw_clients"]))
    raw_side = SocketOptions(curve=CurveOptions(k["anonymizer_secret"], server_key_file=k["producer"]))
    anon_side = SocketOptions(
        curve=CurveOptions(k["anonymizer_secret"], authorized_keys_dir=k["anon_clients"])
    )
    sink = SocketOptions(curve=CurveOptions(k["sink_secret"], server_key_file=k["anonymizer"]))
    stranger = SocketOptions(curve=CurveOptions(k["stranger_secret"], server_key_file=k["anonymizer"]))
    result: dict[str, Any] = {}
    ready, stop = threading.Event(), threading.Event()
    with Publisher("tcp://127.0.0.1:*", producer) as raw:
        th = _serve_in_thread(raw.endpoint, backend, anon_side, raw_side, result, ready, stop)
        try:
            assert ready.wait(30) and "error" not in result, result
            with Subscriber(result["anon_ep"], ["anon/"], sink) as good, \
                    Subscriber(result["anon_ep"], ["anon/"], stranger) as bad, \
                    Subscriber(result["anon_ep"], ["anon/"]) as plain, \
                    Subscriber(raw.endpoint, ["raw/"]) as eavesdropper:  # fmt: skip
                # the service subscribes to raw/ once the sink's subscription reached anon/ (over CURVE)
                assert raw.wait_for_subscribers(1, timeout_s=20), (
                    "the anonymizer did not subscribe over CURVE"
                )
                raw.send(start_msg("cam", 0))
                for i, j in enumerate(joints):
                    raw.send(frame_msg("cam", i + 1, i, j))
                    time.sleep(0.002)  # a live producer's pace (the service batches what comes together)
                raw.send(end_msg("cam", N + 1, N))
                got = collect(good, timeout_s=40)
                for s in (bad, plain, eavesdropper):
                    assert s.receive(0.1) is None and s.received == 0
                assert bad.drops["handshake_failed"] >= 1 and plain.drops["handshake_failed"] >= 1
                assert eavesdropper.drops["handshake_failed"] >= 1
                assert "connection_cut" not in bad.drops and "connection_cut" not in plain.drops
        finally:
            stop.set()
            th.join(30)
    assert "error" not in result, result
    frames = [r.message for r in got if isinstance(r.message, FrameMessage)]
    assert len(frames) == N and all(m.anonymized for m in frames)
    assert isinstance(got[-1].message, StreamEnd)
    assert not np.allclose(np.stack([m.joints for m in frames]), joints, atol=1e-3)
    assert result["frames_in"] == N


def test_the_anonymizer_refuses_raw_in_clear_from_another_host(backend: Any) -> None:
    with pytest.raises(InsecureEndpointError, match="refusing to connect to tcp://10.20.30.40:5555"):
        serve(["tcp://10.20.30.40:5555"], "tcp://127.0.0.1:*", backend, "m", ServiceOptions(report_s=0),
              SocketOptions(), raw_socket_options=SocketOptions(), duration_s=1)  # fmt: skip
