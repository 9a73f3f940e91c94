"""Offline anonymization: windowing and blending, and the shipped default model on real recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pmr_stream.assets import DEFAULT_DUMMY, DEFAULT_MODEL
from pmr_stream.backends.base import load_dummy
from pmr_stream.formats.recording import Recording
from pmr_stream.offline import (
    AnonymizeOptions,
    anonymize_recording,
    anonymize_track,
    blend_weights,
    default_window_fn,
)
from pmr_stream.skeleton import NTU_BODY_BONES, bone_lengths


def walking_track(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.3, (25, 3)).astype(np.float32) + np.array([0.0, 0.0, 3.0], np.float32)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    return base + 0.01 * t * np.array([1.0, 0.0, 0.0], np.float32) + 0.05 * np.sin(t / 5.0)


def identity(windows: np.ndarray) -> np.ndarray:
    return windows.copy()


@pytest.mark.parametrize("n", [1, 30, 75, 76, 200, 333])
@pytest.mark.parametrize(
    ("mode", "stride"), [("blend", 25), ("blend", 75), ("centre", 25), ("last", 25), ("delay:4", 25)]
)
def test_identity_window_function_gives_the_input_back(n: int, mode: str, stride: int) -> None:
    x = walking_track(n)
    out = anonymize_track(x, identity, AnonymizeOptions(mode=mode, stride=stride, bones="model"))
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-5)  # normalisation undone, windows blended, padding trimmed


def test_windows_are_normalised_like_training() -> None:
    seen: list[np.ndarray] = []

    def spy(w: np.ndarray) -> np.ndarray:
        seen.append(w.copy())
        return w

    anonymize_track(walking_track(160), spy, AnonymizeOptions(mode="blend", stride=25, bones="model"))
    windows = np.concatenate(seen)
    assert windows.shape[1:] == (75, 25, 3) and len(windows) == 5  # starts 0, 25, 50, 75, 85
    np.testing.assert_allclose(windows[:, 0, 1], 0.0, atol=1e-6)  # SpineMid of each window's first frame


def test_overlap_blending_removes_seams() -> None:
    """A network whose error differs from window to window must not show a jump at borders."""
    rng = np.random.default_rng(3)

    def biased(w: np.ndarray) -> np.ndarray:
        return w + rng.normal(0, 0.05, (len(w), 1, 1, 3)).astype(np.float32)  # 5 cm per-window error

    x = walking_track(300)
    step_in = np.abs(np.diff(x, axis=0)).max()
    hard = anonymize_track(x, biased, AnonymizeOptions(mode="blend", stride=75, bones="model"))
    soft = anonymize_track(x, biased, AnonymizeOptions(mode="blend", stride=25, bones="model"))
    jump_hard = np.abs(np.diff(hard, axis=0)).max() - step_in
    jump_soft = np.abs(np.diff(soft, axis=0)).max() - step_in
    assert jump_hard > 0.02  # without overlap the per-window error jumps at each border
    assert jump_soft < jump_hard / 4


def test_centre_mode_reads_every_frame_from_the_same_window_position() -> None:
    """A network whose error depends on the frame's position in the window (as a briefly
    trained decoder's does) gives a smooth track in centre mode, a jittery one when blended."""
    pos_err = np.random.default_rng(5).normal(0, 0.05, (1, 75, 1, 3)).astype(np.float32)

    def positional(w: np.ndarray) -> np.ndarray:
        return w + pos_err

    x = walking_track(200)
    step = np.abs(np.diff(x, 2, axis=0)).mean()
    centre = anonymize_track(x, positional, AnonymizeOptions(mode="centre", bones="model"))
    blend = anonymize_track(x, positional, AnonymizeOptions(mode="blend", stride=25, bones="model"))
    assert np.abs(np.diff(centre, 2, axis=0)).mean() == pytest.approx(step, rel=1e-3)
    assert np.abs(np.diff(blend, 2, axis=0)).mean() > 3 * step
    np.testing.assert_allclose(centre - x, np.broadcast_to(pos_err[0, 37], x.shape), atol=1e-5)


def test_blend_weights_taper() -> None:
    w = blend_weights()
    assert w.shape == (75,) and w.min() > 0 and w[0] < 0.01 and w[37] > 0.99


