"""`pmr view --rrd --overlay-video`: real Kinect colour video through real MediaPipe (`pmr produce
--source video:`), the anonymizer and the viewer as processes; the camera images and the producer's
pinhole land in the recording, and the skeletons project onto the person MediaPipe saw."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pmr_stream.capture.pose import PoseEstimator, PoseOptions
from pmr_stream.skeleton import Joint
from tests.sinks.rrd_read import logged_persons

ROOT = Path(__file__).resolve().parents[2]
VIDEO = "S001C001P001R001A001_rgb.avi"  # 103 frames, 1920x1080, 30 fps, one person
FRAMES = 12
FOV = PoseOptions().horizontal_fov_deg  # what the producer assumes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pmr(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pmr_stream.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip


def _pixel(joint: np.ndarray, width: int, height: int) -> np.ndarray:
    """The pinhole of the producer (focal from the field of view, centre principal point, x left, y up)."""
    f = (width / 2) / math.tan(math.radians(FOV) / 2)
    return np.array([width / 2 - f * joint[0] / joint[2], height / 2 - f * joint[1] / joint[2]])


@pytest.mark.slow
@pytest.mark.mediapipe
def test_overlay_of_a_real_video(ntu_dir: Path, tmp_path: Path) -> None:
    import rerun.dataframe as rd

    video = ntu_dir / VIDEO
    if not video.is_file():
        pytest.skip(f"real NTU video {video} not found")
    raw_ep, anon_ep = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "overlay.rrd"
    procs = [_pmr("view", "--endpoint", anon_ep, "--show-original", "--raw-endpoint", raw_ep, "--rrd", str(out),
                  "--overlay-video", str(video), "--until-end", "--duration", "150")]  # fmt: skip
    try:
        # the viewer subscribes anon/ and raw/ on both endpoints: 2 subscriptions on each
        procs.append(_pmr("anonymizer", "--raw", raw_ep, "--anon", anon_ep, "--backend", "onnxruntime", "--device",
                          "cpu", "--report", "0", "--wait-subscribers", "2", "--until-end", "--duration", "150"))  # fmt: skip
        procs.append(_pmr("produce", "--source", f"video:{video}", "--endpoint", raw_ep, "--speed", "0",
                          "--max-frames", str(FRAMES), "--wait-subscribers", "3", "--wait-timeout", "90",
                          "--report", "0"))  # fmt: skip
        for p in procs:
            p.wait(timeout=150)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)

    rec = rd.load_recording(str(out))
    cam = rec.view(index="frame", contents="/camera").select_static().read_all()
    width, height = (int(v) for v in np.ravel(cam.column("/camera:Resolution").to_pylist()[0]))
    assert (width, height) == (1920, 1080)
    k = np.ravel(cam.column("/camera:PinholeProjection").to_pylist()[0]).astype(np.float64).reshape(3, 3).T
    f = (width / 2) / math.tan(math.radians(FOV) / 2)
    np.testing.assert_allclose(k, np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]), rtol=1e-6)
    images = rec.view(index="frame", contents="/camera/image").select().read_all()
    frames = [int(f) for f in images.column("frame").to_pylist()]
    assert frames == list(range(FRAMES)), frames  # one image per captured frame, by its number in the file

    cap = cv2.VideoCapture(str(video))
    ok, first = cap.read()
    cap.release()
    assert ok
    blob = np.asarray(images.column("/camera/image:Blob").to_pylist()[0][0], np.uint8)
    logged = cv2.imdecode(blob, cv2.IMREAD_COLOR)
    assert logged.shape == first.shape
    assert np.abs(logged.astype(np.int16) - first.astype(np.int16)).mean() < 4  # the same picture (JPEG)

    got = logged_persons(out)
    raw = next(v for p, v in got.items() if p.startswith("/raw/"))
    anon = next(v for p, v in got.items() if p.startswith("/anon/"))
    assert raw.frames[0] == anon.frames[0] == 0, (raw.frames, anon.frames)
    with PoseEstimator(PoseOptions(tracking=False)) as pe:  # where MediaPipe sees the hips in frame 0
        pose = pe.process(np.ascontiguousarray(first[:, :, ::-1]))  # BGR -> RGB
    assert pose is not None
    hips = pose.image[[23, 24], :2].mean(axis=0) * [width, height]  # pixels
    # the raw skeleton's SpineBase (mid-hip) projects onto MediaPipe's hips; the anonymized one stays on the person
    raw_off = np.linalg.norm(_pixel(raw.joints[0, Joint.SPINE_BASE], width, height) - hips)
    anon_off = np.linalg.norm(_pixel(anon.joints[0, Joint.SPINE_BASE], width, height) - hips)
    assert raw_off < 0.02 * width and anon_off < 0.06 * width, (raw_off, anon_off, hips)
    for person in (raw, anon):  # every joint of every frame lands inside the picture
        px = np.stack([[_pixel(j, width, height) for j in frame] for frame in person.joints])  # (N, 25, 2)
        assert (px[..., 0] > 0).all() and (px[..., 0] < width).all()
        assert (px[..., 1] > 0).all() and (px[..., 1] < height).all()
