"""Several persons on camera, with real MediaPipe on real footage.

The only real video here shows one person (NTU S001C001P001R001A001, 1920x1080), so the test
makes two-person footage from it at test time, in a temporary folder: the clip, cropped around
its subject, beside a mirrored copy of itself 30 frames later (a different pose at each moment),
and the right-hand person hidden for five frames (a short occlusion). The layout is known, so
the test checks, through the real ``video:`` source path (OpenCV -> Tasks PoseLandmarker ->
tracker -> NTU-25 in metres): two tracks, no id switch (each id stays on its own tile, also across
the occlusion), nobody invented while hidden, and where each person is placed against the
single-person MediaPipe run on the original clip, mapped into the tile.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pmr_stream.capture.person_tracker import TrackerOptions
from pmr_stream.capture.pose import PoseOptions
from pmr_stream.capture.pose_bundle import build_pose_bundle, ensure_pose_bundle, wheel_models
from pmr_stream.capture.source import SourceFrame
from pmr_stream.capture.sources import open_source
from tests.ntu_samples import ntu_file

VIDEO = "S001C001P001R001A001_rgb.avi"  # 103 frames, 1920x1080, 30 fps; the subject at x 990..1110
X0, Y0, SIDE = 760, 200, 640  # crop of the original around the subject, pixels
SCALE = 0.5  # each tile 320x320: the footage is 640x320
TILE = int(SIDE * SCALE)
N, SHIFT = 60, 30  # frames of footage; the mirrored tile runs this many frames later
HIDDEN = range(25, 30)  # frames in which the right-hand person is covered by background
FOV_DEG = PoseOptions().horizontal_fov_deg


@dataclass(frozen=True)
class Run:
    frames: list[SourceFrame]
    expected_px: npt.NDArray[np.float64]  # (N, 2 tiles, 2) hip centre in the footage, pixels
    size: tuple[int, int]  # footage (width, height)
    max_persons: int
    estimator: str


def _read(path: Path, count: int) -> list[npt.NDArray[np.uint8]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < count:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(bgr)
    cap.release()
    return out


@pytest.fixture(scope="module")
def two_person_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    import cv2

    from pmr_stream.capture.pose import PoseEstimator

    original = _read(ntu_file(VIDEO), N + SHIFT)
    assert len(original) == N + SHIFT
    # the reference: MediaPipe's single-person pose on the original frames (hip centre, pixels)
    hips = np.zeros((N + SHIFT, 2))
    with PoseEstimator(PoseOptions()) as est:
        for i, bgr in enumerate(original):
            res = est.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            assert res is not None, f"the single-person reference lost the subject in frame {i}"
            hips[i] = res.image[[23, 24], :2].mean(axis=0) * (1920, 1080)
    tile = [
        cv2.resize(f[Y0 : Y0 + SIDE, X0 : X0 + SIDE], (TILE, TILE), interpolation=cv2.INTER_AREA)
        for f in original
    ]
    background = cv2.resize(
        original[0][Y0 : Y0 + SIDE, 100 : 100 + SIDE], (TILE, TILE), interpolation=cv2.INTER_AREA
    )
    path = tmp_path_factory.mktemp("multiperson") / "two_persons.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (2 * TILE, TILE))
    expected = np.zeros((N, 2, 2))
    for i in range(N):
        right = background if i in HIDDEN else tile[i + SHIFT][:, ::-1]
        writer.write(np.ascontiguousarray(np.concatenate([tile[i], right], axis=1)))
        expected[i, 0] = (hips[i] - (X0, Y0)) * SCALE
        u, v = (hips[i + SHIFT] - (X0, Y0)) * SCALE
        expected[i, 1] = (2 * TILE - u, v)  # mirrored, in the right-hand tile
    writer.release()
    src = open_source(f"video:{path}", speed=0.0, persons=4)
    try:
        frames = list(src.frames(threading.Event()))  # type: ignore[attr-defined]
    finally:
        src.close()
    info = src.streams[0]
    return Run(frames, expected, (2 * TILE, TILE), info.max_persons, info.metadata["pose"]["estimator"])


def _image_px(joints: npt.NDArray[np.float32], size: tuple[int, int]) -> npt.NDArray[np.float64]:
    """The SpineBase (hip centre) of a placed skeleton projected back into the image, pixels."""
    w, h = size
    f = (w / 2.0) / np.tan(np.radians(FOV_DEG) / 2.0)
    x, y, z = (float(v) for v in joints[0])
    return np.array([w / 2.0 - x * f / z, h / 2.0 - y * f / z])


def _placement(run: Run) -> tuple[dict[int, list[int]], list[float], list[float]]:
    """Per id, the tile of each appearance; placement errors (fraction of the footage width, metres)."""
    w, h = run.size
    f = (w / 2.0) / np.tan(np.radians(FOV_DEG) / 2.0)
    tiles: dict[int, list[int]] = {}
    err_norm: list[float] = []
    err_m: list[float] = []
    for fr in run.frames:
        for p in fr.persons:
            px = _image_px(p.joints, run.size)
            t = int(px[0] >= w / 2)
            tiles.setdefault(p.person, []).append(t)
            d = float(np.linalg.norm(px - run.expected_px[fr.frame, t]))
            err_norm.append(d / w)
            err_m.append(d * float(p.joints[0, 2]) / f)
    return tiles, err_norm, err_m


def test_two_persons_two_stable_ids_nobody_invented(two_person_run: Run) -> None:
    run = two_person_run
    assert run.max_persons == 4 and run.estimator == "mediapipe.tasks.vision.PoseLandmarker"
    assert [f.frame for f in run.frames] == list(range(N))  # speed 0: every frame
    tiles, _, _ = _placement(run)
    assert len(tiles) == 2, f"expected two tracks, got ids {sorted(tiles)}"
    switches = sum(int(a != b) for seq in tiles.values() for a, b in zip(seq, seq[1:], strict=False))
    assert switches == 0, f"{switches} id switches: {tiles}"
    assert {seq[0] for seq in tiles.values()} == {0, 1}  # one id per tile
    right = next(i for i, seq in tiles.items() if seq[0] == 1)
    for fr in run.frames:
        ids = sorted(p.person for p in fr.persons)
        if fr.frame in HIDDEN:  # the right-hand person is a gap, not invented
            assert right not in ids and len(ids) == 1, (fr.frame, ids)
        else:
            assert len(ids) == 2, (fr.frame, ids)
    # after the five hidden frames the right-hand person came back with the same id
    assert len(tiles[right]) == N - len(HIDDEN)


def test_each_person_is_placed_where_the_layout_puts_them(two_person_run: Run) -> None:
    _, err_norm, err_m = _placement(two_person_run)
    assert len(err_m) == 2 * N - len(HIDDEN)
    # within 2 % of the footage's width of the single-person run, mapped into each tile
    assert float(np.median(err_norm)) < 0.01 and max(err_norm) < 0.02, (np.median(err_norm), max(err_norm))
    assert float(np.median(err_m)) < 0.05, np.median(err_m)
    # the two persons stand side by side, about one tile width apart, at about the same depth
    for fr in two_person_run.frames:
        if len(fr.persons) == 2:
            a, b = (p.joints[0] for p in fr.persons)
            assert abs(float(a[2] - b[2])) < 0.15 * float(a[2])
            assert abs(float(a[0] - b[0])) > 1.0  # metres, at ~3.6 m from a 70-degree camera


def test_the_bundle_is_built_from_the_wheel_deterministically(tmp_path: Path) -> None:
    a = ensure_pose_bundle(tmp_path / "cache")
    assert a.parent == tmp_path / "cache" / "mediapipe" and a.suffix == ".task"
    b = build_pose_bundle(tmp_path / "again.task", wheel_models())
    assert a.read_bytes() == b.read_bytes()
    import zipfile

    with zipfile.ZipFile(a) as z:
        assert z.namelist() == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    assert ensure_pose_bundle(tmp_path / "cache") == a  # the second call reuses it


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_persons": 0}, "max_persons"),
        ({"max_persons": 65}, "max_persons"),
        ({"max_persons": 2.0}, "max_persons"),
    ],
)
def test_bad_pose_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PoseOptions(**kwargs)  # type: ignore[arg-type]


def test_occlusion_frames_flag_sets_the_tracker() -> None:
    src = open_source(f"video:{ntu_file(VIDEO)}", persons=3, occlusion_frames=40)
    try:
        pose = src.streams[0].metadata["pose"]
        assert src.streams[0].max_persons == 3
        assert pose["tracker"]["max_missed"] == 40 and pose["tracker"]["reuse_after"] == 40
        assert TrackerOptions().max_missed == 15
    finally:
        src.close()


@pytest.mark.parametrize(
    ("flags", "match"),
    [(["--persons", "0"], "--persons must be an integer in 1..64, got 0"),
     (["--persons", "2", "--occlusion-frames", "-1"], "--occlusion-frames must be an integer >= 0, got -1")],
)  # fmt: skip
def test_bad_person_flags_are_one_line(
    flags: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmr_stream.cli import main

    rc = main(["produce", "--source", f"video:{ntu_file(VIDEO)}", "--endpoint", "tcp://127.0.0.1:1", *flags])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and err == [f"pmr produce: error: {match}"]