def test_recording_absent_frames_stay_absent() -> None:
    x = walking_track(120)
    joints = np.stack([x, x + np.float32(1.0)], axis=1)  # (T, 2, 25, 3)
    present = np.ones((120, 2), bool)
    present[40:60, 1] = False
    joints[~present] = 0.0
    rec = Recording(joints=joints, confidence=np.ones((120, 2, 25), np.float32),
                    timestamps=np.arange(120) / 30.0, present=present)  # fmt: skip
    out = anonymize_recording(rec, identity, AnonymizeOptions(bones="model"), model_id="identity")
    assert out.metadata["anonymized"] is True and out.metadata["model_id"] == "identity"
    np.testing.assert_array_equal(out.present, present)
    assert np.all(out.joints[40:60, 1] == 0)
    np.testing.assert_allclose(out.joints[present], joints[present], atol=1e-5)


def test_bad_options_and_tracks() -> None:
    with pytest.raises(ValueError, match="stride"):
        AnonymizeOptions(stride=0)
    with pytest.raises(ValueError, match="mode"):
        AnonymizeOptions(mode="first")
    with pytest.raises(ValueError, match="track"):
        anonymize_track(np.zeros((10, 24, 3)), identity)


# ------------------------------------------------------------------ the shipped default model

needs_default = pytest.mark.skipif(
    not DEFAULT_MODEL.exists(), reason=f"default model {DEFAULT_MODEL} not built"
)


def relative_bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.median(bone_lengths(joints), axis=0)


@needs_default
def test_default_model_gives_the_dummy_body_and_keeps_the_motion(ntu_dir: Path) -> None:
    """On the real NTU recordings (every person): the output's bones are nearer the dummy's
    than the original's, it moves with the original (far above a shuffled floor) and it
    stays where the person stood."""
    from pmr_stream.formats.io import load_recording
    from pmr_tools.anonymize_report import clip_figures

    fn, model_id = default_window_fn()
    assert model_id == "pmr_default"
    dummy = relative_bone_lengths(load_dummy(DEFAULT_DUMMY))
    rng = np.random.default_rng(0)
    rows = []
    for f in sorted(ntu_dir.glob("*.skeleton")):
        rec = load_recording(f)
        out = anonymize_recording(
            rec, fn, AnonymizeOptions(bones="model"), model_id=model_id
        )  # the network's bones
        for p in range(rec.num_persons):
            m = rec.present[:, p]
            rows.append(clip_figures(rec.joints[m, p], out.joints[m, p], dummy, rng))
    assert len(rows) == 7
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    assert mean["bone_diff_to_dummy_cm"] < mean["bone_diff_to_original_cm"], mean
    assert mean["motion_correlation"] > mean["motion_correlation_shuffled"] + 0.1, mean
    assert mean["direction_cosine"] > 0.6, mean
    assert mean["hip_distance_cm"] < 25.0, mean


@needs_default
def test_default_model_on_standin_clips_moves_bodies_towards_the_dummy() -> None:
    from pmr_stream.synth import generate_clip, make_performers

    fn, _ = default_window_fn()
    dummy = relative_bone_lengths(load_dummy(DEFAULT_DUMMY))[NTU_BODY_BONES]
    cast = make_performers(40, 0)
    closer = []
    for pid, act in [(1, "wave"), (9, "squat"), (17, "kick"), (25, "bow"), (33, "wave"), (38, "squat")]:
        x = generate_clip(cast[pid - 1], act, 1, 1, seed=0)
        a = anonymize_track(
            x, fn.anonymize, AnonymizeOptions(mode="blend", bones="model")
        )  # bones averaged over window positions
        la, lo = relative_bone_lengths(a)[NTU_BODY_BONES], relative_bone_lengths(x)[NTU_BODY_BONES]
        closer.append(np.abs(la - dummy).mean() < np.abs(la - lo).mean())
    assert sum(closer) >= 5, closer


