"""Tests of compare_recordings (what ``pmr compare`` and ``pmr stream`` write) and select_persons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pmr_stream.formats.recording import Recording
from pmr_stream.render import RenderOptions, compare_recordings, select_persons


def two_person_recording(frames: int, fps: float = 25.0) -> Recording:
    """``frames`` frames of two persons standing 1 m apart, 3 m from the camera; the
    second person is absent in the first frame."""
    rng = np.random.default_rng(frames)
    joints = np.zeros((frames, 2, 25, 3), dtype=np.float32)
    joints[..., 1] = np.linspace(-0.8, 0.8, 25, dtype=np.float32)  # a vertical line of joints
    joints[..., 2] = 3.0
    joints[:, 1, :, 0] = 1.0
    joints += rng.normal(0.0, 0.01, joints.shape).astype(np.float32)
    present = np.ones((frames, 2), dtype=bool)
    present[0, 1] = False
    joints[0, 1] = 0.0
    return Recording(
        joints=joints,
        confidence=np.ones((frames, 2, 25), dtype=np.float32),
        timestamps=np.arange(frames, dtype=np.float64) / fps,
        present=present,
    )


def test_select_persons_all_or_one() -> None:
    rec = two_person_recording(4)
    joints, conf, present = select_persons(rec, None)
    assert joints.shape == (4, 2, 25, 3) and conf.shape == (4, 2, 25) and present.shape == (4, 2)
    joints, conf, present = select_persons(rec, 1)
    assert joints.shape == (4, 1, 25, 3) and conf.shape == (4, 1, 25)
    assert present[:, 0].tolist() == [False, True, True, True]
    with pytest.raises(ValueError, match="person 2 out of range: the recording has 2 person"):
        select_persons(rec, 2)


def test_compare_recordings_writes_the_shorter_length_at_the_original_rate(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    two_person_recording(6).save(a)
    two_person_recording(4, fps=10.0).save(b)
    video = compare_recordings(a, b, tmp_path / "out" / "side.gif", RenderOptions(width=80, height=60))
    assert video.path == tmp_path / "out" / "side.gif" and video.frames == 4
    assert video.fps == pytest.approx(25.0)
    with Image.open(video.path) as gif:
        assert gif.size == (160, 60)  # two panels of 80 x 60


def test_compare_recordings_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    a = tmp_path / "a.npz"
    two_person_recording(3).save(a)
    with pytest.raises(ValueError, match="person 5 out of range"):
        compare_recordings(a, a, tmp_path / "x.mp4", person=5)
    with pytest.raises(ValueError, match="unsupported output extension"):
        compare_recordings(a, a, tmp_path / "x.webm")
    with pytest.raises(OSError):
        compare_recordings(a, tmp_path / "missing.npz", tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.webm").exists()
