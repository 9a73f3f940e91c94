"""The viewer/writer subscriber on real sockets: anonymized frames in, one picture per frame out."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.sinks.viewer import Viewer, ViewerOptions, has_display, run_viewer
from pmr_stream.wire.privacy import StreamIds
from pmr_stream.wire.sockets import Publisher
from pmr_stream.wire.subscriber import Subscriber
from tests.service.conftest import end_msg, frame_msg, running_service, start_msg, wait_connected

N = 60


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_recording(DEMO_CLIP).joints[:N, 0].astype(np.float32)


def replay(pub: Publisher, stream: str, joints: np.ndarray) -> None:
    pub.send(start_msg(stream, 0, "s1"))
    for i, j in enumerate(joints):
        pub.send(frame_msg(stream, i + 1, i, j, 0))
        time.sleep(0.002)  # a live producer's pace: the viewer pairs raw and anon/ frames as they come
    pub.send(end_msg(stream, len(joints) + 1, len(joints)))


@pytest.mark.parametrize("show_original", [False, True])
def test_writer_gets_one_picture_per_anonymized_frame(backend: Any, clip: np.ndarray, tmp_path: Path,
                                                      show_original: bool, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import cv2

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not has_display()
    out = tmp_path / "anon.mp4"
    key = bytes(range(32))  # the anonymizer's stream key: the viewer pairs raw cam1 with its anon/ pseudonym
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0, stream_key=key)) as svc:
            endpoints = [svc.anon_endpoint] + ([raw.endpoint] if show_original else [])
            topics = ["anon/"] + (["raw/"] if show_original else [])
            with Subscriber(endpoints, topics) as sub:
                viewer = Viewer(sub, ViewerOptions(width=160, height=120, show_original=show_original,
                                                   until_end=True, duration_s=30, stream_ids=StreamIds(key)))  # fmt: skip
                result: dict[str, Any] = {}
                th = threading.Thread(target=lambda: result.update(path=run_viewer(viewer, out)))
                th.start()
                # the service's raw/ subscription (made once it saw the viewer on anon/), and the viewer's
                # anon/ and raw/ ones (its one socket subscribes to both topics on both endpoints)
                wait_connected(raw, 3 if show_original else 1)
                replay(raw, "cam1", clip)
                th.join(40)
    assert result["path"] == out
    cap = cv2.VideoCapture(str(out))
    n, w = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    ok, first = cap.read()
    cap.release()
    assert n == N and viewer.pictures == N
    assert w == (320 if show_original else 160)
    assert ok and first.mean() < 254  # something is drawn
    if show_original:  # both panels hold a skeleton
        assert first[:, :160].mean() < 254 and first[:, 160:].mean() < 254


def test_viewer_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 64x64"):
        ViewerOptions(width=10)


def test_cli_view_refuses_raw_topics(capsys: pytest.CaptureFixture[str]) -> None:
    from pmr_stream.cli import main

    rc = main(["view", "--endpoint", "tcp://127.0.0.1:1", "--topic", "raw/cam1", "--duration", "0.1"])
    assert rc == 2 and "--topic must start with anon/" in capsys.readouterr().err