@needs_default
def test_cli_anonymize_two_person_skeleton(tmp_path: Path) -> None:
    from pmr_stream.cli import main
    from pmr_stream.formats.ntu import read_skeleton
    from tests.ntu_samples import ntu_file

    src = ntu_file("S001C003P008R002A058.skeleton")
    out = tmp_path / "anon.skeleton"
    assert main(["anonymize", "--input", str(src), "--output", str(out)]) == 0
    a, _, pa, _ = read_skeleton(out).to_arrays()
    o, _, po, _ = read_skeleton(src).to_arrays()
    assert a.shape == o.shape and np.array_equal(pa, po)
    assert not np.allclose(a, o, atol=1e-3)  # the raw skeletons are gone
    # the two persons stay apart, each where it stood
    for p in range(2):
        assert np.abs(a[pa[:, p], p, 0] - o[po[:, p], p, 0]).mean() < 0.3
    # --bones dummy (the default): every bone of every output frame has the dummy's length
    want = np.median(bone_lengths(load_dummy(DEFAULT_DUMMY)), axis=0)
    for p in range(2):
        np.testing.assert_allclose(
            bone_lengths(a[pa[:, p], p]), np.broadcast_to(want, (int(pa[:, p].sum()), 24)), atol=2e-3
        )
    # --bones model: the network's own bones; the default (retarget head) builds them from the
    # dummy's already, the paper-faithful PMR does not
    from pmr_stream.assets import PAPER_MODEL

    out2 = tmp_path / "anon_model.skeleton"
    assert main(["anonymize", "--input", str(src), "--output", str(out2), "--bones", "model"]) == 0
    b, _, _, _ = read_skeleton(out2).to_arrays()
    assert np.abs(bone_lengths(b[pa[:, 0], 0]) - want).max() < 1e-3
    out3 = tmp_path / "anon_paper.skeleton"
    assert main(["anonymize", "--input", str(src), "--output", str(out3), "--bones", "model",
                 "--model-path", str(PAPER_MODEL)]) == 0  # fmt: skip
    b, _, _, _ = read_skeleton(out3).to_arrays()
    assert np.abs(bone_lengths(b[pa[:, 0], 0]) - want).max() > 0.005


# ------------------------------------------------------------------ one default for API, CLI and service


def test_api_cli_and_service_share_the_bones_default() -> None:
    from pmr_stream.anonymizer.options import DEFAULT_BONES, ServiceOptions
    from pmr_stream.cli import build_parser

    args = build_parser().parse_args(["anonymize", "--input", "a.skeleton", "--output", "b.skeleton"])
    assert DEFAULT_BONES == "dummy"
    assert AnonymizeOptions().bones == ServiceOptions().bones == args.bones == DEFAULT_BONES
    # a plain function has no dummy: the default asks for one, in one line, instead of skipping the step
    with pytest.raises(ValueError, match="bones='dummy' .* needs the dummy's bone lengths") as e:
        anonymize_track(walking_track(80), identity)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="bones must be one of"):
        AnonymizeOptions(bones="none")
    with pytest.raises(ValueError, match="bone_lengths are for bones='dummy'"):
        AnonymizeOptions(bones="model", bone_lengths=(0.1,) * 24)
    lengths = tuple(float(v) for v in np.linspace(0.05, 0.4, 24))
    out = anonymize_track(walking_track(80), identity, AnonymizeOptions(bone_lengths=lengths))
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(np.float32(lengths), (80, 24)), atol=1e-5)


@needs_default
def test_api_default_is_the_cli_default(tmp_path: Path) -> None:
    """``anonymize_recording(rec, backend)`` with default options writes what ``pmr anonymize``
    writes with its defaults: the dummy's bones (metadata ``bones: dummy``)."""
    from pmr_stream.cli import main
    from pmr_stream.formats.io import load_recording
    from tests.ntu_samples import ntu_file

    src = ntu_file("S001C003P008R002A058.skeleton")
    fn, model_id = default_window_fn()
    api = anonymize_recording(load_recording(src), fn, model_id=model_id)
    assert api.metadata["bones"] == "dummy"
    want = np.median(bone_lengths(load_dummy(DEFAULT_DUMMY)), axis=0)
    for p in range(api.num_persons):
        m = api.present[:, p]
        np.testing.assert_allclose(
            bone_lengths(api.joints[m, p]), np.broadcast_to(want, (int(m.sum()), 24)), atol=2e-3
        )
    out = tmp_path / "cli.npz"
    assert main(["anonymize", "--input", str(src), "--output", str(out)]) == 0
    cli = load_recording(out)
    assert cli.metadata["bones"] == "dummy"
    np.testing.assert_allclose(cli.joints[cli.present], api.joints[api.present], atol=1e-4)
    # the bound method works the same way (the backend's dummy)
    same = anonymize_recording(load_recording(src), fn.anonymize, model_id=model_id)
    np.testing.assert_array_equal(same.joints, api.joints)
