"""The viewer's live window, for real: ``pmr view`` on a virtual X display (Xvfb).

The window is found with xdotool, its pixels are read back from the X server, and
``q`` typed into it closes the viewer. Needs the ``Xvfb`` and ``xdotool`` programs
(Debian: ``apt-get install xvfb xdotool``); skipped with that reason where they are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmr_stream.anonymizer.options import ServiceOptions
from pmr_stream.assets import DEMO_CLIP
from pmr_stream.formats.io import load_recording
from pmr_stream.wire.privacy import load_stream_key
from pmr_stream.wire.sockets import Publisher
from tests.service.conftest import end_msg, frame_msg, running_service, start_msg
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(
        shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
        reason="needs Xvfb and xdotool for a virtual display (apt-get install xvfb xdotool)",
    ),  # fmt: skip
]
WINDOW = "pmr-stream"
W, H = 320, 240


@pytest.fixture()
def xdisplay() -> Iterator[str]:
    """A private Xvfb server; yields its DISPLAY name."""
    n = next(k for k in range(120, 200) if not Path(f"/tmp/.X{k}-lock").exists())
    proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until(lambda: proc.poll() is not None or Path(f"/tmp/.X11-unix/X{n}").exists(), timeout_s=30,
                   interval_s=0.05, what="Xvfb to start")  # fmt: skip
        assert proc.poll() is None, "Xvfb did not start"
        yield f":{n}"
    finally:
        proc.terminate()
        proc.wait(10)


def xdotool(display: str, *args: str) -> str:
    env = {**os.environ, "DISPLAY": display}
    return subprocess.run(
        ["xdotool", *args], env=env, capture_output=True, text=True, timeout=20
    ).stdout.strip()


def skeleton_pixels(picture: np.ndarray) -> int:
    """Pixels drawn in the skeleton's saturated colours (the background and grid are grey)."""
    rgb = picture.astype(np.int16)
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 80).sum())


def test_live_window_shows_both_panels_and_q_quits(backend: Any, xdisplay: str, tmp_path: Path) -> None:
    from PIL import ImageGrab

    clip = load_recording(DEMO_CLIP).joints[:, 0].astype(np.float32)
    stop = threading.Event()
    key_file = (
        tmp_path / "stream_key"
    )  # the anonymizer's key: the viewer pairs raw cam1 with its anon/ pseudonym
    key = load_stream_key(key_file)
    with Publisher("tcp://127.0.0.1:*") as raw:
        with running_service(raw.endpoint, backend, ServiceOptions(report_s=0, stream_key=key)) as svc:
            view = subprocess.Popen(
                [sys.executable, "-m", "pmr_stream.cli", "view", "--endpoint", svc.anon_endpoint, "--show-original",
                 "--raw-endpoint", raw.endpoint, "--width", str(W), "--height", str(H), "--duration", "60",
                 "--stream-key", str(key_file)],
                env={**os.environ, "DISPLAY": xdisplay}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip

            def produce() -> None:  # 30 fps until the test is done, re-announcing like a real producer
                seq = i = 0
                while not stop.is_set():
                    if i % 15 == 0:
                        raw.send(start_msg("cam1", seq, "s1"))
                        seq += 1
                    raw.send(frame_msg("cam1", seq, i, clip[i % len(clip)], 0))
                    seq += 1
                    i += 1
                    time.sleep(1 / 30)  # a live 30 fps camera's pace, for as long as the window is looked at
                raw.send(end_msg("cam1", seq, i))

            producer = threading.Thread(target=produce)
            try:
                # the service's raw/ and the viewer's raw/ and anon/ subscriptions (the viewer's one
                # socket subscribes to both topics on both endpoints)
                assert raw.wait_for_subscribers(3, timeout_s=20), (
                    "the service and the viewer did not subscribe"
                )
                producer.start()
                window = ""
                with contextlib.suppress(AssertionError):  # if not, say what the viewer said
                    window = wait_until(lambda: xdotool(xdisplay, "search", "--name", WINDOW), timeout_s=30,
                                        interval_s=0.2, what="the viewer window")  # fmt: skip
                if not window:
                    view.send_signal(signal.SIGINT)
                    said = view.communicate(timeout=10)[0]
                    tree = xdotool(xdisplay, "search", "--name", ".")
                    pytest.fail(
                        f"no viewer window appeared; the viewer said: {said!r}; windows on {xdisplay}: {tree!r}"
                    )
                window = window.split()[0]
                screen_path = tmp_path / "window.png"
                seen = {"width": 0, "drawn": False}

                def both_panels_drawn() -> bool:  # the window at its size, a few pictures drawn
                    geometry = dict(line.strip().split(": ", 1) for line in
                                    xdotool(xdisplay, "getwindowgeometry", "--shell", window).replace("=", ": ").splitlines())  # fmt: skip
                    x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
                    grab = ImageGrab.grab(xdisplay=xdisplay)
                    grab.save(screen_path)
                    screen = np.asarray(grab.convert("RGB"))[y : y + h, x : x + w]
                    left, right = screen[:, : w // 2], screen[:, w // 2 :]
                    seen["width"] = w
                    seen["drawn"] = skeleton_pixels(left) > 200 and skeleton_pixels(right) > 200
                    return w >= 2 * W - 2 and bool(seen["drawn"])

                with contextlib.suppress(AssertionError):  # if not, the assertions below say what is wrong
                    wait_until(both_panels_drawn, timeout_s=30, interval_s=0.2, what="both panels drawn")
                assert seen["width"] >= 2 * W - 2, (
                    f"the window is {seen['width']} px wide: original | anonymized side by side expected"
                )
                assert seen["drawn"], f"empty panel (see {screen_path})"
                xdotool(xdisplay, "windowfocus", "--sync", window)
                xdotool(xdisplay, "key", "q")
                out, _ = view.communicate(timeout=15)  # q closes the window and ends the viewer
                assert view.returncode == 0, out
            finally:
                stop.set()
                if view.poll() is None:
                    view.kill()
                    view.wait(10)
                if producer.is_alive():
                    producer.join(10)
