"""Tests of headless skeleton rendering (pmr_stream.render)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from pmr_stream.render import (
    HEAD_RADIUS_M,
    LEFT_COLOR,
    MISSING_COLOR,
    RIGHT_COLOR,
    Camera,
    RenderOptions,
    compare_clips,
    contact_sheet,
    iter_frames,
    render_clip,
    render_frame,
    write_video,
)
from pmr_stream.skeleton import NTU25

BG = np.array([255, 255, 255])


def standing_pose(z: float = 3.0) -> np.ndarray:
    """A person standing 3 m in front of the camera, facing it, arms hanging: (25, 3) metres.

    Facing the camera, the person's right is +x, so every *Right joint has x > 0.
    """
    half = {  # the left side; the right side mirrors x
        "Shoulder": (-0.18, 0.46, 0.0),
        "Elbow": (-0.22, 0.20, 0.0),
        "Wrist": (-0.24, -0.02, -0.02),
        "Hand": (-0.245, -0.08, -0.03),
        "HandTip": (-0.25, -0.15, -0.04),
        "Thumb": (-0.21, -0.10, -0.06),
        "Hip": (-0.09, -0.02, 0.0),
        "Knee": (-0.10, -0.45, -0.02),
        "Ankle": (-0.10, -0.85, 0.02),
        "Foot": (-0.11, -0.90, -0.08),
    }
    centre = {
        "SpineBase": (0.0, 0.0, 0.0),
        "SpineMid": (0.0, 0.28, 0.01),
        "SpineShoulder": (0.0, 0.50, 0.0),
        "Neck": (0.0, 0.56, 0.0),
        "Head": (0.0, 0.70, -0.01),
    }
    pose = np.zeros((25, 3))
    for j, name in enumerate(NTU25.joint_names):
        if name in centre:
            pose[j] = centre[name]
        elif name.endswith("Left"):
            pose[j] = half[name[: -len("Left")]]
        else:
            x, y, dz = half[name[: -len("Right")]]
            pose[j] = (-x, y, dz)
    pose[:, 2] += z
    return pose


def idx(name: str) -> int:
    return NTU25.index(name)


def drawn_mask(img: np.ndarray) -> np.ndarray:
    """Pixels that differ from the white background, (H, W) bool."""
    return np.any(img.astype(int) != BG, axis=-1)


def test_standing_pose_faces_the_camera() -> None:
    pose = standing_pose()
    assert pose[idx("ShoulderRight"), 0] > pose[idx("ShoulderLeft"), 0]
    assert pose[idx("Head"), 1] > pose[idx("FootLeft"), 1]


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0},
        {"height": -5},
        {"line_width": 0},
        {"joint_radius": -1},
        {"margin": 0.5},
        {"margin": -0.1},
        {"elevation_deg": 120.0},
        {"azimuth_deg": float("nan")},
        {"background": (255, 255)},
        {"background": (0, 0, 300)},
        {"layout": "ntu25"},
    ],
)
def test_options_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="RenderOptions"):
        RenderOptions(**kwargs)


# --------------------------------------------------------------------------- camera


def test_camera_is_fixed_and_keeps_aspect() -> None:
    T = 5
    shift = np.linspace(0.0, 1.0, T)  # walks 1 m towards +x over the clip
    clip = np.repeat(standing_pose()[None], T, axis=0)
    clip[:, :, 0] += shift[:, None]
    opts = RenderOptions(
        width=160, height=120, elevation_deg=0.0, floor=False, show_frame_index=False, joint_radius=2
    )
    cam = Camera.fit(clip, options=opts)

    # The scale follows from the clip's bounding box (with room for the drawn
    # head above the head joint), the image size and the margin.
    pts = clip.reshape(-1, 3)
    ext = pts.max(axis=0) - pts.min(axis=0)
    ext[1] = clip[:, idx("Head"), 1].max() + HEAD_RADIUS_M - pts[:, 1].min()
    inner_w, inner_h = 160 * (1 - 2 * 0.08), 120 * (1 - 2 * 0.08)
    expected_scale = min(inner_w / ext[0], inner_h / ext[1])
    assert cam.scale == pytest.approx(expected_scale)

    sb = cam.project(clip[:, idx("SpineBase")])
    assert sb[-1, 0] - sb[0, 0] == pytest.approx(expected_scale * 1.0)  # 1 m to the right
    assert sb[-1, 1] == pytest.approx(sb[0, 1])
    # Same scale vertically: 1 m up is the same number of pixels, upwards (smaller row).
    up = cam.project(np.array([[0.0, 0.0, 3.0], [0.0, 1.0, 3.0]]))
    assert up[0, 1] - up[1, 1] == pytest.approx(expected_scale)

    # The rendered figure moves across the picture by that many pixels.
    frames = render_clip(clip, opts)
    cols = [np.nonzero(drawn_mask(f))[1].mean() for f in frames]
    assert cols[-1] - cols[0] == pytest.approx(expected_scale, rel=0.05)
    assert np.all(np.diff(cols) > 0)


def test_camera_given_to_render_clip_is_used_unchanged() -> None:
    clip = np.repeat(standing_pose()[None], 2, axis=0)
    opts = RenderOptions(width=96, height=96, floor=False, show_frame_index=False)
    cam = Camera.fit(clip, options=opts)
    far = clip.copy()
    far[:, :, 0] += 10.0  # outside the given camera's view
    assert not drawn_mask(render_clip(far, opts, camera=cam)).any()


def test_all_joints_of_all_frames_project_inside_the_margin() -> None:
    rng = np.random.default_rng(0)
    T = 6
    base = standing_pose()
    clip = np.stack([base + rng.normal(0, 0.05, base.shape), base + [0.9, 0.0, 0.7]], axis=0)
    clip = np.repeat(clip[None], T, axis=0) + rng.normal(0, 0.1, (T, 2, 25, 3))
    clip[:, :, :, 0] += np.linspace(-1.0, 1.0, T)[:, None, None]
    clip[2, 1, 5] = np.nan  # ignored
    present = np.ones((T, 2), dtype=bool)
    present[3, 1] = False
    far = clip.copy()
    far[3, 1] += 100.0  # an absent person far away must not stretch the camera
    opts = RenderOptions(width=120, height=90, azimuth_deg=30.0, elevation_deg=20.0, margin=0.1)
    cam = Camera.fit(far, present, opts)
    pts = np.delete(far.reshape(T * 2, 25, 3), 3 * 2 + 1, axis=0).reshape(-1, 3)
    uv = cam.project(pts[np.isfinite(pts).all(axis=1)])
    lo = np.array([0.1 * 120, 0.1 * 90])
    hi = np.array([0.9 * 120, 0.9 * 90])
    assert np.all(uv >= lo - 1e-6) and np.all(uv <= hi + 1e-6)
    # The fit is tight: the joints fill most of the inner area on the limiting axis
    # (not all of it: the drawn head ring gets room too).
    assert ((uv.max(axis=0) - uv.min(axis=0)) / (hi - lo)).max() > 0.85


def test_camera_ignores_zero_padded_nan_and_absent_persons() -> None:
    pose = standing_pose() + [-3.0, 0.0, 0.0]  # away from the origin, where zero padding lies
    opts = RenderOptions(width=100, height=80)
    alone = Camera.fit(pose[None, None].repeat(3, axis=0), options=opts)
    clip = np.stack([pose, pose + [2.0, 0.0, 0.0]])[None].repeat(3, axis=0)  # (3, 2, 25, 3)
    clip[0, 1] = 0.0  # NTU pads a missing body with zeros
    clip[1, 1] = np.nan
    present = np.array([True, True, False])
    cam = Camera.fit(clip, np.stack([np.ones(3, dtype=bool), present], axis=1), opts)
    assert cam.scale == pytest.approx(alone.scale)
    assert np.allclose(cam.center, alone.center)
    # Without the mask the second person (frame 2) counts.
    assert Camera.fit(clip, options=opts).scale < alone.scale


def test_plus_y_is_up_and_plus_x_is_screen_right() -> None:
    pose = standing_pose()
    opts = RenderOptions(width=200, height=200, floor=False, show_frame_index=False)
    cam = Camera.fit(pose, options=opts)
    uv = cam.project(pose)
    assert uv[idx("Head"), 1] < uv[idx("SpineBase"), 1] < uv[idx("FootLeft"), 1]
    assert uv[idx("ShoulderRight"), 0] > uv[idx("ShoulderLeft"), 0]
    # The drawing itself: the topmost drawn pixels are the head ring, the lowest the feet.
    img = render_frame(pose, cam, opts)
    rows = np.nonzero(drawn_mask(img))[0]
    head_r = HEAD_RADIUS_M * cam.scale
    assert uv[idx("Head"), 1] - head_r - 4 <= rows.min() <= uv[idx("Head"), 1] - head_r + 2
    assert abs(rows.max() - uv[idx("FootLeft"), 1]) <= opts.joint_radius + 2


def replace_opts(opts: RenderOptions, **kw: Any) -> RenderOptions:
    return replace(opts, **kw)


def test_fit_with_no_valid_joints_warns_and_still_renders(caplog: pytest.LogCaptureFixture) -> None:
    clip = np.full((2, 25, 3), np.nan)
    opts = RenderOptions(width=64, height=48)
    with caplog.at_level(logging.WARNING):
        frames = render_clip(clip, opts)
    assert "no valid joints" in caplog.text
    assert frames.shape == (2, 48, 64, 3)


# --------------------------------------------------------------------------- drawing


def _sample(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    return img[int(round(uv[1])), int(round(uv[0]))].astype(int)


def test_left_and_right_bones_have_their_colours() -> None:
    pose = standing_pose()
    opts = RenderOptions(width=200, height=200, floor=False, show_frame_index=False, joint_radius=2)
    cam = Camera.fit(pose, options=opts)
    img = render_frame(pose, cam, opts)
    uv = cam.project(pose)
    for (a, b), want, other in (
        (("ElbowLeft", "ShoulderLeft"), LEFT_COLOR, RIGHT_COLOR),
        (("KneeLeft", "HipLeft"), LEFT_COLOR, RIGHT_COLOR),
        (("ElbowRight", "ShoulderRight"), RIGHT_COLOR, LEFT_COLOR),
        (("KneeRight", "HipRight"), RIGHT_COLOR, LEFT_COLOR),
    ):
        mid = (uv[idx(a)] + uv[idx(b)]) / 2
        px = _sample(img, mid)
        assert np.abs(px - want).max() < 40, (a, px)
        assert np.abs(px - other).max() > 100, (a, px)
        # Left is blue, right is red/orange.
        if want == LEFT_COLOR:
            assert px[2] > px[0] + 80, (a, px)
        else:
            assert px[0] > px[2] + 80, (a, px)
    # The person's left arm is on screen-left (Kinect's mirrored colour view).
    assert uv[idx("ElbowLeft"), 0] < 100 < uv[idx("ElbowRight"), 0]


def test_second_person_uses_other_shades() -> None:
    pose = standing_pose()
    two = np.stack([pose - [0.6, 0, 0], pose + [0.6, 0, 0]])
    opts = RenderOptions(width=200, height=120, floor=False, show_frame_index=False, joint_radius=2)
    cam = Camera.fit(two, options=opts)
    img = render_frame(two, cam, opts)
    uv = cam.project(two)
    a, b = idx("KneeLeft"), idx("HipLeft")
    p0 = _sample(img, (uv[0, a] + uv[0, b]) / 2)
    p1 = _sample(img, (uv[1, a] + uv[1, b]) / 2)
    assert np.abs(p0 - LEFT_COLOR).max() < 40
    assert np.abs(p1 - p0).max() > 30


def test_absent_person_is_not_drawn() -> None:
    pose = standing_pose()
    two = np.stack([pose - [0.6, 0, 0], pose + [0.6, 0, 0]])[None].repeat(2, axis=0)  # (2, 2, 25, 3)
    opts = RenderOptions(width=160, height=100, floor=False, show_frame_index=False)
    cam = Camera.fit(two, options=opts)
    both = render_frame(two[0], cam, opts)
    only_first = render_frame(two[0, :1], cam, opts)
    assert not np.array_equal(both, only_first)

    frames = render_clip(two, opts, present=np.array([[True, False], [True, True]]), camera=cam)
    assert np.array_equal(frames[0], only_first)
    assert np.array_equal(frames[1], both)
    # The right half, where person 2 stands, is empty when they are absent.
    assert not drawn_mask(frames[0])[:, 90:].any()
    assert drawn_mask(frames[1])[:, 90:].any()

    # An all-zero person (how NTU pads a missing body) is absent too.
    padded = two[0].copy()
    padded[1] = 0.0
    assert np.array_equal(render_frame(padded, cam, opts), only_first)


def test_non_finite_joints_are_skipped() -> None:
    pose = standing_pose()
    opts = RenderOptions(width=120, height=120, floor=False, show_frame_index=False)
    cam = Camera.fit(pose, options=opts)
    broken = pose.copy()
    broken[idx("WristLeft")] = np.nan
    img = render_frame(broken, cam, opts)
    uv = cam.project(pose)
    # The forearm (elbow to wrist) is gone: its midpoint is background.
    mid = (uv[idx("ElbowLeft")] + uv[idx("WristLeft")]) / 2
    assert np.array_equal(_sample(img, mid), BG)
    assert not np.array_equal(_sample(render_frame(pose, cam, opts), mid), BG)


def test_zero_confidence_joint_is_drawn_differently() -> None:
    pose = standing_pose()
    opts = RenderOptions(width=200, height=200, floor=False, show_frame_index=False, show_confidence=True)
    cam = Camera.fit(pose, options=opts)
    conf = np.ones(25)
    full = render_frame(pose, cam, opts, confidence=conf)
    conf[idx("ElbowLeft")] = 0.0
    low = render_frame(pose, cam, opts, confidence=conf)
    uv = cam.project(pose)
    elbow = uv[idx("ElbowLeft")]
    assert np.abs(_sample(full, elbow) - LEFT_COLOR).max() < 40
    assert np.abs(_sample(low, elbow) - LEFT_COLOR).max() > 60
    # Its bones are grey instead of blue (dashed, so look along the bone for grey pixels).
    a, b = uv[idx("ShoulderLeft")], elbow
    along = [_sample(low, a + (b - a) * t) for t in np.linspace(0.25, 0.75, 15)]
    assert any(np.abs(p - MISSING_COLOR).max() < 30 for p in along)
    assert not any(np.abs(p - LEFT_COLOR).max() < 40 for p in along)
    # The other side is untouched.
    right = uv[idx("ElbowRight")]
    assert np.array_equal(_sample(low, right), _sample(full, right))
    # Partial confidence fades towards the background.
    conf[idx("ElbowLeft")] = 0.3
    half = render_frame(pose, cam, opts, confidence=conf)
    assert _sample(half, elbow).sum() > _sample(full, elbow).sum()
    # Without show_confidence the confidence is ignored.
    plain = replace_opts(opts, show_confidence=False)
    assert np.array_equal(render_frame(pose, cam, plain, confidence=conf), render_frame(pose, cam, plain))


def test_title_frame_index_and_floor_are_drawn() -> None:
    pose = standing_pose()
    bare = RenderOptions(width=160, height=120, margin=0.2, floor=False, show_frame_index=False)
    cam = Camera.fit(pose, options=bare)
    base = render_frame(pose, cam, bare, frame_index=3)
    with_index = render_frame(pose, cam, replace_opts(bare, show_frame_index=True), frame_index=3)
    assert drawn_mask(with_index)[100:, :40].any() and not drawn_mask(base)[100:, :40].any()
    titled = render_frame(pose, cam, replace_opts(bare, title="hello"))
    assert drawn_mask(titled)[:12].any() and not drawn_mask(base)[:12].any()
    floor_opts = replace_opts(bare, floor=True)
    fcam = Camera.fit(pose, options=floor_opts)
    extra = drawn_mask(render_frame(pose, fcam, floor_opts)) & ~drawn_mask(render_frame(pose, fcam, bare))
    rows, cols = np.nonzero(extra)
    uv = fcam.project(pose)
    assert len(rows) > 0
    assert rows.min() > uv[idx("KneeLeft"), 1]  # the floor is under the person
    assert cols.min() < uv[idx("FootLeft"), 0] - 10 and cols.max() > uv[idx("FootRight"), 0] + 10  # and wider


def test_render_frame_rejects_a_camera_of_another_size() -> None:
    pose = standing_pose()
    cam = Camera.fit(pose, options=RenderOptions(width=64, height=64))
    with pytest.raises(ValueError, match="camera"):
        render_frame(pose, cam, RenderOptions(width=80, height=64))


@pytest.mark.parametrize(
    "call",
    [
        lambda: render_clip(np.zeros((3, 24, 3))),
        lambda: render_clip(np.zeros((25, 3))),
        lambda: render_clip(np.zeros((3, 25, 2))),
        lambda: render_clip(np.ones((3, 25, 3)), confidence=np.ones((3, 24))),
        lambda: render_clip(np.ones((3, 25, 3)), present=np.ones((4,), dtype=bool)),
        lambda: render_clip(np.ones((3, 2, 25, 3)), present=np.ones((3,), dtype=bool)),
        lambda: iter_frames(np.zeros((3, 24, 3))),  # checked before iterating
        lambda: render_frame(np.zeros((2, 2, 25, 3)), Camera.fit(standing_pose())),
        lambda: compare_clips(np.ones((3, 25, 3)), np.ones((3, 20, 3))),
        lambda: Camera.fit(np.zeros((3, 25))),
    ],
)
def test_bad_shapes_raise_value_error(call) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------- compare


def _figure_height(img: np.ndarray) -> int:
    rows = np.nonzero(drawn_mask(img[16:, 2:]))[0]  # below the label, right of the separator
    return int(rows.max() - rows.min())


def test_compare_clips_side_by_side_with_shared_camera(caplog: pytest.LogCaptureFixture) -> None:
    pose = standing_pose()
    a = np.repeat(pose[None], 4, axis=0)
    b = np.repeat(((pose - pose[0]) * 0.5 + pose[0])[None], 3, axis=0)  # half-size person, 3 frames
    opts = RenderOptions(width=100, height=120, floor=False, show_frame_index=False)
    with caplog.at_level(logging.WARNING):
        out = compare_clips(a, b, labels=("orig", "anon"), options=opts)
    assert out.shape == (3, 120, 200, 3) and out.dtype == np.uint8
    assert "differ in length" in caplog.text
    left, right = out[0, :, :100], out[0, :, 100:]
    # Labels at the top of both panels.
    assert drawn_mask(left[:20]).any() and drawn_mask(right[:20, 2:]).any()
    # One camera: the half-size person looks about half as tall (the head ring is the same size).
    assert 0.45 < _figure_height(right) / _figure_height(left) < 0.65
    # Separate cameras: both fill their panel.
    own = compare_clips(a, b, options=opts, shared_camera=False)
    assert 0.9 < _figure_height(own[0, :, 100:]) / _figure_height(own[0, :, :100]) < 1.1


# --------------------------------------------------------------------------- output


def _moving_frames(T: int = 6) -> np.ndarray:
    clip = np.repeat(standing_pose()[None], T, axis=0)
    clip[:, :, 0] += np.linspace(0, 0.5, T)[:, None]
    return render_clip(clip, RenderOptions(width=64, height=48))


def test_write_mp4_reads_back(tmp_path: Path) -> None:
    frames = _moving_frames()
    path = write_video(frames, tmp_path / "sub" / "clip.mp4", fps=10)
    assert path.is_file() and path.stat().st_size > 0
    cap = cv2.VideoCapture(str(path))
    try:
        n = 0
        while True:
            ok, f = cap.read()
            if not ok:
                break
            assert f.shape == (48, 64, 3)
            n += 1
    finally:
        cap.release()
    assert n == 6


def test_write_avi_from_an_iterator(tmp_path: Path) -> None:
    clip = np.repeat(standing_pose()[None], 4, axis=0)
    path = write_video(iter_frames(clip, RenderOptions(width=64, height=48)), tmp_path / "clip.avi")
    cap = cv2.VideoCapture(str(path))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
        assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64
    finally:
        cap.release()


def test_write_gif_reads_back(tmp_path: Path) -> None:
    frames = _moving_frames()
    path = write_video(frames, tmp_path / "clip.gif", fps=20)
    with Image.open(path) as im:
        assert im.n_frames == 6
        assert im.size == (64, 48)
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 50


def test_write_png_contact_sheet(tmp_path: Path) -> None:
    frames = _moving_frames(6)
    path = write_video(frames, tmp_path / "sheet.png")
    with Image.open(path) as im:
        sheet = np.asarray(im.convert("RGB"))
    # 6 frames in 4 columns: 2 rows, 4-pixel gaps.
    assert sheet.shape == (2 * 48 + 4, 4 * 64 + 3 * 4, 3)
    assert np.array_equal(sheet[:48, :64], frames[0])
    assert np.array_equal(sheet[52:, 68 : 68 + 64], frames[5])


def test_contact_sheet_picks_evenly_spaced_frames() -> None:
    frames = np.zeros((30, 8, 10, 3), dtype=np.uint8)
    for t in range(30):
        frames[t] = t
    sheet = contact_sheet(frames, columns=4, max_frames=12)
    assert sheet.shape == (3 * 8 + 2 * 4, 4 * 10 + 3 * 4, 3)
    picked = [int(sheet[r * 12, c * 14, 0]) for r in range(3) for c in range(4)]
    assert picked[0] == 0 and picked[-1] == 29
    assert picked == sorted(picked) and len(set(picked)) == 12


def test_write_video_rejects_bad_input(tmp_path: Path) -> None:
    frames = _moving_frames(2)
    with pytest.raises(ValueError, match=r"\.mp4.*\.gif.*\.png"):
        write_video(frames, tmp_path / "clip.webm")
    with pytest.raises(ValueError):
        write_video(frames.astype(np.float32), tmp_path / "clip.gif")
    with pytest.raises(ValueError):
        write_video(frames[:, :, :, :2], tmp_path / "clip.mp4")
    with pytest.raises(ValueError):
        write_video([], tmp_path / "clip.mp4")
    with pytest.raises(ValueError):
        write_video(frames, tmp_path / "clip.mp4", fps=0)
    with pytest.raises(ValueError):
        write_video([frames[0], frames[1, :40]], tmp_path / "clip.gif")
    assert not (tmp_path / "clip.webm").exists()


def test_write_video_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        write_video(_moving_frames(2), blocker / "clip.mp4")
